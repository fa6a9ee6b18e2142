"""A real waitress server in a child process, for the tests that need sockets:
push, the browser tests."""

import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

PASSWORD = "correct horse"

# The child: build the app with its own factory, bind a free port, print it, serve.
# It also exits when its stdin closes, so a crashed test run leaves no server behind.
SERVER_SCRIPT = """
import json, os, sys, threading
from take_a_number import eventloop, main


here, settings, threads = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
app = main({"here": here}, **settings)
if len(sys.argv) > 4:
    # The test moves the app's clock: seconds to add to the time, read from a file.
    import pathlib, time
    clock_file = pathlib.Path(sys.argv[4])
    app.clock = lambda: time.time() + float(clock_file.read_text())
# As app.ini does: a thread for every held long-poll plus some for pages, and a
# look-ahead so that waitress notices a page that went away while held; the
# event loop take-a-number serve runs.
server = eventloop.make_server(
    app, host="127.0.0.1", port=0, threads=threads, channel_request_lookahead=5
)
print(server.effective_port, flush=True)

def exit_with_parent():
    sys.stdin.read()
    os._exit(0)

threading.Thread(target=exit_with_parent, daemon=True).start()
server.run()
"""


class Server:
    """``take_a_number`` served by waitress in a child process on a free port."""

    def __init__(self, directory, settings=None, threads=None, clock_file=None):
        """``clock_file``, if given, holds the seconds the app's clock is ahead of
        (or, negative, behind) the real time, read on every request."""
        self.directory = str(directory)
        self.clock_file = clock_file
        self.log_path = os.path.join(self.directory, "server.log")
        self.database = os.path.join(self.directory, "var", "test.sqlite")
        self.settings = {
            "database": self.database,
            "rate_limit_create_queue": "off",
            "rate_limit_sign_in": "off",
            "rate_limit_take_ticket": "off",
            "rate_limit_take_ticket_per_address": "off",
            "rate_limit_create_attempts": "off",
            "push_max_held": 20,
        }
        self.settings.update(settings or {})
        self.settings = {name: str(value) for name, value in self.settings.items()}
        self.threads = threads or int(self.settings["push_max_held"]) + 20
        self.process = None
        self.url = None

    def start(self, timeout=20):
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                SERVER_SCRIPT,
                self.directory,
                json.dumps(self.settings),
                str(self.threads),
                *([str(self.clock_file)] if self.clock_file else []),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        port = self.process.stdout.readline().strip()
        if not port.isdigit():
            self.stop()
            raise RuntimeError(f"the server did not start:\n{self.log()}")
        self.url = f"http://127.0.0.1:{port}"
        self._wait_until_it_answers(timeout)
        return self

    def _wait_until_it_answers(self, timeout):
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(self.url + "/", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the server does not answer at {self.url}:\n{self.log()}")
            time.sleep(0.05)

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def stop(self):
        if self.process is None:
            return
        with contextlib.suppress(OSError):
            self.process.stdin.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        self.process.stdout.close()
        self._log.close()
        self.process = None
