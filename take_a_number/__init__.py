"""Take A Number: a deli-counter ticket queue in the browser, as a WSGI application."""

import os

from . import config, limits, security
from .application import Application
from .store import Store
from .version import __version__

__all__ = ["Application", "__version__", "main", "make_store"]

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
        pool_size=settings["postgresql_pool_size"],
        take_limits=limits.take_limits(settings),
        servicer_idle_seconds=settings["servicer_idle_minutes"] * 60,
    )
    store.migrate()
    # Nothing left open: a server that forks its workers after loading the app
    # (gunicorn --preload) must not hand them connections, or PostgreSQL's pool
    # and listener threads; each process opens its own on first use.
    store.close_all()
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
