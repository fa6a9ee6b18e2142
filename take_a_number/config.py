"""Settings: app.ini's ``[app:main]`` values (the factory's arguments), then the environment.

A setting the ini or the factory call gives wins. One it leaves out (or empty)
is taken from the environment variable ``TAKE_A_NUMBER_<NAME>`` (upper case),
e.g. ``TAKE_A_NUMBER_DATABASE``, else from its default: so two instances built
with their own ``database=`` never both become the environment's one
(docs/configuration.md, "Which value wins").
"""

import importlib.util
import os
import re

from . import cors, limits

ENV_PREFIX = "TAKE_A_NUMBER_"
# The ini file the command and take_a_number.wsgi read, unless told otherwise.
DEFAULT_CONFIG_FILE = "app.ini"

# Every setting with its default; app.ini documents each of them. A number's
# default is an int or a float: its value must be one too.
DEFAULTS = {
    "database": "",  # default: var/take-a-number.sqlite beside app.ini
    "secret": "",
    "secret_file": "",  # default: "secret" beside the database
    "sqlite_synchronous": "normal",
    "postgresql_pool_size": 20,
    "refresh_seconds": 5,
    "session_max_age": 43200,
    "ticket_cookie_max_age": 86400,
    "static_max_age": 3600,
    "rate_limit_create_queue": "10/hour",
    "rate_limit_create_attempts": "60/hour",
    "rate_limit_sign_in": "20/600",
    "rate_limit_sign_in_slowed": "1/30",
    "rate_limit_take_ticket": "10/minute",
    "rate_limit_take_ticket_per_address": "60/minute",
    "rate_limit_token_take_ticket": "600/minute",
    "push_max_held": 500,
    "push_hold_seconds": 25,
    "push_heartbeat_seconds": 50,
    "push_retry_seconds": 5,
    "push_watch_interval": "",  # empty: the hub's own (push.WATCH_SECONDS, under serve longer)
    "servicer_idle_minutes": 30,
    "cors_allowed_origins": "",  # none: the API answers no other origin
}

# Proxies commonly time out after 60 s; a held request must answer well before.
MAX_HOLD_SECONDS = 55


def watch_interval(value):
    """push_watch_interval's seconds, or None (empty: the hub chooses, push.Hub)."""
    if not value.strip():
        return None
    try:
        seconds = float(value)
    except ValueError:
        raise SettingsError(f"push_watch_interval must be a number, not {value!r}") from None
    if not 0 < seconds <= 5:
        raise SettingsError("push_watch_interval must be between 0 and 5 seconds")
    return seconds


def config_file(environ):
    """The ini file to read: ``$TAKE_A_NUMBER_CONFIG``, else app.ini in the current directory."""
    return environ.get(ENV_PREFIX + "CONFIG") or DEFAULT_CONFIG_FILE


# A URL's scheme: two characters at least, so that a Windows drive (C:) is a path.
URL_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]+):")


def is_url(database):
    """Whether the ``database`` setting (as read_settings gives it) is a URL, not a file."""
    return "://" in database and URL_SCHEME.match(database) is not None


class SettingsError(ValueError):
    """A setting has a value the app cannot use."""


def database_path(value, here):
    """The database that ``database`` names: an SQLite file's absolute path, or a URL.

    A path (relative to ``here``, the ini's folder), or ``sqlite:PATH`` (also
    ``sqlite:///abs/path``); empty: var/take-a-number.sqlite beside the ini.
    ``postgresql://user:password@host:port/dbname`` (or ``postgres://``) is
    PostgreSQL, as given. Any other URL is refused, rather than taken as a
    path, which would quietly make a folder named ``mysql:`` and a new, empty
    SQLite file.
    """
    value = value or os.path.join("var", "take-a-number.sqlite")
    scheme = URL_SCHEME.match(value)
    if scheme and scheme.group(1).lower() in ("postgresql", "postgres"):
        if not value[len(scheme.group(0)) :].startswith("//"):
            raise SettingsError(
                "database = postgresql:…: write a URL, postgresql://user:password@host/dbname"
            )
        if importlib.util.find_spec("psycopg_pool") is None:
            raise SettingsError(
                "database = postgresql://…: PostgreSQL needs psycopg and psycopg_pool: "
                "pip install 'take-a-number[postgresql]'"
            )
        return value
    if scheme and scheme.group(1).lower() == "sqlite":
        value = value[len(scheme.group(0)) :].removeprefix("//")
        if not value:
            raise SettingsError("database = sqlite: names no file: write sqlite:PATH")
    elif scheme:
        raise SettingsError(
            f"database = {scheme.group(0)}…: Take A Number keeps its data in SQLite (a file "
            "path, or sqlite:PATH) or PostgreSQL (postgresql://user:password@host/dbname)"
        )
    return os.path.abspath(os.path.join(here, value))


def read_settings(settings, here=None, environ=None, section="main"):
    """The complete, typed settings for the app factory (of ``[app:<section>]``)."""
    environ = os.environ if environ is None else environ
    here = here or os.getcwd()
    unknown = set(settings) - set(DEFAULTS)
    if unknown:
        raise SettingsError(f"unknown settings in [app:{section}]: {', '.join(sorted(unknown))}")
    result = {}
    for name, default in DEFAULTS.items():
        given = (settings.get(name), environ.get(ENV_PREFIX + name.upper()))
        value = next((v for v in given if v is not None and v != ""), default)
        if not isinstance(default, str):
            try:
                value = type(default)(value)
            except ValueError:
                raise SettingsError(f"{name} must be a number, not {value!r}") from None
            if value < 0:
                raise SettingsError(f"{name} must not be negative")
        result[name] = value
    result["database"] = database_path(result["database"], here)
    if not result["secret_file"]:
        # Beside the SQLite file; for PostgreSQL, in var/ beside the ini (several
        # instances share one secret: docs/deployment.md).
        beside = os.path.join(here, "var") if is_url(result["database"]) else None
        result["secret_file"] = os.path.join(
            beside or os.path.dirname(result["database"]), "secret"
        )
    for name in ("push_hold_seconds", "push_heartbeat_seconds"):
        if not 0 < result[name] <= MAX_HOLD_SECONDS:
            raise SettingsError(f"{name} must be between 1 and {MAX_HOLD_SECONDS}")
    if result["postgresql_pool_size"] < 1:
        raise SettingsError("postgresql_pool_size must be at least 1")
    result["push_watch_interval"] = watch_interval(result["push_watch_interval"])
    if result["sqlite_synchronous"].lower() not in ("normal", "full", "extra"):
        raise SettingsError("sqlite_synchronous must be normal, full or extra")
    try:
        cors.parse_origins(result["cors_allowed_origins"])
    except ValueError as error:
        raise SettingsError(f"cors_allowed_origins: {error}") from None
    for name in limits.NAMES:
        try:
            limits.parse_rate(result[f"rate_limit_{name}"])
        except ValueError as error:
            raise SettingsError(f"rate_limit_{name}: {error}") from None
    return result
