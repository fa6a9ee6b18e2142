"""Packaging: the sdist and the wheel build and pass twine's checks, and the wheel,
installed in a fresh virtualenv outside the checkout, serves the app from another
directory with its own templates and static files, and writes a site with
``take-a-number init`` that gunicorn serves through ``take_a_number.wsgi:application``."""

import os
import subprocess
import sys
import zipfile

import pytest
from hosting_support import Browser, Processes, free_port, main_flow, server_env

pytestmark = pytest.mark.slow

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    """``python -m build``: the sdist, then the wheel built from that sdist."""
    out = tmp_path_factory.mktemp("dist")
    built = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), ROOT], capture_output=True, text=True
    )
    assert built.returncode == 0, built.stdout + built.stderr
    return {name.rsplit(".", 1)[-1]: out / name for name in os.listdir(out)}


def test_sdist_and_wheel_pass_twine_check(dist):
    assert dist["gz"].name == "take_a_number-0.1.0.tar.gz"
    assert dist["whl"].name == "take_a_number-0.1.0-py3-none-any.whl"
    twine = os.path.join(os.path.dirname(sys.executable), "twine")
    checked = subprocess.run(
        [twine, "check", "--strict", dist["gz"], dist["whl"]], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.count("PASSED") == 2


def test_wheel_carries_every_template_and_static_file_inside_the_package(dist):
    with zipfile.ZipFile(dist["whl"]) as wheel:
        names = set(wheel.namelist())
    for directory in ("templates", "static"):
        for name in os.listdir(os.path.join(ROOT, directory)):
            assert f"take_a_number/{directory}/{name}" in names
    assert "take_a_number/cli.py" in names
    assert "take_a_number/openapi.json" in names  # the API's document
    assert not any(name.startswith(("tests/", "templates/", "static/")) for name in names)


def test_wheel_carries_app_ini_runner_and_the_deploy_files_for_init(dist):
    with zipfile.ZipFile(dist["whl"]) as wheel:
        names = set(wheel.namelist())
        assert wheel.read("take_a_number/site/app.ini") == open_bytes("app.ini")
    assert "take_a_number/site/runner.py" in names
    assert "take_a_number/wsgi.py" in names
    for folder, dirs, files in os.walk(os.path.join(ROOT, "deploy")):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in files:
            path = os.path.relpath(os.path.join(folder, name), ROOT)
            assert f"take_a_number/site/{path}" in names
    assert not any("__pycache__" in name and "/site/" in name for name in names)


def open_bytes(name):
    with open(os.path.join(ROOT, name), "rb") as f:
        return f.read()


@pytest.fixture(scope="module")
def installed(dist, tmp_path_factory):
    """A fresh virtualenv, outside the checkout, with the wheel (and its dependencies)."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = subprocess.run(
        [venv / "bin" / "pip", "install", "--quiet", dist["whl"]],
        env=server_env(),
        capture_output=True,
        text=True,
    )
    assert pip.returncode == 0, pip.stderr
    return venv


def test_installed_package_finds_its_templates_and_static_files(installed, tmp_path):
    found = subprocess.run(
        [
            installed / "bin" / "python",
            "-c",
            "import take_a_number as t; print(t.__file__); "
            "print(t.resource_dir('templates')); print(t.resource_dir('static'))",
        ],
        cwd=tmp_path,
        env=server_env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    site_packages = os.path.dirname(os.path.dirname(found[0]))
    assert site_packages.startswith(str(installed))
    assert found[1:] == [
        os.path.join(site_packages, "take_a_number", "templates"),
        os.path.join(site_packages, "take_a_number", "static"),
    ]


def test_take_a_number_serve_with_another_config_from_another_directory(installed, tmp_path):
    port = free_port()
    (tmp_path / "other.ini").write_text(
        "[app:main]\nuse = egg:take-a-number\ndatabase = %(here)s/data/queues.sqlite\n"
        "push_max_held = 10\n\n"
        f"[server:main]\nuse = egg:waitress#main\nhost = 127.0.0.1\nport = {port}\nthreads = 30\n"
    )
    url = f"http://127.0.0.1:{port}"
    with Processes() as start:
        start(
            [installed / "bin" / "take-a-number", "serve", "--config", "other.ini"],
            tmp_path / "serve.log",
            cwd=tmp_path,
            env=server_env(),
        ).wait_until_it_answers(url + "/")
        main_flow(url, "lab")
        assert Browser(url).get("/static/live.js").status == 200
    assert (tmp_path / "data" / "queues.sqlite").exists()


def test_a_site_written_by_init_is_served_by_gunicorn_through_the_wsgi_module(installed, tmp_path):
    """docs/deployment.md, "Installing a wheel": init --deploy, then gunicorn with the
    written deploy/gunicorn.conf.py and take_a_number.wsgi:application."""
    bin_dir = installed / "bin"
    pip = subprocess.run(
        [bin_dir / "pip", "install", "--quiet", "gunicorn"],
        env=server_env(),
        capture_output=True,
        text=True,
    )
    assert pip.returncode == 0, pip.stderr
    site = tmp_path / "site"
    init = subprocess.run(
        [bin_dir / "take-a-number", "init", "--deploy", str(site)],
        cwd=tmp_path,
        env=server_env(),
        capture_output=True,
        text=True,
    )
    assert init.returncode == 0, init.stderr
    assert (site / "app.ini").read_bytes() == open_bytes("app.ini")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    database = tmp_path / "data" / "take-a-number.sqlite"
    with Processes() as start:
        start(
            [
                bin_dir / "gunicorn",
                "--config",
                site / "deploy" / "gunicorn.conf.py",
                "--bind",
                f"127.0.0.1:{port}",
                "take_a_number.wsgi:application",
            ],
            tmp_path / "gunicorn.log",
            cwd=tmp_path,  # not the site: gunicorn.conf.py changes to it
            env=server_env(TAKE_A_NUMBER_DATABASE=database),
        ).wait_until_it_answers(url + "/")
        main_flow(url, "lab")
        assert Browser(url).get("/static/live.js").status == 200
    assert database.exists()
