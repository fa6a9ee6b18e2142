"""Take A Number: a deli-counter ticket queue in the browser, as a WSGI application."""

__version__ = "0.1.0"

import os  # noqa: E402 - the version comes first: submodules import it

from . import config, limits, security  # noqa: E402
from .application import Application  # noqa: E402
from .store import Store  # noqa: E402

__all__ = ["Application", "main", "make_store"]

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def resource_dir(name):
    """``templates`` or ``static``: inside the installed package, else beside it."""
    inside = os.path.join(PACKAGE_DIR, name)
    if os.path.isdir(inside):
        return inside
    return os.path.join(os.path.dirname(PACKAGE_DIR), name)


def make_store(settings):
    store = Store(
        settings["database"],
        synchronous=settings["sqlite_synchronous"],
        take_limits=limits.take_limits(settings),
        servicer_idle_seconds=settings["servicer_idle_minutes"] * 60,
    )
    store.migrate()
    return store


def main(global_config, **settings):
    """The PasteDeploy app factory: ``[app:main] use = egg:take-a-number``."""
    settings = config.read_settings(settings, here=global_config.get("here"))
    store = make_store(settings)
    secret = security.load_secret(settings["secret"], settings["secret_file"])
    return Application(
        store,
        secret,
        settings,
        template_dir=resource_dir("templates"),
        static_dir=resource_dir("static"),
    )
