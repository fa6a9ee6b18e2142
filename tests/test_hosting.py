"""Hosting: the app served by each host as docs/deployment.md says, through its main flow.

Each test starts real servers from the files in deploy/, changing only ports and
paths to temporary ones, and drives them over sockets as browsers would: create a
queue, take a number, hold live-update requests, call the next number. A missing
server program fails the test: scripts/test installs them.
"""

import concurrent.futures
import json
import os
import re
import runpy
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from typing import NamedTuple

import pytest
from hosting_support import (
    PASSWORD,
    Browser,
    Processes,
    free_port,
    main_flow,
    program,
    server_env,
    take_numbers_at_once,
    text_of,
)

from take_a_number.store import Store

pytestmark = pytest.mark.slow

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEPLOY = os.path.join(ROOT, "deploy")
IS_ROOT = os.geteuid() == 0


def assert_served_over_https(flow, url):
    """What X-Forwarded-Proto https from a trusted proxy must change."""
    assert url.startswith("https://")
    session_cookie = next(c for c in flow.home.cookies if c.startswith("tan_session="))
    assert "; secure" in session_cookie.lower()
    assert flow.created.location.startswith(url + "/")
    assert f'class="join-link">{url}/lab<' in flow.console.text
    assert flow.home.headers["Strict-Transport-Security"] == "max-age=31536000"


@pytest.fixture
def processes():
    """Start servers with ``processes(args, log_path, ...)``; all stop after the test."""
    with Processes() as start:
        yield start


@pytest.fixture(scope="module")
def public_dir():
    """A temporary directory that other users (Apache's www-data, nginx's workers) can read."""
    path = tempfile.mkdtemp(prefix="tan-hosting-")
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def copy_checkout(target):
    """The files of this checkout that git knows of, as a deploy would put them (the
    same files as the Elastic Beanstalk bundle)."""
    bundle = runpy.run_path(os.path.join(DEPLOY, "elasticbeanstalk", "bundle.py"))
    for name in bundle["checkout_files"]():
        os.makedirs(os.path.join(target, os.path.dirname(name)), exist_ok=True)
        shutil.copy2(os.path.join(ROOT, name), os.path.join(target, name))
    return target


def rendered(path, replacements):
    """The text of the deploy file ``path`` with each of ``replacements`` made exactly once."""
    with open(path) as f:
        text = f.read()
    for old in replacements:
        assert text.count(old) == 1, f"{old!r} should occur once in {path}"
    pattern = "|".join(re.escape(old) for old in replacements)
    return re.sub(pattern, lambda match: replacements[match.group(0)], text)


def overlay_ini(path, base, port):
    """An ini that is ``base`` (app and server) on another port."""
    path.write_text(
        f"[app:main]\nuse = config:{base}\n\n"
        f"[server:main]\nuse = config:{base}#main\nport = {port}\n"
    )
    return path


def assert_pushes_crossed_processes(access_log):
    """gunicorn logged each request with its worker's pid: at least one held update
    was woken in another process than the one that answered Next."""
    with open(access_log) as f:
        lines = f.read().splitlines()
    pids = {line.split()[0] for line in lines}
    next_pid = next(line.split()[0] for line in lines if "/serve/next" in line)
    held_pids = {line.split()[0] for line in lines if "/updates?since=" in line}
    assert len(pids) > 1, "all requests went to one worker"
    assert held_pids - {next_pid}, "no held update was in another process than Next"


# -- TLS and nginx ---------------------------------------------------------------


class Tls(NamedTuple):
    certificate: str
    key: str
    client: ssl.SSLContext


@pytest.fixture(scope="module")
def tls(public_dir):
    """A self-signed certificate for 127.0.0.1, and a client context that trusts it."""
    certificate = os.path.join(public_dir, "tls.pem")
    key = os.path.join(public_dir, "tls.key")
    subprocess.run(
        [
            program("openssl"),
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            key,
            "-out",
            certificate,
        ],
        check=True,
        capture_output=True,
    )
    return Tls(certificate, key, ssl.create_default_context(cafile=certificate))


def start_nginx(processes, directory, tls, backend_port):
    """nginx in front of 127.0.0.1:``backend_port``, without Debian's layout, as
    docs/deployment.md says: deploy/nginx/nginx.conf unchanged and the site file
    beside it with its ports, certificate and the https port set.

    Returns its https URL and its plain http URL.
    """
    os.makedirs(directory)
    https_port, http_port = free_port(), free_port()
    site = rendered(
        os.path.join(DEPLOY, "nginx", "take-a-number.conf"),
        {
            "listen 80;": f"listen 127.0.0.1:{http_port};",
            "listen 443 ssl;": f"listen 127.0.0.1:{https_port} ssl;",
            'set $https_port "";': f'set $https_port ":{https_port}";',
            "/etc/ssl/certs/take-a-number.pem": tls.certificate,
            "/etc/ssl/private/take-a-number.key": tls.key,
            "http://127.0.0.1:8080": f"http://127.0.0.1:{backend_port}",
        },
    )
    conf_dir = os.path.join(directory, "conf")
    os.makedirs(conf_dir)
    with open(os.path.join(conf_dir, "take-a-number.conf"), "w") as f:
        f.write(site)
    conf = shutil.copy(os.path.join(DEPLOY, "nginx", "nginx.conf"), conf_dir)
    prefix = os.path.join(directory, "prefix")
    os.makedirs(prefix)
    url = f"https://127.0.0.1:{https_port}"
    processes(
        [program("nginx"), "-p", prefix, "-c", conf, "-e", "stderr", "-g", "daemon off;"],
        os.path.join(directory, "nginx.log"),
    ).wait_until_it_answers(url + "/", tls.client)
    return url, f"http://127.0.0.1:{http_port}"


def assert_http_is_sent_to_https(url, plain_url):
    """The port-80 server, and plain http sent to the https port, both redirect to the
    https server with its port (not the default 443)."""
    https_port = urllib.parse.urlsplit(url).port
    for http_url in (plain_url, f"http://127.0.0.1:{https_port}"):
        redirected = Browser(http_url).get("/lab?from=poster")
        assert redirected.status == 301, (http_url, redirected)
        assert redirected.location == f"{url}/lab?from=poster", http_url


# -- waitress --------------------------------------------------------------------


def test_waitress_alone_serves_the_main_flow_and_ignores_forwarded_headers(processes, tmp_path):
    port = free_port()
    ini = overlay_ini(tmp_path / "site.ini", os.path.join(ROOT, "app.ini"), port)
    database = tmp_path / "data" / "take-a-number.sqlite"
    url = f"http://127.0.0.1:{port}"
    processes(
        [program("take-a-number"), "--config", ini, "serve"],
        tmp_path / "waitress.log",
        env=server_env(TAKE_A_NUMBER_DATABASE=database),
    ).wait_until_it_answers(url + "/")

    flow = main_flow(url, "lab")
    assert flow.streamed  # serve streams live updates
    assert database.exists()
    assert not any("secure" in c.lower() for c in flow.home.cookies)
    # Nobody is trusted to say the scheme: a client cannot make the app think https.
    spoofed = Browser(url).get("/", **{"X-Forwarded-Proto": "https"})
    assert not any("secure" in c.lower() for c in spoofed.cookies)
    assert "Strict-Transport-Security" not in spoofed.headers


def test_waitress_behind_nginx_gives_secure_cookies_and_https_links(
    processes, tmp_path, public_dir, tls
):
    backend = free_port()
    ini = overlay_ini(
        tmp_path / "site.ini", os.path.join(DEPLOY, "waitress-behind-proxy.ini"), backend
    )
    database = tmp_path / "data" / "take-a-number.sqlite"
    processes(
        [program("take-a-number"), "--config", ini, "serve"],
        tmp_path / "waitress.log",
        env=server_env(TAKE_A_NUMBER_DATABASE=database),
    ).wait_until_it_answers(f"http://127.0.0.1:{backend}/")
    url, plain_url = start_nginx(
        processes, os.path.join(public_dir, "nginx-waitress"), tls, backend
    )

    flow = main_flow(url, "lab", tls.client)
    assert flow.streamed  # passed on by nginx event by event (X-Accel-Buffering: no)
    assert_served_over_https(flow, url)
    assert database.exists()
    assert_http_is_sent_to_https(url, plain_url)


# -- gunicorn --------------------------------------------------------------------


def test_gunicorn_workers_behind_nginx_keep_numbers_unique_and_push_across_processes(
    processes, tmp_path, public_dir, tls
):
    backend = free_port()
    access_log = tmp_path / "access.log"
    gunicorn = processes(
        [
            program("gunicorn"),
            "--config",
            os.path.join(DEPLOY, "gunicorn.conf.py"),
            "--bind",
            f"127.0.0.1:{backend}",
            # Only for this test: which worker process answered each request.
            "--access-logfile",
            access_log,
            "--access-logformat",
            '%(p)s "%(r)s" %(s)s',
        ],
        tmp_path / "gunicorn.log",
        cwd=tmp_path,  # the config finds the checkout itself
        env=server_env(TAKE_A_NUMBER_DATABASE=tmp_path / "data" / "take-a-number.sqlite"),
    ).wait_until_it_answers(f"http://127.0.0.1:{backend}/")
    url, _ = start_nginx(processes, os.path.join(public_dir, "nginx-gunicorn"), tls, backend)

    workers = subprocess.run(
        ["ps", "--ppid", str(gunicorn.popen.pid), "-o", "pid="], capture_output=True, text=True
    ).stdout.split()
    assert len(workers) == 3
    flow = main_flow(url, "lab", tls.client)
    assert not flow.streamed  # gunicorn's workers long-poll instead
    assert_served_over_https(flow, url)
    numbers = take_numbers_at_once(url, "lab", 24, tls.client)
    assert sorted(numbers) == list(range(2, 26))
    assert_pushes_crossed_processes(access_log)


def test_gunicorn_stops_at_once_when_live_updates_are_held(processes, tmp_path):
    """SIGTERM, gunicorn's graceful stop: each worker finishes what it is answering,
    and the app answers its held live updates at once (deploy/gunicorn.conf.py's
    post_worker_init), instead of after up to push_hold_seconds."""
    backend = free_port()
    url = f"http://127.0.0.1:{backend}"
    gunicorn = processes(
        [program("gunicorn"), "--config", os.path.join(DEPLOY, "gunicorn.conf.py")]
        + ["--bind", f"127.0.0.1:{backend}"],
        tmp_path / "gunicorn.log",
        cwd=tmp_path,
        env=server_env(TAKE_A_NUMBER_DATABASE=tmp_path / "data" / "take-a-number.sqlite"),
    ).wait_until_it_answers(url + "/")
    owner = Browser(url)
    home = owner.get("/")
    owner.post("/", home, queue_id="lab", title="Lab help", password=PASSWORD, name="Desk 1")
    customer = Browser(url)
    taken = customer.post("/lab/take", customer.get("/lab"))
    ticket_path = urllib.parse.urlsplit(taken.location).path
    view, _ = customer.updates(ticket_path)

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        held = [pool.submit(Browser(url).updates, ticket_path, view["version"]) for _ in range(6)]
        time.sleep(1)
        assert not any(h.done() for h in held)
        stopping = time.monotonic()
        gunicorn.popen.send_signal(signal.SIGTERM)
        gunicorn.popen.wait(timeout=40)
        took = time.monotonic() - stopping
        answers = [h.result(timeout=5)[0] for h in held]
    print(f"gunicorn stopped {took:.2f} s after SIGTERM with 6 live updates held")
    assert took < 3
    # Their pages ask again a little later, of the server that replaces this one.
    assert {answer["retry_after"] for answer in answers} == {5}


# -- Apache with mod_wsgi ----------------------------------------------------------


def read_envvars(path):
    """The ``export NAME=value`` lines of deploy/apache/envvars."""
    with open(path) as f:
        return dict(re.findall(r"^export (\w+)=(.*)$", f.read(), re.M))


def test_apache_mod_wsgi_daemon_processes_serve_the_main_flow(processes, public_dir):
    directory = os.path.join(public_dir, "apache")
    app_dir = copy_checkout(os.path.join(directory, "app"))
    venv = os.path.join(directory, "venv")
    data = os.path.join(directory, "data")
    os.makedirs(os.path.join(directory, "run"))
    os.makedirs(data)
    if IS_ROOT:
        shutil.chown(data, "www-data", "www-data")
    # mod_wsgi embeds Debian's Python: the virtualenv must be made by it.
    subprocess.run(["/usr/bin/python3", "-m", "venv", venv], check=True, capture_output=True)
    installed = subprocess.run(
        [os.path.join(venv, "bin", "pip"), "install", "--quiet", app_dir],
        env=server_env(),
        capture_output=True,
        text=True,
    )
    assert installed.returncode == 0, installed.stderr

    # Without Debian's layout, as docs/deployment.md says: deploy/apache/apache2.conf
    # (which includes the site file) with the variables of deploy/apache/envvars.
    port = free_port()
    database = os.path.join(data, "take-a-number.sqlite")
    envvars = read_envvars(os.path.join(DEPLOY, "apache", "envvars"))
    test_values = {
        "TAN_APP": app_dir,
        "TAN_VENV": venv,
        "TAN_PORT": port,
        "TAN_RUN": os.path.join(directory, "run"),
        "TAKE_A_NUMBER_DATABASE": database,
    }
    assert set(test_values) <= set(envvars)
    url = f"http://127.0.0.1:{port}"
    conf = os.path.join(app_dir, "deploy", "apache", "apache2.conf")
    processes(
        [program("apache2"), "-f", conf, "-DFOREGROUND"],
        os.path.join(directory, "apache2.log"),
        env=server_env(**dict(envvars, **test_values)),
    ).wait_until_it_answers(url + "/")

    listed = subprocess.run(
        ["ps", "-C", "apache2", "-o", "user=,args="], capture_output=True, text=True
    ).stdout.splitlines()
    # mod_wsgi names its daemon processes "(wsgi:<group>)", cut to argv[0]'s length.
    daemons = [line.split(None, 1) for line in listed if " (wsgi:" in line]
    assert len(daemons) == 2, listed
    flow = main_flow(url, "lab")
    assert not flow.streamed  # mod_wsgi long-polls instead
    assert flow.created.location.startswith(url + "/")
    numbers = take_numbers_at_once(url, "lab", 24)
    assert sorted(numbers) == list(range(2, 26))
    assert os.path.exists(database)
    if IS_ROOT:
        assert {user for user, _ in daemons} == {"www-data"}
        assert os.stat(database).st_uid == os.stat(data).st_uid

    # A change committed by another process (this test) wakes a request held by a
    # daemon process: the push watcher thread runs inside mod_wsgi.
    store = Store(database)
    desk = store.sign_in("lab", "Desk 9", time.time())
    for _ in numbers:
        store.call_next(desk, time.time())
    customer = Browser(url)
    taken = customer.post("/lab/take", customer.get("/lab"))
    ticket_path = urllib.parse.urlsplit(taken.location).path
    view, _ = customer.updates(ticket_path)
    assert view["message"] == "You're next."
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(customer.updates, ticket_path, view["version"])
        time.sleep(1)
        assert not waiting.done()
        store.call_next(desk, time.time())
        called_at = time.monotonic()
        woken, arrived = waiting.result(timeout=10)
    store.close()
    assert (woken["state"], woken["servicer_name"]) == ("called", "Desk 9")
    assert arrived - called_at < 2

    # The JSON API's bearer token gets through to the app (WSGIPassAuthorization).
    api = Browser(url)
    signed_in = api.request(
        "/api/v1/queues/lab/servicers",
        json.dumps({"name": "Desk 2", "password": PASSWORD}).encode(),
        {"Content-Type": "application/json"},
    )
    assert signed_in.status == 201, signed_in.text
    called = api.request(
        "/api/v1/queues/lab/next", b"", {"Authorization": "Bearer " + signed_in.json()["token"]}
    )
    assert called.status == 200, called.text


# -- Elastic Beanstalk -------------------------------------------------------------


def unpack(bundle, directory):
    """Unzip as the platform does, keeping each file's mode (the hooks are executable)."""
    with zipfile.ZipFile(bundle) as archive:
        for info in archive.infolist():
            path = archive.extract(info, directory)
            mode = info.external_attr >> 16
            if mode:
                os.chmod(path, mode & 0o777)


def procfile_command(app_dir, port):
    """The Procfile's web command, on ``port`` instead of the platform's 8000."""
    with open(os.path.join(app_dir, "Procfile")) as f:
        commands = dict(line.split(":", 1) for line in f.read().splitlines() if line.strip())
    args = commands["web"].split()
    assert args[args.index("--bind") + 1] == "127.0.0.1:8000"
    args[args.index("--bind") + 1] = f"127.0.0.1:{port}"
    return args


def test_elastic_beanstalk_bundle_serves_and_keeps_its_data_across_deploys(processes, tmp_path):
    bundle = tmp_path / "bundle.zip"
    subprocess.run(
        [sys.executable, os.path.join(DEPLOY, "elasticbeanstalk", "bundle.py"), bundle],
        check=True,
        capture_output=True,
    )
    # The platform's layout: each deploy replaces /var/app/current; data stays beside it.
    var_app = tmp_path / "var" / "app"
    app_dir = var_app / "current"
    data_dir = var_app / "data"
    unpack(bundle, app_dir)
    for hooks in ("hooks", "confighooks"):
        assert (app_dir / ".platform" / hooks / "prebuild" / "01-take-a-number-data.sh").exists()
    hook = app_dir / ".platform" / "hooks" / "prebuild" / "01-take-a-number-data.sh"
    as_user = subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
    subprocess.run(
        [hook], check=True, env=dict(os.environ, DATA_DIR=str(data_dir), APP_USER=as_user)
    )
    assert oct(data_dir.stat().st_mode & 0o777) == "0o700"

    venv = var_app / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    installed = subprocess.run(
        [venv / "bin" / "pip", "install", "--quiet", "-r", "requirements.txt"],
        cwd=app_dir,
        env=server_env(),
        capture_output=True,
        text=True,
    )
    assert installed.returncode == 0, installed.stderr

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = server_env(
        PATH=f"{venv}/bin:{os.environ['PATH']}",
        TAKE_A_NUMBER_DATABASE=data_dir / "take-a-number.sqlite",
        TAKE_A_NUMBER_SECRET="a secret set in the environment's properties",
    )

    def deploy(log_name):
        return processes(
            procfile_command(app_dir, port), tmp_path / log_name, cwd=app_dir, env=env
        ).wait_until_it_answers(url + "/")

    first = deploy("first.log")
    flow = main_flow(url, "lab")
    first.stop()

    shutil.rmtree(app_dir)
    unpack(bundle, app_dir)
    deploy("second.log")
    assert (data_dir / "take-a-number.sqlite").exists()
    assert not (app_dir / "var").exists()
    # The queue, the ticket and the sign-in (same secret) all survived the deploy.
    assert "Lab help" in Browser(url).get("/lab").text
    ticket = flow.customer.get(flow.ticket_path)
    assert "It's your turn — go to Desk 1." in text_of(ticket)
    console = flow.owner.get("/lab/serve")
    assert console.status == 200
    assert 'action="/lab/serve/next"' in console.text
