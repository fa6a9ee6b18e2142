"""Drive a running Take A Number server over its JSON API (docs/api.md).

    python examples/drive_api.py http://127.0.0.1:8080

Only the standard library. An owner creates a queue (its id made up on the spot)
and gets a bearer token; a customer takes a number and waits for a change with a
held live-update request; the owner calls the next number, which wakes it; a
second customer takes a number and leaves.
"""

import json
import secrets
import sys
import threading
import urllib.error
import urllib.request


class Api:
    """JSON requests to ``<server>/api/v1``; errors raise with the API's message."""

    def __init__(self, server, token=None):
        self.base = server.rstrip("/") + "/api/v1"
        self.token = token

    def __call__(self, method, path, body=None):
        """``path`` below /api/v1, or an absolute link from an answer."""
        request = urllib.request.Request(
            path if path.startswith(("http://", "https://")) else self.base + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.load(response)
        except urllib.error.HTTPError as error:
            problem = json.load(error)["error"]
            raise SystemExit(f"{method} {path}: {error.code} {problem['message']}") from None


def run(server):
    anyone = Api(server)
    queue_id = "demo-" + secrets.token_hex(3)
    created = anyone(
        "POST",
        "/queues",
        {"queue_id": queue_id, "title": "API demo", "password": "correct horse", "name": "Desk 1"},
    )
    owner = Api(server, token=created["token"])
    print(f"owner: created {queue_id}, signed in as {created['servicer_name']}")

    ticket = anyone("POST", f"/queues/{queue_id}/tickets")
    print(f"customer: took number {ticket['number']}: {ticket['message']}")

    # Wait for a change in the background, as the ticket page does (links are absolute).
    woken = {}
    waiter = threading.Thread(
        target=lambda: woken.update(
            anyone("GET", f"{ticket['links']['updates']}?since={ticket['version']}")
        )
    )
    waiter.start()

    console = owner("POST", f"/queues/{queue_id}/next")
    print(f"owner: pressed Next, now serving {console['current_number']}")
    waiter.join(timeout=30)
    if woken.get("state") != "called":
        raise SystemExit(f"the held update did not say the customer was called: {woken}")
    print(f"customer: woken by the update: {woken['message']}")

    second = anyone("POST", f"/queues/{queue_id}/tickets")
    print(f"customer 2: took number {second['number']}")
    left = anyone("DELETE", f"/tickets/{second['token']}")
    print(f"customer 2: left the queue ({left['state']})")

    status = anyone("GET", f"/queues/{queue_id}")
    # now_serving is the number called last, or null; now_serving_text the page's words.
    print(f"queue: {status['waiting']} waiting, now serving {status['now_serving']}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python examples/drive_api.py SERVER_URL")
    run(sys.argv[1])
