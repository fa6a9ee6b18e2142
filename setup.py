import os
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

# What `take-a-number init` writes (take_a_number/site_files.py): copied, as they
# are at build time, into the package's site/, since a wheel carries nothing
# outside its packages.
SITE_FILES = ["app.ini", "runner.py", "deploy"]

# `pip install 'take-a-number[postgresql]'`: the PostgreSQL store. psycopg 3.2.10 at least:
# earlier 3.2 releases leaked memory in the backlog of notifications the listener reads.
POSTGRESQL = ["psycopg[binary]>=3.2.10", "psycopg_pool>=3.2"]


class BuildWithSiteFiles(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads them from the checkout itself
        site = os.path.join(self.build_lib, "take_a_number", "site")
        for name in SITE_FILES:
            if os.path.isdir(name):
                shutil.copytree(
                    name,
                    os.path.join(site, name),
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
                    dirs_exist_ok=True,
                )
            else:
                os.makedirs(site, exist_ok=True)
                shutil.copy2(name, site)


setup(
    name="take-a-number",
    version="0.1.0",
    description="A deli-counter ticket queue in the browser: take a number, be told your turn.",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.11",
    # templates/ and static/ live at the top of the checkout; a wheel carries them
    # inside the package, where take_a_number.resource_dir() finds them.
    packages=[
        "take_a_number",
        "take_a_number.store",
        "take_a_number.templates",
        "take_a_number.static",
    ],
    package_dir={
        "take_a_number.templates": "templates",
        "take_a_number.static": "static",
    },
    package_data={
        "take_a_number": ["openapi.json"],
        "take_a_number.templates": ["*.html"],
        "take_a_number.static": ["*"],
    },
    install_requires=[
        "WebOb>=1.8.8",
        "Routes>=2.5.1",
        "Tempita>=0.6.0",
        "FormEncode>=2.1",
        "sqlite-utils>=3.36",
        "waitress>=3.0.1",
        "PasteDeploy>=3.1",
        "segno>=1.6",
    ],
    extras_require={
        "postgresql": POSTGRESQL,
        "test": [
            "pytest>=8",
            "WebTest>=3.0.1",
            "playwright>=1.45",
            # axe-core's script, for the accessibility checks of the browser tests.
            "axe-playwright-python>=0.1.8",
            "openapi-core>=0.19",
            # tests/test_fuzz.py: the API against its OpenAPI document, and every form.
            "schemathesis>=4.32",
            "hypothesis>=6.100",
            # tests/test_generated_client.py: a client generated from the served document.
            "openapi-python-client>=0.29,<0.30",
            "ruff>=0.8",
            # The hosting, packaging and embedding tests.
            "gunicorn>=23",
            "build>=1.2",
            "twine>=5",
            "Paste>=3.10",
            # Every store and functional test also runs on PostgreSQL.
            *POSTGRESQL,
        ],
    },
    cmdclass={"build_py": BuildWithSiteFiles},
    entry_points={
        "paste.app_factory": ["main = take_a_number:main"],
        "console_scripts": ["take-a-number = take_a_number.cli:main"],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Framework :: Paste",
        "Topic :: Internet :: WWW/HTTP :: WSGI :: Application",
    ],
)
