"""Several app instances on one PostgreSQL database, behind one nginx: real processes
that the fault tests start, kill and watch (tests/test_instances.py).

Each instance is a waitress server in a child process (server_support.Server), with
the database URL and a secret shared by all, as docs/deployment.md says. nginx
spreads requests over them round-robin, as the ``upstream`` block of docs/deployment.md
does on a site (with its idle connections kept open to the instances).
"""

import concurrent.futures
import http.client
import json
import os
import shutil
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

from hosting_support import Answer, Browser, Processes, free_port, program
from server_support import Server

SECRET = "a secret every instance shares"
PASSWORD = "correct horse"

NGINX_CONF = """\
worker_processes 1;
pid nginx.pid;
error_log stderr;
events {{ worker_connections 1024; }}
http {{
    access_log access.log;
    client_body_temp_path client_body;
    proxy_temp_path proxy;
    fastcgi_temp_path fastcgi;
    uwsgi_temp_path uwsgi;
    scgi_temp_path scgi;
    upstream take_a_number {{
{servers}
        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://take_a_number;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_buffering off;
            proxy_read_timeout 60s;
        }}
    }}
}}
"""


class Site:
    """``count`` instances on ``database_url`` behind nginx; ``url`` is nginx's."""

    def __init__(self, directory, database_url, count=2, settings=None):
        self.directory = str(directory)
        self.database_url = database_url
        self.settings = dict({"database": database_url, "secret": SECRET}, **(settings or {}))
        self.count = count
        self.instances = []
        self.url = None
        self._processes = Processes()
        self._nginx_dir = None

    def __enter__(self):
        try:
            for index in range(self.count):
                folder = os.path.join(self.directory, f"instance-{index}")
                os.makedirs(folder)
                self.instances.append(Server(folder, self.settings).start())
            self.url = self._start_nginx()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc_info):
        self._processes.__exit__()
        for instance in self.instances:
            instance.stop()
        if self._nginx_dir:
            shutil.rmtree(self._nginx_dir, ignore_errors=True)

    def _start_nginx(self):
        # Readable by nginx's workers, which run as another user under root.
        self._nginx_dir = tempfile.mkdtemp(prefix="tan-instances-nginx-")
        os.chmod(self._nginx_dir, 0o755)
        port = free_port()
        servers = "\n".join(
            f"        server 127.0.0.1:{instance.url.rsplit(':', 1)[1]};"
            for instance in self.instances
        )
        conf = os.path.join(self._nginx_dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(servers=servers, port=port))
        url = f"http://127.0.0.1:{port}"
        self._processes.start(
            [program("nginx"), "-p", self._nginx_dir, "-c", conf, "-g", "daemon off;"],
            os.path.join(self.directory, "nginx.log"),
        ).wait_until_it_answers(url + "/")
        return url

    def logs(self):
        return "\n".join(
            f"--- instance {index} ---\n{instance.log()}"
            for index, instance in enumerate(self.instances)
        )


# -- the JSON API over sockets ----------------------------------------------------


def api(url, method, path, body=None, token=None, timeout=60):
    """One request to the JSON API; the answer whatever its status."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    data = None if body is None else json.dumps(body).encode()
    if method == "POST" and data is None:
        data = b""
    request = urllib.request.Request(url + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Answer(response.status, response.headers, response.read().decode())
    except urllib.error.HTTPError as error:
        return Answer(error.code, error.headers, error.read().decode())


def create_queue(url, queue_id, name="Desk 1"):
    """A new queue, its owner signed in: the owner's token."""
    created = api(
        url,
        "POST",
        "/api/v1/queues",
        {"queue_id": queue_id, "title": "Lab help", "password": PASSWORD, "name": name},
    )
    assert created.status == 201, created.text
    return created.json()["token"]


def sign_in(url, queue_id, name):
    signed_in = api(
        url, "POST", f"/api/v1/queues/{queue_id}/servicers", {"name": name, "password": PASSWORD}
    )
    assert signed_in.status == 201, signed_in.text
    return signed_in.json()["token"]


def take(url, queue_id, timeout=60):
    return api(url, "POST", f"/api/v1/queues/{queue_id}/tickets", timeout=timeout)


def call_next(url, queue_id, token):
    return api(url, "POST", f"/api/v1/queues/{queue_id}/next", token=token)


def held_update(url, updates_path, since, timeout=60):
    """A live update held since ``since``: (answer, monotonic time it arrived)."""
    answer = api(url, "GET", f"{updates_path}?since={since}", timeout=timeout)
    return answer, time.monotonic()


def tickets_in(database_url, queue_id):
    """The queue's tickets as the database has them: (number, token), by number."""
    import psycopg

    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT number, token FROM tickets WHERE queue_id = %s ORDER BY number", (queue_id,)
        ).fetchall()


def wait_for(condition, timeout, interval=0.02):
    """Seconds until ``condition()`` is true, or None when ``timeout`` passed first."""
    started = time.monotonic()
    while True:
        if condition():
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            return None
        time.sleep(interval)


def take_on_page(url, queue_id):
    """A customer taking a number on the queue's page: the take's answer (a 303 to the
    ticket), or the page's when it did not come."""
    customer = Browser(url)
    page = customer.get(f"/{queue_id}")
    if page.status != 200:
        return page
    return customer.post(f"/{queue_id}/take", page)


class Load:
    """Customers taking numbers without a pause, from ``threads`` threads (half on the
    page, half over the API), spread over ``urls`` in turn, until stopped. Every answer
    is kept: (status, body or the 303's Location, url, monotonic time)."""

    def __init__(self, urls, queue_id, threads=8):
        self.urls = urls
        self.queue_id = queue_id
        self.answers = []
        self._stopping = False
        self._pool = concurrent.futures.ThreadPoolExecutor(threads)
        self._workers = [self._pool.submit(self._run, index) for index in range(threads)]

    def _run(self, index):
        take_one = take_on_page if index % 2 else take
        turn = index
        while not self._stopping:
            url = self.urls[turn % len(self.urls)]
            turn += 1
            try:
                answer = take_one(url, self.queue_id)
                text = answer.location if answer.status == 303 else answer.text
                self.answers.append((answer.status, text, url, time.monotonic()))
            except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
                # No answer, or one cut off (the instance is gone): nothing acknowledged.
                self.answers.append((None, str(error), url, time.monotonic()))
                time.sleep(0.05)

    def stop(self):
        self._stopping = True
        for worker in self._workers:
            worker.result(timeout=60)
        self._pool.shutdown()
        return self.answers

    def acknowledged(self):
        """The tickets acknowledged to their customers: token to number (the API's
        201 says it), or to None (the page's 303 only leads to the ticket)."""
        tickets = {}
        for status, text, _, _ in list(self.answers):
            if status == 201:
                body = json.loads(text)
                tickets[body["token"]] = body["number"]
            elif status == 303:
                tickets[urllib.parse.urlsplit(text).path.rsplit("/", 1)[1]] = None
        return tickets
