"""Drive Take A Number's raw WSGI callable with WebTest: no server, no sockets.

    python examples/drive_wsgi.py        # needs WebTest besides the app: pip install WebTest

The app is built by its own factory, ``take_a_number.main``, on a database in a
temporary directory. Each WebTest ``TestApp`` is one browser, with its own cookies:
an owner creates a queue, a customer takes a number, the owner calls it, and the
customer's page and its live update say it is their turn.
"""

import os
import tempfile

from webtest import TestApp

from take_a_number import main


def fill(form, **fields):
    for name, value in fields.items():
        form[name] = value
    return form


def button(page, action_suffix):
    """The form on ``page`` whose action ends with ``action_suffix``."""
    return next(f for f in page.forms.values() if f.action.endswith(action_suffix))


def run(app):
    owner = TestApp(app)
    home = owner.get("/")
    console = (
        fill(
            home.forms[0],
            queue_id="demo",
            title="Demo desk",
            password="correct horse",
            name="Desk 1",
        )
        .submit()
        .follow()
    )
    print(f"owner: created the queue; the console is {console.request.path}")

    customer = TestApp(app)
    ticket = customer.get("/demo").forms[0].submit().follow()
    number = ticket.html.select_one(".my-number .number").get_text()
    print(f"customer: took number {number} ({ticket.request.path})")
    version = int(ticket.html.body["data-version"])

    button(console, "/serve/next").submit().follow()
    print("owner: pressed Next")

    update = customer.get(ticket.request.path + "/updates", {"since": version}).json
    assert update["state"] == "called", update
    print(f"customer: live update says {update['message']!r}")
    page = customer.get(ticket.request.path)
    assert update["message"] in page.html.select_one(".status-message").get_text()
    print("customer: the ticket page says so too")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as data_dir:
        app = main({"here": data_dir}, database=os.path.join(data_dir, "queues.sqlite"))
        try:
            run(app)
        finally:
            app.close()  # stop the push watcher before the directory goes
