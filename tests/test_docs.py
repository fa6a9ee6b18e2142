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


@pytest.mark.parametrize("command", ["serve", "migrate", "backup PATH"])
def test_every_command_is_in_the_readme(command):
    assert f"take-a-number [--config app.ini] {command}" in read("README.md")


def test_ci_runs_the_readme_test_command():
    assert "bash scripts/test" in read("README.md")
    assert "bash scripts/test" in read(".ci/run")
