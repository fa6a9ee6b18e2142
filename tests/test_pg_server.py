"""The throwaway PostgreSQL the suite runs on (tests/pg_support.py): it runs as an
unprivileged user, every test gets an empty database of its own, and it can be
restarted under the app's feet with its data and URLs intact."""

import os

import pg_support
import psycopg
import pytest


def user_tables(url):
    with psycopg.connect(url) as connection:
        rows = connection.execute(
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
        ).fetchall()
    return {name for (name,) in rows}


def server_process_uid(server):
    with open(os.path.join(server.data_dir, "postmaster.pid")) as pid_file:
        pid = pid_file.readline().strip()
    with open(f"/proc/{pid}/status") as status:
        uid_line = next(line for line in status if line.startswith("Uid:"))
    return int(uid_line.split()[1])


def test_the_server_runs_as_an_unprivileged_user_even_when_the_tests_run_as_root(
    postgresql_server,
):
    uid = server_process_uid(postgresql_server)
    assert uid != 0
    if os.geteuid() == 0:
        assert postgresql_server.user in ("postgres", pg_support.SYSTEM_USER)
    else:
        assert uid == os.geteuid()
    assert os.stat(postgresql_server.data_dir).st_uid == uid


def test_the_server_listens_on_localhost_with_a_password(postgresql_server, postgresql_url):
    assert postgresql_url.startswith(
        f"postgresql://{pg_support.TEST_ROLE}:{pg_support.TEST_PASSWORD}"
        f"@127.0.0.1:{postgresql_server.port}/"
    )
    wrong_password = postgresql_url.replace(pg_support.TEST_PASSWORD, "wrong")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(wrong_password)


def test_a_fresh_database_is_empty_and_the_app_may_build_its_schema_in_it(postgresql_url):
    assert user_tables(postgresql_url) == set()
    with psycopg.connect(postgresql_url) as connection:
        connection.execute("CREATE TABLE left_by_another_test (id integer PRIMARY KEY)")
        connection.execute("INSERT INTO left_by_another_test VALUES (1)")
    assert user_tables(postgresql_url) == {"left_by_another_test"}


def test_a_fresh_database_sees_nothing_another_test_left(postgresql_url):
    # The test above ran first and left a table in its database.
    assert user_tables(postgresql_url) == set()


def test_two_fresh_databases_in_one_test_are_apart(postgresql_server, postgresql_url):
    other = postgresql_server.url(postgresql_server.create_database())
    assert other != postgresql_url
    with psycopg.connect(postgresql_url) as connection:
        connection.execute("CREATE TABLE only_here (id integer)")
    assert user_tables(other) == set()


def test_a_restart_keeps_the_data_and_the_same_url_works_after(postgresql_server, postgresql_url):
    with psycopg.connect(postgresql_url) as connection:
        connection.execute("CREATE TABLE kept (word text)")
        connection.execute("INSERT INTO kept VALUES ('still here')")
    held = psycopg.connect(postgresql_url)

    postgresql_server.restart()

    # A connection from before the restart is gone, as the app's pool will find.
    with pytest.raises(psycopg.OperationalError):
        held.execute("SELECT 1")
    held.close()
    with psycopg.connect(postgresql_url) as connection:
        assert connection.execute("SELECT word FROM kept").fetchall() == [("still here",)]


def test_a_stopped_server_refuses_connections_until_it_is_started(
    postgresql_server, postgresql_url
):
    postgresql_server.stop()
    try:
        assert not postgresql_server.is_running()
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(postgresql_url, connect_timeout=2)
    finally:
        postgresql_server.start()
    with psycopg.connect(postgresql_url) as connection:
        assert connection.execute("SELECT 1").fetchone() == (1,)


def test_a_server_that_crashed_recovers_its_committed_data(postgresql_server, postgresql_url):
    with psycopg.connect(postgresql_url) as connection:
        connection.execute("CREATE TABLE kept (word text)")
        connection.execute("INSERT INTO kept VALUES ('committed')")
    postgresql_server.stop(mode="immediate")
    postgresql_server.start()
    with psycopg.connect(postgresql_url) as connection:
        assert connection.execute("SELECT word FROM kept").fetchall() == [("committed",)]


def test_without_postgresql_installed_the_message_says_what_to_install(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(pg_support.glob, "glob", lambda pattern: [])
    with pytest.raises(pg_support.PostgreSQLUnavailable, match="apt-get install -y postgresql"):
        pg_support.find_bin_dir()


def test_the_newest_installed_postgresql_is_chosen(monkeypatch, tmp_path):
    for version in ("9.6", "15", "16"):
        folder = tmp_path / version / "bin"
        folder.mkdir(parents=True)
        for program in ("initdb", "pg_ctl"):
            (folder / program).write_text("#!/bin/sh\n")
            (folder / program).chmod(0o755)
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(
        pg_support.glob,
        "glob",
        lambda pattern: sorted(str(p) for p in tmp_path.glob("*/bin/pg_ctl")),
    )
    assert pg_support.find_bin_dir() == str(tmp_path / "16" / "bin")
