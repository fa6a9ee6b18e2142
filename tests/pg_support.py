"""A throwaway PostgreSQL cluster for the test session: initdb into a temporary
folder, a free port on 127.0.0.1, settings for speed (durability off), and a
fresh empty database per test.

initdb and pg_ctl refuse to run as root, and CI runs as root: then the server runs
as the user ``postgres`` (Debian's package creates it) or, failing that, a system
user created for it, which owns the cluster's folder.

Authentication: the unix socket (in the cluster's folder) trusts everyone, for this
module's own administration; TCP on 127.0.0.1 asks for a password (scram-sha-256,
PostgreSQL's default), so that the app's URLs are the ones a site writes:
``postgresql://take_a_number:PASSWORD@127.0.0.1:PORT/DBNAME``."""

import contextlib
import glob
import itertools
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time

SUPERUSER = "postgres"
SUPERUSER_PASSWORD = "postgres-test"
TEST_ROLE = "take_a_number"
TEST_PASSWORD = "take-a-number-test"
# The user the server runs as when the tests run as root, if there is no ``postgres``.
SYSTEM_USER = "take-a-number-test"

# Durability against power loss off: a test cluster never outlives the machine's uptime.
# synchronous_commit stays on: with fsync off a commit only writes the WAL to the OS
# (no measurable cost), so a commit survives a crash of PostgreSQL (stop(mode="immediate")),
# as the fault tests expect of every acknowledged ticket. Enough connections for many app
# instances, each with its pool and its listener.
SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "on",
    "full_page_writes": "off",
    "max_connections": "300",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "max_wal_size": "'1GB'",
    "logging_collector": "off",
}

MISSING = (
    "PostgreSQL's initdb and pg_ctl are neither on PATH nor in /usr/lib/postgresql/*/bin: "
    "apt-get install -y postgresql (scripts/test does)"
)


class Literal:
    """A value for ``PostgreSQLServer.admin_execute``, quoted as a string."""

    def __init__(self, value):
        self.value = value


class PostgreSQLUnavailable(RuntimeError):
    """The test cluster cannot be started; the message says what is missing."""


def find_bin_dir():
    """The folder holding initdb and pg_ctl: PATH first, then Debian's newest
    /usr/lib/postgresql/<version>/bin (not on PATH there)."""
    on_path = shutil.which("pg_ctl")
    if on_path:
        # Resolved: Debian's /usr/bin/pg_ctl may be a link to a wrapper elsewhere.
        folder = os.path.dirname(os.path.realpath(on_path))
        if os.access(os.path.join(folder, "initdb"), os.X_OK):
            return folder
    versions = glob.glob("/usr/lib/postgresql/*/bin/pg_ctl")
    versions.sort(key=lambda path: [int(n) for n in re.findall(r"\d+", path)], reverse=True)
    for pg_ctl in versions:
        folder = os.path.dirname(pg_ctl)
        if os.access(os.path.join(folder, "initdb"), os.X_OK):
            return folder
    raise PostgreSQLUnavailable(MISSING)


def server_user():
    """The unprivileged user to run the server as, or None when not root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", SYSTEM_USER):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            pass
    created = subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SYSTEM_USER],
        capture_output=True,
        text=True,
    )
    if created.returncode != 0:
        raise PostgreSQLUnavailable(
            f"running as root, PostgreSQL needs a user of its own, and useradd {SYSTEM_USER} "
            f"failed: {created.stderr}"
        )
    return SYSTEM_USER


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PostgreSQLServer:
    """A PostgreSQL cluster in a temporary folder, on a free port of 127.0.0.1."""

    def __init__(self):
        try:
            import psycopg  # noqa: F401
        except ImportError as error:
            raise PostgreSQLUnavailable(
                "psycopg is not installed: pip install -e '.[test]' (scripts/test does)"
            ) from error
        self.bin_dir = find_bin_dir()
        self.user = server_user()
        self.port = None
        self.directory = None
        self._database_numbers = itertools.count(1)
        self._admin = None

    @property
    def data_dir(self):
        return os.path.join(self.directory, "data")

    @property
    def socket_dir(self):
        return os.path.join(self.directory, "socket")

    @property
    def log_path(self):
        return os.path.join(self.directory, "server.log")

    @property
    def superuser_url(self):
        return self.url("postgres", SUPERUSER, SUPERUSER_PASSWORD)

    def url(self, dbname, user=TEST_ROLE, password=TEST_PASSWORD):
        return f"postgresql://{user}:{password}@127.0.0.1:{self.port}/{dbname}"

    def log(self):
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as log:
                return log.read()
        except FileNotFoundError:
            return ""

    def _run(self, program, *args):
        """Run one of PostgreSQL's programs as the server's user."""
        command = [os.path.join(self.bin_dir, program), *args]
        if self.user:
            command = ["runuser", "-u", self.user, "--", *command]
        result = subprocess.run(
            command, cwd=self.directory, capture_output=True, text=True, timeout=120
        )
        if result.returncode != 0:
            raise PostgreSQLUnavailable(
                f"{program} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
                f"{self.log()}"
            )
        return result

    def _make_folder(self, path, mode=0o700):
        os.makedirs(path, mode=mode, exist_ok=True)
        if self.user:
            entry = pwd.getpwnam(self.user)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def create(self):
        """initdb into a new temporary folder and start the server."""
        # Not under pytest's tmp_path (nor root's TMPDIR): those folders are private to
        # root, and the server's user must reach its data.
        self.directory = tempfile.mkdtemp(
            prefix="take-a-number-pg-", dir="/tmp" if self.user else None
        )
        self._make_folder(self.directory)
        self._make_folder(self.data_dir)
        self._make_folder(self.socket_dir)
        password_file = os.path.join(self.directory, "password")
        with open(password_file, "w") as file:
            file.write(SUPERUSER_PASSWORD + "\n")
        os.chmod(password_file, 0o644)
        try:
            self._run(
                "initdb",
                "--pgdata",
                self.data_dir,
                "--username",
                SUPERUSER,
                f"--pwfile={password_file}",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                # C: text compares byte by byte, as SQLite's default collation does.
                "--locale=C",
                "--no-sync",
            )
        finally:
            os.remove(password_file)
        self.port = free_port()
        settings = dict(
            SETTINGS, port=str(self.port), unix_socket_directories=f"'{self.socket_dir}'"
        )
        with open(os.path.join(self.data_dir, "postgresql.conf"), "a") as conf:
            conf.write("\n# tests/pg_support.py\n")
            conf.writelines(f"{name} = {value}\n" for name, value in settings.items())
        self.start()
        # Utility statements take no parameters: quoted by psycopg.sql instead.
        self.admin_execute("CREATE ROLE {} LOGIN PASSWORD {}", TEST_ROLE, Literal(TEST_PASSWORD))
        return self

    def start(self):
        """Start the server (again), on the same port and data."""
        self._run("pg_ctl", "--pgdata", self.data_dir, "--log", self.log_path, "--wait", "start")
        return self

    def stop(self, mode="fast"):
        """Stop the server: ``fast`` rolls back open transactions and closes every
        connection; ``immediate`` is as abrupt as a crash (recovery at the next start)."""
        self._close_admin()
        self._run("pg_ctl", "--pgdata", self.data_dir, "--mode", mode, "--wait", "stop")

    def restart(self, mode="fast"):
        self.stop(mode)
        self.start()

    def is_running(self):
        """Whether it accepts connections (pg_isready, which root may run)."""
        result = subprocess.run(
            [os.path.join(self.bin_dir, "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
            capture_output=True,
        )
        return result.returncode == 0

    def admin(self):
        """The superuser's autocommit connection, through the unix socket."""
        import psycopg

        if self._admin is None or self._admin.closed or self._admin.broken:
            self._admin = psycopg.connect(
                host=self.socket_dir,
                port=self.port,
                user=SUPERUSER,
                dbname="postgres",
                autocommit=True,
            )
        return self._admin

    def admin_execute(self, statement, *names):
        """Run a statement as the superuser; ``{}`` in it are the names, quoted as
        identifiers (or as literals, wrapped in ``Literal``)."""
        from psycopg import sql

        quoted = [
            sql.Literal(name.value) if isinstance(name, Literal) else sql.Identifier(name)
            for name in names
        ]
        return self.admin().execute(sql.SQL(statement).format(*quoted))

    def _close_admin(self):
        if self._admin is not None:
            self._admin.close()
            self._admin = None

    def create_database(self):
        """A fresh, empty database owned by the test role; its name."""
        name = f"test_{next(self._database_numbers)}"
        # FILE_COPY: copying template0's files is faster than WAL-logging them block by
        # block (the default since PostgreSQL 15); its checkpoint is cheap with fsync off.
        self.admin_execute(
            "CREATE DATABASE {} OWNER {} TEMPLATE template0 STRATEGY FILE_COPY", name, TEST_ROLE
        )
        return name

    def drop_database(self, name):
        """Drop it, ending any connection a test left open; a server the test left
        stopped is started again first, for the next tests."""
        if not self.is_running():
            self.start()
        self.admin_execute("DROP DATABASE IF EXISTS {} WITH (FORCE)", name)

    def destroy(self):
        """Stop the server, whatever state it is in, and remove its folder."""
        if self.directory is None:
            return
        self._close_admin()
        if os.path.exists(os.path.join(self.data_dir, "postmaster.pid")):
            with contextlib.suppress(PostgreSQLUnavailable):
                self._run("pg_ctl", "--pgdata", self.data_dir, "--mode", "immediate", "stop")
        shutil.rmtree(self.directory, ignore_errors=True)
        self.directory = None


def start_postgresql():
    """A started test cluster, or PostgreSQLUnavailable saying why not."""
    server = PostgreSQLServer()
    started = time.monotonic()
    try:
        server.create()
    except BaseException:
        server.destroy()
        raise
    server.start_seconds = time.monotonic() - started
    return server
