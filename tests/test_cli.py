"""The take-a-number command and runner.py, run as a user would run them."""

import contextlib
import json
import os
import pathlib
import platform
import resource
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from support import PASSWORD, create_queue
from webtest import TestApp

from take_a_number import cli, main
from take_a_number.store import MIGRATIONS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMAND = os.path.join(os.path.dirname(sys.executable), "take-a-number")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def ini(tmp_path):
    """An ini file that uses the project's app.ini with its own database and port."""
    port = free_port()
    path = tmp_path / "site.ini"
    path.write_text(
        f"[app:main]\nuse = config:{ROOT}/app.ini\ndatabase = %(here)s/data/site.sqlite\n\n"
        f"[server:main]\nuse = egg:waitress#main\nhost = 127.0.0.1\nport = {port}\n"
        "threads = 520\n"
    )
    return path, port


def run(*args, **kwargs):
    return subprocess.run([COMMAND, *args], capture_output=True, text=True, timeout=60, **kwargs)


def test_migrate_creates_the_database_where_the_ini_says(ini, tmp_path):
    path, _ = ini
    result = run("--config", str(path), "migrate")
    assert result.returncode == 0, result.stderr
    assert "schema up to date" in result.stdout
    database = tmp_path / "data" / "site.sqlite"
    assert database.exists()
    with sqlite3.connect(database) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        applied = [name for (name,) in conn.execute("SELECT name FROM migrations ORDER BY name")]
    assert applied == [name for name, _ in MIGRATIONS]


def test_database_path_can_come_from_the_environment_when_the_ini_leaves_it_out(tmp_path):
    path = tmp_path / "site.ini"
    path.write_text(f"[app:main]\nuse = config:{ROOT}/app.ini\n")
    elsewhere = tmp_path / "elsewhere" / "db.sqlite"
    env = dict(os.environ, TAKE_A_NUMBER_DATABASE=str(elsewhere))
    assert run("--config", str(path), "migrate", env=env).returncode == 0
    assert elsewhere.exists()


def test_the_database_the_ini_sets_wins_over_the_environment(ini, tmp_path):
    path, _ = ini
    elsewhere = tmp_path / "elsewhere" / "db.sqlite"
    env = dict(os.environ, TAKE_A_NUMBER_DATABASE=str(elsewhere))
    assert run("--config", str(path), "migrate", env=env).returncode == 0
    assert (tmp_path / "data" / "site.sqlite").exists()
    assert not elsewhere.exists()


def test_backup_copies_the_database_while_it_is_in_use(ini, tmp_path):
    path, _ = ini
    run("--config", str(path), "migrate")
    live = sqlite3.connect(tmp_path / "data" / "site.sqlite")
    live.execute(
        "INSERT INTO queues (id, title, password_hash, created_at) VALUES ('lab', 'Lab', 'x', 0)"
    )
    live.commit()
    live.execute("BEGIN")  # a reader holding the database open
    live.execute("SELECT * FROM queues").fetchall()
    result = run("--config", str(path), "backup", str(tmp_path / "copy.sqlite"))
    assert result.returncode == 0, result.stderr
    live.rollback()
    with sqlite3.connect(tmp_path / "copy.sqlite") as copy:
        assert copy.execute("SELECT title FROM queues").fetchall() == [("Lab",)]
    again = run("--config", str(path), "backup", str(tmp_path / "copy.sqlite"))
    assert again.returncode != 0
    assert "exists" in again.stderr


def test_missing_config_file_is_a_clear_error(tmp_path):
    result = run("--config", str(tmp_path / "nope.ini"), "migrate")
    assert result.returncode == 2
    assert "no such config file" in result.stderr


def test_unknown_setting_is_a_clear_error(tmp_path):
    path = tmp_path / "bad.ini"
    path.write_text("[app:main]\nuse = egg:take-a-number\ndatabse = typo.sqlite\n")
    result = run("--config", str(path), "migrate")
    assert result.returncode == 1
    assert "unknown settings in [app:main]: databse" in result.stderr


def wait_for(url, process, seconds=20):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(process.stderr.read())
        try:
            return urllib.request.urlopen(url, timeout=2)
        except urllib.error.HTTPError as error:
            return error  # an answer all the same, with its status and body
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer")


@contextlib.contextmanager
def running(command, **options):
    """``command`` started (its stderr read as text), stopped however the test ends;
    afterwards ``process.output`` is ``(stdout, stderr)``."""
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, **options)
    try:
        yield process
    finally:
        process.terminate()
        process.output = process.communicate(timeout=10)


@pytest.mark.slow
def test_serve_answers_on_the_port_of_the_ini(ini):
    path, port = ini
    with running([COMMAND, "--config", str(path), "serve"]) as process:
        response = wait_for(f"http://127.0.0.1:{port}/", process)
        assert response.status == 200
        assert b"Create a queue" in response.read()
        assert response.headers["Server"] == "waitress"
        secret = path.parent / "data" / "secret"
        assert oct(secret.stat().st_mode & 0o777) == "0o600"


@pytest.mark.slow
def test_runner_module_builds_the_wsgi_application_from_the_ini(ini):
    path, port = ini
    env = dict(os.environ, TAKE_A_NUMBER_CONFIG=str(path))
    with running(
        [
            os.path.join(os.path.dirname(sys.executable), "waitress-serve"),
            f"--port={port}",
            "--host=127.0.0.1",
            "runner:application",
        ],
        cwd=ROOT,
        env=env,
    ) as process:
        response = wait_for(f"http://127.0.0.1:{port}/nosuch", process)
        assert response.status == 404
        assert b"Create the queue" in response.read()


def test_serve_raises_a_low_open_files_limit_to_fit_its_connections():
    import resource

    from take_a_number.cli import raise_open_files_limit

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
        assert raise_open_files_limit(1200) == min(1400, hard)
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == min(1400, hard)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.slow
@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's tcache only")
def test_the_server_runs_without_glibcs_per_thread_malloc_caches(ini):
    # With hundreds of threads, each thread's cache of freed blocks made RSS
    # grow for many minutes (docs/benchmarks.md, "Memory over a long run").
    path, port = ini
    environ = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    with running([COMMAND, "--config", str(path), "serve"], env=environ) as process:
        wait_for(f"http://127.0.0.1:{port}/", process)
        with open(f"/proc/{process.pid}/environ", "rb") as f:
            served_with = f.read().split(b"\0")
        assert b"GLIBC_TUNABLES=glibc.malloc.tcache_count=0" in served_with


def queue_with_version(database, queue_id="lab"):
    """A queue made in ``database`` (another process than the server, as a CLI would
    write); returns the app that made it and the queue's version."""
    app = TestApp(main({}, database=str(database)))
    create_queue(app, queue_id)
    return app, app.get(f"/{queue_id}/updates").json["version"]


def hold_live_pages(port, count, since, queue_id="lab"):
    """``count`` connections, each asking for the queue's updates past ``since``."""
    pages = []
    for _ in range(count):
        page = socket.create_connection(("127.0.0.1", port), timeout=30)
        page.sendall(f"GET /{queue_id}/updates?since={since} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        pages.append(page)
    return pages


def answers_now(pages, seconds):
    """The pages answered within ``seconds`` (their first bytes), the rest left waiting."""
    import selectors

    answered = {}
    with selectors.DefaultSelector() as selector:
        for page in pages:
            selector.register(page, selectors.EVENT_READ)
        deadline = time.monotonic() + seconds
        while len(answered) < len(pages) and time.monotonic() < deadline:
            for key, _ in selector.select(max(0, deadline - time.monotonic())):
                answered[key.fileobj] = key.fileobj.recv(65536)
                selector.unregister(key.fileobj)
    return answered


def test_the_readmes_serve_holds_thousands_of_live_pages_in_little_memory(tmp_path):
    """app.ini's own server: 4 worker processes holding 2,000 live updates together, each
    request parked without a thread, few threads and little memory each, and a file per
    connection allowed; one change answers them all."""
    port = free_port()
    path = tmp_path / "site.ini"
    path.write_text(
        f"[app:main]\nuse = config:{ROOT}/app.ini\ndatabase = %(here)s/data/site.sqlite\n\n"
        f"[server:main]\nuse = config:{ROOT}/app.ini\nport = {port}\n"
    )
    writer, version = queue_with_version(tmp_path / "data" / "site.sqlite")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4096)), hard))
    pages = []
    try:
        with running([COMMAND, "--config", str(path), "serve"]) as process:
            wait_for(f"http://127.0.0.1:{port}/", process, seconds=60)
            serve = pathlib.Path(f"/proc/{process.pid}")
            workers = (serve / "task" / str(process.pid) / "children").read_text().split()
            assert len(workers) == cli.DEFAULT_WORKERS == 4
            pages = hold_live_pages(port, 2000, version)
            assert answers_now(pages, 3) == {}, "every page is held, none told to poll"
            # Whichever worker answers, its health is the whole server's, and each worker's.
            for _ in range(4):
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health") as r:
                    said = json.load(r)
                assert said["push"]["held"] == 2000
                assert said["push"]["capacity"] == 4 * 1600
                assert sorted(p["pid"] for p in said["processes"]) == sorted(map(int, workers))
                assert sum(p["held"] for p in said["processes"]) == 2000
                assert all(p["capacity"] == 1600 and not p["full"] for p in said["processes"])
            statuses, limits = [], []
            for pid in workers:
                proc = pathlib.Path(f"/proc/{pid}")
                lines = (proc / "status").read_text().splitlines()
                statuses.append(dict(line.split(":", 1) for line in lines))
                limits.append((proc / "limits").read_text())
            writer.app.store.take_ticket("lab", "from-another-process", time.time())
            answered = answers_now(pages, 20)
            assert len(answered) == len(pages)
            assert all(b" 200 OK" in first.split(b"\r\n", 1)[0] for first in answered.values())
    finally:
        for page in pages:
            page.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    for status, limit in zip(statuses, limits, strict=True):
        threads = int(status["Threads"])
        assert threads < 30  # app.ini's 8 threads and a few of the app's own
        # 1 MiB of address space per thread's stack, not 8 MiB.
        assert int(status["VmSize"].split()[0]) < threads * 2 * 1024 + 2 * 1024**2
        assert int(status["VmRSS"].split()[0]) < 150 * 1024
        open_files = next(line for line in limit.splitlines() if line.startswith("Max open files"))
        assert int(open_files.split()[3]) >= min(
            1840, resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        )


def test_serve_holds_no_more_live_updates_than_its_connections_allow_and_says_so(ini, tmp_path):
    path, port = ini
    path.write_text(
        path.read_text().replace("threads = 520", "threads = 4\nconnection_limit = 30")
        + "\n[serve]\nworkers = 1\n"
    )
    _, version = queue_with_version(tmp_path / "data" / "site.sqlite")
    pages = []
    with running([COMMAND, "--config", str(path), "serve"]) as process:
        wait_for(f"http://127.0.0.1:{port}/", process)
        # Four threads, 25 pages: 22 held (connection_limit 30 less 8), 3 told to poll.
        pages = hold_live_pages(port, 25, version)
        answered = answers_now(pages, 3)
        for page in pages:
            page.close()
    assert len(answered) == 3
    assert all(b"\r\nRetry-After: 5\r\n" in first for first in answered.values()), answered
    log = process.output[1]
    assert "waitress has connection_limit = 30: this process holds at most 22 live updates" in log
    assert "raise connection_limit to 508, or lower push_max_held" in log


def test_an_operators_own_malloc_tunables_are_kept():
    from take_a_number.cli import command_without_thread_malloc_caches

    chosen = {"GLIBC_TUNABLES": "glibc.malloc.tcache_count=3"}
    assert command_without_thread_malloc_caches(chosen, libc="glibc") is None
    assert command_without_thread_malloc_caches({}, libc="") is None  # musl, macOS
    _, _, environ = command_without_thread_malloc_caches(
        {"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}, libc="glibc"
    )
    assert environ["GLIBC_TUNABLES"] == "glibc.malloc.arena_max=2:glibc.malloc.tcache_count=0"


@pytest.fixture
def composite_ini(tmp_path):
    """Two instances in a urlmap, as tests/embedding.ini (and docs/deployment.md) compose them."""
    port = free_port()
    with open(os.path.join(ROOT, "tests", "embedding.ini")) as f:
        embedding = f.read()
    path = tmp_path / "embed.ini"
    path.write_text(
        f"[DEFAULT]\ndata_dir = %(here)s/data\n\n{embedding}\n"
        "[server:main]\nuse = egg:waitress#main\nhost = 127.0.0.1\n"
        f"port = {port}\nthreads = 1020\n"
    )
    return path, port


def test_migrate_acts_on_every_app_of_a_composite_ini(composite_ini, tmp_path):
    path, _ = composite_ini
    result = run("--config", str(path), "migrate")
    assert result.returncode == 0, result.stderr
    for name in ("a", "b"):
        database = tmp_path / "data" / name / "queues.sqlite"
        assert database.exists()
        assert f"{database}: schema up to date" in result.stdout
    only_a = run("--config", str(path), "migrate", "--app", "queue_a")
    assert only_a.stdout.count("schema up to date") == 1


def test_backup_of_a_composite_ini_is_one_app_at_a_time_named_with_app(composite_ini, tmp_path):
    path, _ = composite_ini
    refused = run("--config", str(path), "backup", str(tmp_path / "copy.sqlite"))
    assert refused.returncode == 1
    assert "2 Take A Number apps (queue_a, queue_b)" in refused.stderr
    assert "--app NAME" in refused.stderr
    copied = run("--config", str(path), "backup", "--app", "queue_b", str(tmp_path / "b.sqlite"))
    assert copied.returncode == 0, copied.stderr
    assert f"backed up {tmp_path / 'data' / 'b' / 'queues.sqlite'}" in copied.stdout
    unknown = run("--config", str(path), "backup", "--app", "queue_c", str(tmp_path / "c.sqlite"))
    assert "no Take A Number app [app:queue_c]; its apps are: queue_a, queue_b" in unknown.stderr


@pytest.mark.slow
def test_serve_serves_a_composite_ini_of_two_apps(composite_ini):
    path, port = composite_ini
    with running([COMMAND, "--config", str(path), "serve"]) as process:
        for prefix in ("/a", "/b"):
            response = wait_for(f"http://127.0.0.1:{port}{prefix}/", process)
            assert response.status == 200
            assert f'action="{prefix}/' in response.read().decode()


def test_init_writes_the_commented_app_ini_and_keeps_an_edited_one(tmp_path):
    site = tmp_path / "site"
    written = run("init", str(site))
    assert written.returncode == 0, written.stderr
    with open(os.path.join(ROOT, "app.ini")) as f:
        assert (site / "app.ini").read_text() == f.read()
    assert sorted(os.listdir(site)) == ["app.ini"]  # the deploy files only on request
    (site / "app.ini").write_text("# edited\n")
    again = run("init", str(site))
    assert again.returncode == 1
    assert "already has app.ini; nothing written (--force replaces them)" in again.stderr
    assert (site / "app.ini").read_text() == "# edited\n"
    assert run("init", str(site), "--force").returncode == 0
    assert (site / "app.ini").read_text().startswith("# Take A Number")


def test_init_deploy_writes_runner_and_every_deploy_file(tmp_path):
    site = tmp_path / "site"
    assert run("init", "--deploy", str(site)).returncode == 0
    expected = {"app.ini", "runner.py"}
    for folder, dirs, files in os.walk(os.path.join(ROOT, "deploy")):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        expected |= {os.path.relpath(os.path.join(folder, f), ROOT) for f in files}
    written = {
        os.path.relpath(os.path.join(folder, f), site)
        for folder, _, files in os.walk(site)
        for f in files
    }
    assert written == expected
    assert os.access(site / "deploy" / "elasticbeanstalk" / "data-dir.sh", os.X_OK)


def test_the_wsgi_module_without_an_ini_says_how_to_get_one(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TAKE_A_NUMBER_CONFIG"}
    result = subprocess.run(
        [sys.executable, "-c", "import take_a_number.wsgi"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert f"no such config file: {tmp_path / 'app.ini'}" in result.stderr
    assert "TAKE_A_NUMBER_CONFIG" in result.stderr
    assert "take-a-number init DIR" in result.stderr


@pytest.mark.slow
def test_the_wsgi_module_serves_the_ini_named_by_take_a_number_config(ini, tmp_path):
    path, port = ini
    env = dict(os.environ, TAKE_A_NUMBER_CONFIG=str(path))
    with running(
        [
            os.path.join(os.path.dirname(sys.executable), "waitress-serve"),
            f"--port={port}",
            "--host=127.0.0.1",
            "take_a_number.wsgi:application",
        ],
        cwd=tmp_path,
        env=env,
    ) as process:
        assert wait_for(f"http://127.0.0.1:{port}/", process).status == 200
        assert (tmp_path / "data" / "site.sqlite").exists()


def test_an_unknown_setting_in_a_composite_names_its_app(composite_ini):
    path, _ = composite_ini
    path.write_text(path.read_text().replace("[app:queue_b]\n", "[app:queue_b]\ndatabse = x\n"))
    result = run("--config", str(path), "migrate")
    assert result.returncode == 1
    assert "unknown settings in [app:queue_b]: databse" in result.stderr


# -- serve --host --port ---------------------------------------------------------------


@pytest.mark.slow
def test_serve_listens_where_host_and_port_say_instead_of_the_ini(ini):
    path, ini_port = ini
    port = free_port()
    with running(
        [COMMAND, "--config", str(path), "serve", "--host", "0.0.0.0", "--port", str(port)],
        stdout=subprocess.PIPE,
    ) as process:
        assert wait_for(f"http://127.0.0.1:{port}/", process).status == 200
        with pytest.raises(OSError), socket.create_connection(("127.0.0.1", ini_port), 1):
            pass
    out = process.output[0]
    assert "Phones on the same network: http://" in out and f":{port}/" in out


def test_serve_port_option_keeps_the_ini_host_and_drops_its_listen():
    conf = {"listen": "127.0.0.1:8080", "host": "127.0.0.1", "port": "8080"}
    assert cli.server_address(conf, None, 9000) == {"host": "127.0.0.1", "port": "9000"}
    assert "listen" not in conf
    assert cli.server_address({}, "0.0.0.0", None) == {"host": "0.0.0.0", "port": "8080"}


@pytest.mark.parametrize("port", ["http", "-1", "65536"])
def test_serve_refuses_a_port_that_is_no_port(ini, port):
    result = run("--config", str(ini[0]), "serve", "--port", port)
    assert result.returncode == 2
    assert "is not a port (0 to 65535)" in result.stderr


# -- reset-password ----------------------------------------------------------------------


def make_queue(tmp_path, queue_id="lab"):
    """A queue in the ini fixture's database, as the app creates it."""
    database = str(tmp_path / "data" / "site.sqlite")
    app = main({"here": str(tmp_path)}, database=database, rate_limit_sign_in="off")
    create_queue(TestApp(app), queue_id=queue_id)
    return app, PASSWORD


def signs_in(app, password, queue_id="lab"):
    form = TestApp(app).get(f"/{queue_id}/serve").forms[0]
    form["name"], form["password"] = "Desk 9", password
    return form.submit(status="*").status_int == 303


def test_reset_password_sets_a_new_password_read_from_stdin(ini, tmp_path):
    app, old = make_queue(tmp_path)
    result = run(
        "--config",
        str(ini[0]),
        "reset-password",
        "lab",
        "--password-stdin",
        input="battery staple\n",
    )
    assert result.returncode == 0, result.stderr
    assert "The password of lab is changed" in result.stdout
    assert signs_in(app, "battery staple")
    assert not signs_in(app, old)


def test_reset_password_refuses_an_unknown_queue_plainly(ini, tmp_path):
    make_queue(tmp_path)
    result = run(
        "--config",
        str(ini[0]),
        "reset-password",
        "nosuch",
        "--password-stdin",
        input="battery staple\n",
    )
    assert result.returncode == 1
    assert "error: there is no queue called 'nosuch'" in result.stderr
    assert "nothing changed" in result.stderr and "Traceback" not in result.stderr


def test_reset_password_refuses_a_short_password_and_changes_nothing(ini, tmp_path):
    app, old = make_queue(tmp_path)
    result = run(
        "--config", str(ini[0]), "reset-password", "lab", "--password-stdin", input="short\n"
    )
    assert result.returncode == 1
    assert "Use at least 8 characters. Nothing changed." in result.stderr
    assert signs_in(app, old)


def test_reset_password_at_a_terminal_asks_twice_and_refuses_two_that_differ(
    ini, tmp_path, monkeypatch, capsys
):
    app, old = make_queue(tmp_path)
    typed = iter(["battery staple", "battery stapel"])
    monkeypatch.setattr(cli.getpass, "getpass", lambda prompt: next(typed))
    with pytest.raises(SystemExit, match="the two passwords differ; nothing changed"):
        cli.main(["--config", str(ini[0]), "reset-password", "lab"])
    assert signs_in(app, old)
    typed = iter(["battery staple", "battery staple"])
    assert cli.main(["--config", str(ini[0]), "reset-password", "lab"]) == 0
    assert signs_in(app, "battery staple")
