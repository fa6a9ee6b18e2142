"""The docs mention every setting and command the code has."""

import os
import re

import pytest

from take_a_number import config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


@pytest.mark.parametrize("setting", sorted(config.DEFAULTS))
def test_every_setting_is_commented_in_app_ini_and_documented(setting):
    assert re.search(rf"^# {setting} =", read("app.ini"), re.M), setting
    assert f"`{setting}`" in read("docs/configuration.md")
    assert f"TAKE_A_NUMBER_{setting.upper()}" in read("docs/configuration.md")


@pytest.mark.parametrize("command", ["serve", "migrate", "backup PATH", "copy-to URL"])
def test_every_command_is_in_the_readme(command):
    assert f"take-a-number [--config app.ini] {command}" in read("README.md")


def test_init_is_in_the_readme():
    assert "take-a-number init [--deploy] DIR" in read("README.md")


def test_ci_runs_the_readme_test_command():
    assert "bash scripts/test" in read("README.md")
    assert "bash scripts/test" in read(".ci/run")


def module_table():
    """The modules listed in docs/architecture.md's table, one a row, as paths in the package."""
    section = read("docs/architecture.md").split("## Where things happen", 1)[1].split("\n## ")[0]
    rows = [line for line in section.splitlines() if line.startswith("| `take_a_number/")]
    listed = [re.findall(r"`take_a_number/([\w/]+(?:\.py|/))`", row) for row in rows]
    assert all(len(names) == 1 for names in listed), "one module a row"
    return [name for (name,) in listed]


def package_modules():
    """Every module of the package: ``x.py``, and a subpackage's as ``sub/x.py``."""
    package = os.path.join(ROOT, "take_a_number")
    modules = set()
    for folder, dirs, files in os.walk(package):
        dirs[:] = [d for d in dirs if not d.startswith(("_", "."))]
        prefix = os.path.relpath(folder, package)
        for name in files:
            if name.endswith(".py"):
                modules.add(name if prefix == "." else f"{prefix}/{name}")
    return modules


def test_the_architecture_lists_every_module_of_the_package_with_its_concern():
    listed = module_table()
    assert len(listed) == len(set(listed)), "a module listed twice"
    # A subpackage's __init__.py may be listed as the subpackage, ``store/``.
    modules = {
        name.removesuffix("__init__.py") if "/" in name else name for name in package_modules()
    }
    assert set(listed) - modules == set(), "listed, but no such module"
    assert modules - set(listed) == set(), "a module the architecture does not list"
