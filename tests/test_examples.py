"""The scripts in examples/ run as an integrator would run them."""

import os
import subprocess
import sys

import pytest
from hosting_support import Browser, Processes, free_port, server_env
from server_support import Server

pytestmark = pytest.mark.slow

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def run_example(name, *args, cwd):
    result = subprocess.run(
        [sys.executable, os.path.join(EXAMPLES, name), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_drive_wsgi_takes_a_number_and_is_called_without_a_server(tmp_path):
    output = run_example("drive_wsgi.py", cwd=tmp_path)
    assert "customer: took number 1" in output
    assert 'customer: live update says "It\'s your turn — go to Desk 1."' in output


@pytest.fixture
def server(tmp_path):
    server = Server(tmp_path).start()
    yield server
    server.stop()


def test_drive_api_runs_the_whole_flow_against_a_running_server(server, tmp_path):
    output = run_example("drive_api.py", server.url, cwd=tmp_path)
    assert "customer: took number 1" in output
    assert "customer: woken by the update: It's your turn — go to Desk 1." in output
    assert "customer 2: left the queue (left)" in output
    assert "queue: 0 waiting" in output


def test_embed_serves_both_instances_on_the_port_given_and_sends_a_bare_prefix_home(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    script = os.path.join(EXAMPLES, "embed.py")
    with Processes() as start:
        start(
            [sys.executable, script, tmp_path / "data", "--port", port],
            tmp_path / "embed.log",
            cwd=tmp_path,
            env=server_env(),
        ).wait_until_it_answers(url + "/a/")
        browser = Browser(url)
        for prefix in ("/a", "/b"):
            assert "Create a queue" in browser.get(prefix + "/").text
            # A bare prefix is not the home page: its instance redirects it there.
            bare = browser.get(prefix)
            assert (bare.status, bare.location) == (301, f"{url}{prefix}/")
    assert (tmp_path / "data" / "a" / "queues.sqlite").exists()
