"""The ``take-a-number`` command: serve, migrate, backup, copy-to, reset-password and init."""

import argparse
import configparser
import getpass
import logging.config
import os
import platform
import resource
import socket
import sys
import threading
import time

from paste.deploy import loadapp
from paste.deploy.loadwsgi import APP, SERVER, loadcontext

from . import config, eventloop, forms, make_store, prefork, security, site_files
from . import main as app_factory
from .store import copy
from .store.postgresql import redacted


def _config_uri(path):
    return "config:" + os.path.abspath(path)


def instances(path):
    """{section name: settings} of every Take A Number app in the ini, in its order.

    One for an ini whose [app:main] is the app; one per app for a composite
    (a urlmap, say, whose [app:a] and [app:b] each use egg:take-a-number).
    """
    parser = configparser.RawConfigParser(strict=False)
    parser.read(path)
    found = {}
    for section in parser.sections():
        kind, _, name = (part.strip() for part in section.partition(":"))
        if kind not in ("app", "application") or not name:
            continue
        try:
            context = loadcontext(APP, _config_uri(path), name=name)
        except (LookupError, ImportError):
            continue  # another app, whose package is not here: not ours to act on
        if context.object is app_factory:
            found[name] = config.read_settings(
                dict(context.local_conf), here=context.global_conf.get("here"), section=name
            )
    if not found:
        raise config.SettingsError("no app in it uses egg:take-a-number")
    return found


def chosen_instances(args):
    """The instances a command acts on: every one, or the one --app names."""
    found = instances(args.config)
    if args.app is None:
        return found
    if args.app not in found:
        raise config.SettingsError(
            f"no Take A Number app [app:{args.app}]; its apps are: {', '.join(found)}"
        )
    return {args.app: found[args.app]}


def _setup_logging(path):
    path = os.path.abspath(path)
    parser = configparser.ConfigParser()
    parser.read(path)
    if not parser.has_section("loggers"):
        logging.basicConfig(level=logging.INFO)
        return
    logging.config.fileConfig(
        path,
        defaults={"here": os.path.dirname(path), "__file__": path},
        disable_existing_loggers=False,
    )


# Connections of each waitress process that held live updates never take, when serve
# sizes push: for pages, keep-alives and the servicers' presses.
PAGE_CONNECTIONS_KEPT = 40


def _waitress_conf(path):
    """[server:main]'s settings (through any ``use = config:``) if it is waitress; else None."""
    try:
        server = loadcontext(SERVER, "config:" + path)
    except LookupError:
        return None  # no [server:main]: another host serves the app
    return server.local_conf if _is_waitress(server) else None


def _is_waitress(server):
    """Whether a [server:main] context is waitress's."""
    return server.object.__module__.split(".")[0] == "waitress"


def size_push_to_connections(path, server, found, environ):
    """Under serve, an app that does not set push_max_held holds what waitress's connections allow.

    Serve's waitress holds a live update without a thread (eventloop.py, "Parked
    requests"), so what bounds them is ``connection_limit``: less
    PAGE_CONNECTIONS_KEPT (1600 of app.ini's 1640, in each worker), when it is more
    than the default. Filled in as the environment's TAKE_A_NUMBER_PUSH_MAX_HELD,
    which app.ini's own line and the operator's environment both win over. Only for
    an ini of one app: instances side by side share the connections. ``server``:
    waitress's settings (``_waitress_conf``), None for another server.
    """
    name = config.ENV_PREFIX + "PUSH_MAX_HELD"
    if server is None or len(found) != 1 or name in environ:
        return
    [app] = found
    if "push_max_held" in loadcontext(APP, _config_uri(path), name=app).local_conf:
        return
    held = int(server.get("connection_limit", "100")) - PAGE_CONNECTIONS_KEPT
    if held > config.DEFAULTS["push_max_held"]:
        environ[name] = str(held)


def raise_open_files_limit(connection_limit):
    """Let the process open a file per connection (plus a margin), if the system allows.

    Waitress may hold ``connection_limit`` sockets; a common default soft limit of
    1024 open files is below app.ini's 1200 connections.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = connection_limit + 200
    if soft >= wanted:
        return soft
    new = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if new > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    if new < wanted:
        logging.getLogger(__name__).warning(
            "open files limit %s is below connection_limit %s + 200: raise it (ulimit -n)",
            new,
            connection_limit,
        )
    return new


# glibc keeps, per thread, a cache of freed small blocks (its tcache, up to about
# 240 KiB). Waitress hands requests to its hundreds of threads in turn, so each
# fills its own: in benchmarks/soak.py RSS grew by some 60 MiB over minutes
# with these caches, and levelled off without them (docs/benchmarks.md).
# Python allocates small objects itself, so they save little. Only the
# environment can set them, before the process starts.
THREAD_MALLOC_CACHES_OFF = "glibc.malloc.tcache_count=0"


def command_without_thread_malloc_caches(environ, libc=None):
    """(executable, argv, environ) to run this command again with glibc's tcache off.

    None where there is nothing to do: not glibc, or GLIBC_TUNABLES already
    says how big the tcache is (the operator's choice, or this very re-run).
    """
    libc = platform.libc_ver()[0] if libc is None else libc
    tunables = environ.get("GLIBC_TUNABLES", "")
    if libc != "glibc" or "glibc.malloc.tcache" in tunables:
        return None
    environ = dict(
        environ, GLIBC_TUNABLES=":".join(filter(None, [tunables, THREAD_MALLOC_CACHES_OFF]))
    )
    return sys.executable, [sys.executable, *sys.orig_argv[1:]], environ


# The stack of each of waitress's threads (thousands, one per held live update).
# Only what a thread touches is memory (a few pages); the rest is address space,
# 8 MiB a thread by default: 13 GiB for a worker's 1,620 threads, which a system that
# does not overcommit memory refuses. 1 MiB is ample for the app's deepest calls.
THREAD_STACK_BYTES = 1024 * 1024


# Processes `serve` runs behind its port when neither --workers nor the ini's
# [serve] workers says (prefork.py; docs/architecture.md, "Busy servers").
DEFAULT_WORKERS = 4
MAX_WORKERS = 64


def worker_count(text, source):
    """A number of worker processes, 1 to MAX_WORKERS, or a SettingsError naming its source."""
    try:
        count = int(str(text).strip())
    except ValueError:
        count = 0
    if not 1 <= count <= MAX_WORKERS:
        raise config.SettingsError(
            f"{source} must be a whole number from 1 to {MAX_WORKERS}: {text!r}"
        )
    return count


def serve_workers(args):
    """How many processes serve: --workers, else the ini's [serve] workers, else the default."""
    if args.workers is not None:
        return args.workers
    parser = configparser.RawConfigParser(strict=False)
    parser.read(args.config)
    if parser.has_option("serve", "workers"):
        return worker_count(parser.get("serve", "workers"), "[serve] workers")
    return DEFAULT_WORKERS


def serve(args):
    again = command_without_thread_malloc_caches(os.environ)
    if again:
        os.execve(*again)
    _setup_logging(args.config)
    workers = serve_workers(args)
    path = os.path.abspath(args.config)
    waitress_conf = _waitress_conf(path)
    size_push_to_connections(path, waitress_conf, instances(args.config), os.environ)
    if waitress_conf is not None:
        raise_open_files_limit(int(waitress_conf.get("connection_limit", "100")))
    threading.stack_size(THREAD_STACK_BYTES)  # for every thread started from here on
    server = loadcontext(SERVER, _config_uri(args.config))
    if args.host is not None or args.port is not None:
        server.local_conf.update(server_address(server.local_conf, args.host, args.port))
        if server.local_conf["host"] in ("0.0.0.0", "::"):
            print(phones_hint(server.local_conf["port"]), flush=True)
    waitress = _is_waitress(server)
    if workers > 1 and not waitress:
        raise config.SettingsError(
            "workers > 1 run waitress ([server:main] use = egg:waitress#main): "
            "set workers = 1 for another server"
        )
    # Built here once even with workers: settings checked, schema migrated and
    # secret written before any worker starts, each of which builds its own.
    app = loadapp(_config_uri(args.config))
    if workers == 1:
        if not waitress:
            server.create()(app)  # another server than waitress: as it serves
            return
        try:
            one = eventloop.make_server(app, **server.local_conf)
        except (ValueError, OSError) as error:
            raise config.SettingsError(f"[server:main]: {error}") from None
        one.print_listen("Serving on http://{}:{}")
        prefork.settle_collector()
        one.run()
        return
    sockets = prefork.listening_sockets(server.local_conf)
    for sock in sockets:
        print(f"Serving on {prefork.url_of(sock)} ({workers} worker processes)", flush=True)
    del app
    worker = prefork.Worker(
        lambda: loadapp(_config_uri(args.config)),
        sockets,
        prefork.without_address(server.local_conf),
        workers,
    )
    sys.exit(prefork.Supervisor(workers, worker).run())


def server_address(local_conf, host, port):
    """[server:main]'s host and port, with ``--host`` and ``--port`` in place of either.

    Waitress's ``listen`` (if set) would win over both: it goes, replaced by them.
    """
    local_conf.pop("listen", None)
    return {
        "host": host or local_conf.get("host", "127.0.0.1"),
        "port": str(local_conf.get("port", "8080") if port is None else port),
    }


def phones_hint(port):
    """Where phones on the same network open the app (this machine's address there)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))  # a documentation address: nothing is sent
            address = probe.getsockname()[0]
    except OSError:
        address = "THIS-COMPUTERS-ADDRESS"
    return (
        f"Phones on the same network: http://{address}:{port}/ "
        "(create the queue from that address, so that its customer link works on them)"
    )


def workers_option(text):
    try:
        return worker_count(text, "--workers")
    except config.SettingsError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def port_number(text):
    """A TCP port, 0 (any free one) to 65535."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (0 to 65535)")
    return port


def migrate(args):
    for settings in chosen_instances(args).values():
        store = make_store(settings)
        names = store.applied_migrations()
        print(f"{store.path}: schema up to date ({len(names)} migrations: {', '.join(names)})")


def one_sqlite_instance(args, verb):
    """The settings of the one app a command acts on (a composite ini needs --app),
    whose database is an SQLite file."""
    found = chosen_instances(args)
    if len(found) > 1:
        raise config.SettingsError(
            f"it has {len(found)} Take A Number apps ({', '.join(found)}), each with its "
            f"own database: {verb} one at a time, naming it with --app NAME"
        )
    [settings] = found.values()
    if config.is_url(settings["database"]):
        raise config.SettingsError(
            f"its database is PostgreSQL, not an SQLite file: take-a-number {args.command} "
            "reads SQLite; pg_dump copies a PostgreSQL database (docs/deployment.md)"
        )
    return settings


def backup(args):
    if os.path.exists(args.path):
        raise SystemExit(f"error: {args.path} exists; choose a new file name")
    store = make_store(one_sqlite_instance(args, "back up"))
    store.backup(args.path)
    print(f"backed up {store.path} to {args.path}")


def copy_to(args):
    """Copy the app's SQLite database into an empty PostgreSQL database, and show the figures."""
    if not copy.is_postgresql_url(args.url):
        raise SystemExit(
            f"error: {args.url!r} is not a PostgreSQL URL: write "
            "postgresql://user:password@host:5432/dbname; nothing written"
        )
    settings = one_sqlite_instance(args, "copy")
    source = settings["database"]
    if not os.path.isfile(source):
        raise SystemExit(f"error: there is no database at {source}; nothing written")
    try:
        copied = copy.copy_to_postgresql(source, args.url)
    except copy.CopyError as error:
        raise SystemExit(f"error: {error}") from None
    compared = copied.figures
    print(f"copied {source} to {copy.redacted(args.url)} in {copied.seconds:.1f} s")
    print(f"{'table':<18}{'rows':>10}{'highest id':>12}")
    for table, figures in compared["tables"].items():
        highest = figures["highest id"]
        print(f"{table:<18}{figures['rows']:>10}{'-' if highest is None else highest:>12}")
    print(
        f"the same in both: every table's rows and highest id, and the last number and "
        f"tickets of each of the {len(compared['queues'])} queues"
    )
    for table, rows in copied.with_nul.items():
        print(
            f"{table}: {rows} row(s) held NUL characters in their text, which PostgreSQL "
            "cannot store: copied without them"
        )
    print(f"next: set database = {copy.redacted(args.url)} (its password in full) in {args.config}")
    if not settings["secret"]:
        print(
            f"keep the secret in {settings['secret_file']}: set secret_file = that path if the "
            "app on PostgreSQL would look elsewhere, or whoever is signed in must sign in again"
        )


def reset_password(args):
    """A new password for a queue whose owner forgot it (whoever runs the server knows it)."""
    queue_id = args.queue.strip().lower()
    found = chosen_instances(args)
    holding = {}
    for name, settings in found.items():
        store = make_store(settings)
        if store.get_queue(queue_id) is not None:
            holding[name] = store
    if not holding:
        where = ", ".join(redacted(settings["database"]) for settings in found.values())
        raise SystemExit(
            f"error: there is no queue called {queue_id!r} in {where}; give the queue's id, "
            "as in its link (http://.../QUEUE); nothing changed"
        )
    if len(holding) > 1:
        raise SystemExit(
            f"error: {len(holding)} apps have a queue called {queue_id!r} "
            f"({', '.join(holding)}): name one with --app NAME; nothing changed"
        )
    [store] = holding.values()
    password = _new_password(args, queue_id)
    store.set_password(queue_id, security.hash_password(password), time.time())
    print(
        f"The password of {queue_id} is changed. Whoever is signed in stays signed in "
        "(the owner can revoke them on the Manage page)."
    )


def _new_password(args, queue_id):
    """The new password: one line of stdin, or typed twice at the terminal; checked as the
    Manage page checks it."""
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass(f"New password for {queue_id}: ")
        if getpass.getpass("The same again: ") != password:
            raise SystemExit("error: the two passwords differ; nothing changed")
    _values, errors = forms.validate(forms.NewPasswordForm, {"new_password": password})
    if errors:
        raise SystemExit(f"error: {errors['new_password']} Nothing changed.")
    return password


def init(args):
    try:
        written = site_files.write(args.directory, deploy=args.deploy, force=args.force)
    except FileExistsError as error:
        raise SystemExit(
            f"error: {args.directory} already has {error}; nothing written (--force replaces them)"
        ) from None
    for path in written:
        print(f"wrote {path}")
    print(
        f"serve it: cd {args.directory} && take-a-number serve (or any WSGI server: "
        "take_a_number.wsgi:application reads ./app.ini)"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="take-a-number", description="Take A Number: a deli-counter queue in the browser."
    )
    parser.add_argument(
        "--config",
        default=config.config_file(os.environ),
        help="PasteDeploy ini file (default: app.ini, or $TAKE_A_NUMBER_CONFIG)",
    )
    # --config also works after the command: take-a-number serve --config other.ini
    after = argparse.ArgumentParser(add_help=False)
    after.add_argument("--config", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser(
        "serve", parents=[after], help="serve the app with the [server:main] of the ini file"
    )
    serve_parser.add_argument(
        "--host",
        help="listen on this address instead of [server:main]'s (0.0.0.0: every network, "
        "so that phones on the same network can open it)",
    )
    serve_parser.add_argument(
        "--port", type=port_number, help="listen on this port instead of [server:main]'s"
    )
    serve_parser.add_argument(
        "--workers",
        type=workers_option,
        help=f"processes that serve behind the port (default: the ini's [serve] workers, "
        f"else {DEFAULT_WORKERS}); [server:main]'s threads and connection_limit are each one's",
    )
    # A composite ini (a urlmap of several apps): --app picks one of its [app:NAME].
    one_app = argparse.ArgumentParser(add_help=False)
    one_app.add_argument(
        "--app", metavar="NAME", help="only the app of [app:NAME] (default: every app of the ini)"
    )
    commands.add_parser(
        "migrate",
        parents=[after, one_app],
        help="create or upgrade the database schema (of each app of a composite ini)",
    )
    backup_parser = commands.add_parser(
        "backup",
        parents=[after, one_app],
        help="copy the database to PATH, safely while the app serves",
    )
    backup_parser.add_argument("path", metavar="PATH")
    copy_parser = commands.add_parser(
        "copy-to",
        parents=[after, one_app],
        help="copy the SQLite database into the empty PostgreSQL database at URL, ids kept",
    )
    copy_parser.add_argument(
        "url", metavar="URL", help="postgresql://user:password@host:5432/dbname (empty)"
    )
    reset_parser = commands.add_parser(
        "reset-password",
        parents=[after, one_app],
        help="set a new password for QUEUE (its owner forgot it): typed twice, or --password-stdin",
    )
    reset_parser.add_argument("queue", metavar="QUEUE", help="the queue's id, as in its link")
    reset_parser.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the new password from the first line of stdin (for scripts)",
    )
    init_parser = commands.add_parser(
        "init", help="write a commented app.ini (and, with --deploy, the deploy files) into DIR"
    )
    init_parser.add_argument("directory", metavar="DIR")
    init_parser.add_argument(
        "--deploy",
        action="store_true",
        help="also write runner.py and deploy/ (gunicorn, Apache, nginx, ...)",
    )
    init_parser.add_argument("--force", action="store_true", help="replace files already there")
    args = parser.parse_args(argv)
    if args.command != "init" and not os.path.exists(args.config):
        parser.error(f"no such config file: {args.config}")
    try:
        {
            "serve": serve,
            "migrate": migrate,
            "backup": backup,
            "copy-to": copy_to,
            "reset-password": reset_password,
            "init": init,
        }[args.command](args)
    except config.SettingsError as error:
        raise SystemExit(f"error in {args.config}: {error}") from None
    return 0


if __name__ == "__main__":
    sys.exit(main())
