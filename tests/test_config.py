"""Settings: which value wins: the ini's (or the factory's argument), the environment's."""

import logging

import pytest
from webtest import TestApp

from take_a_number import config, main

ENVIRONMENT = {
    "TAKE_A_NUMBER_DATABASE": "/srv/environment.sqlite",
    "TAKE_A_NUMBER_PUSH_MAX_HELD": "30",
    "TAKE_A_NUMBER_SECRET": "from the environment",
}


def test_a_setting_the_ini_gives_wins_over_the_environment():
    settings = config.read_settings(
        {"database": "/srv/mine.sqlite", "push_max_held": "0"}, here="/srv", environ=ENVIRONMENT
    )
    assert settings["database"] == "/srv/mine.sqlite"
    assert settings["push_max_held"] == 0


def test_the_environment_fills_what_the_ini_leaves_out_or_empty():
    settings = config.read_settings({"secret": ""}, here="/srv", environ=ENVIRONMENT)
    assert settings["database"] == "/srv/environment.sqlite"
    assert settings["push_max_held"] == 30
    assert settings["secret"] == "from the environment"


def test_a_setting_nobody_gives_has_its_default_beside_the_ini():
    settings = config.read_settings({}, here="/srv/site", environ={})
    assert settings["database"] == "/srv/site/var/take-a-number.sqlite"
    assert settings["push_max_held"] == config.DEFAULTS["push_max_held"]


def test_two_instances_on_one_database_at_two_mount_points_are_logged_once(tmp_path, caplog):
    database = str(tmp_path / "one.sqlite")
    first, second = main({}, database=database), main({}, database=database)
    try:
        with caplog.at_level(logging.WARNING, logger="take_a_number"):
            for _ in range(2):
                TestApp(first, extra_environ={"SCRIPT_NAME": "/a"}).get("/")
                TestApp(second, extra_environ={"SCRIPT_NAME": "/b"}).get("/")
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1
        assert "mounted at '/a' and '/b' share the database" in warnings[0]
        assert database in warnings[0]
    finally:
        first.close()
        second.close()


def test_instances_with_their_own_databases_or_one_mount_point_are_not_logged(tmp_path, caplog):
    apps = [main({}, database=str(tmp_path / name)) for name in ("a.sqlite", "b.sqlite")]
    same = main({}, database=str(tmp_path / "a.sqlite"))
    try:
        with caplog.at_level(logging.WARNING, logger="take_a_number"):
            TestApp(apps[0], extra_environ={"SCRIPT_NAME": "/a"}).get("/")
            TestApp(apps[1], extra_environ={"SCRIPT_NAME": "/b"}).get("/")
            TestApp(same, extra_environ={"SCRIPT_NAME": "/a"}).get("/")
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    finally:
        for app in (*apps, same):
            app.close()


def test_the_database_may_be_a_path_or_a_sqlite_url():
    def database(value):
        return config.read_settings({"database": value}, here="/srv/site", environ={})["database"]

    assert database("var/q.sqlite") == "/srv/site/var/q.sqlite"
    assert database("sqlite:var/q.sqlite") == "/srv/site/var/q.sqlite"
    assert database("sqlite:///data/q.sqlite") == "/data/q.sqlite"
    assert database("SQLITE:/data/q.sqlite") == "/data/q.sqlite"


@pytest.mark.parametrize("url", ["mysql://db/tan", "oracle://db/tan", "sqlserver://db"])
def test_a_database_url_the_app_cannot_use_is_refused_at_start_up_not_made_a_folder(tmp_path, url):
    says = "SQLite .* or PostgreSQL"
    with pytest.raises(config.SettingsError, match=says):
        config.read_settings({}, here=str(tmp_path), environ={"TAKE_A_NUMBER_DATABASE": url})
    with pytest.raises(config.SettingsError, match=says):
        main({"here": str(tmp_path)}, database=url)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "PostgreSQL"])
def test_a_postgresql_url_from_the_environment_is_the_database_not_a_folder(tmp_path, scheme):
    url = f"{scheme}://tan:secret@db:5432/tan"
    settings = config.read_settings({}, here=str(tmp_path), environ={"TAKE_A_NUMBER_DATABASE": url})
    assert settings["database"] == url
    assert list(tmp_path.iterdir()) == []


def test_a_sqlite_url_without_a_file_is_refused():
    with pytest.raises(config.SettingsError, match="names no file"):
        config.read_settings({"database": "sqlite:"}, here="/srv", environ={})


@pytest.mark.parametrize("name", ["push_hold_seconds", "push_heartbeat_seconds"])
@pytest.mark.parametrize("value", ["0", "56"])
def test_holds_and_heartbeats_beyond_what_proxies_wait_for_are_refused(name, value):
    with pytest.raises(config.SettingsError, match=f"{name} must be between 1 and 55"):
        config.read_settings({name: value})


def test_the_push_watch_interval_is_left_to_the_hub_unless_given():
    assert config.read_settings({})["push_watch_interval"] is None
    assert config.read_settings({"push_watch_interval": "0.2"})["push_watch_interval"] == 0.2
    from_environment = {"TAKE_A_NUMBER_PUSH_WATCH_INTERVAL": "2"}
    assert config.read_settings({}, environ=from_environment)["push_watch_interval"] == 2.0


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("0", "must be between 0 and 5 seconds"),
        ("5.5", "must be between 0 and 5 seconds"),
        ("-1", "must be between 0 and 5 seconds"),
        ("nan", "must be between 0 and 5 seconds"),
        ("soon", "must be a number, not 'soon'"),
    ],
)
def test_a_push_watch_interval_that_is_no_time_is_refused(value, said):
    with pytest.raises(config.SettingsError, match=f"push_watch_interval {said}"):
        config.read_settings({"push_watch_interval": value})
