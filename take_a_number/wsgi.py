"""``take_a_number.wsgi:application``: the app built from an ini file, for any WSGI host.

    gunicorn take_a_number.wsgi:application                  # ./app.ini
    TAKE_A_NUMBER_CONFIG=/srv/tan/site.ini waitress-serve take_a_number.wsgi:application

The ini is ``$TAKE_A_NUMBER_CONFIG``, else ``app.ini`` in the current directory
(``take-a-number init DIR`` writes one). It works from an installed wheel, where
there is no checkout and so no runner.py.
"""

import os

from paste.deploy import loadapp

from . import config


def load_application(path):
    """The WSGI application of the ini at ``path``."""
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"no such config file: {path}; set TAKE_A_NUMBER_CONFIG to your ini file, "
            "or write one there with `take-a-number init DIR`"
        )
    return loadapp("config:" + path)


application = load_application(config.config_file(os.environ))
