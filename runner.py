"""The WSGI entry point: ``application``, built from the app.ini beside this file.

Works as mod_wsgi's WSGIScriptAlias target, as ``waitress-serve runner:application``
and for any host that asks for ``module:callable``. Set TAKE_A_NUMBER_CONFIG to
use another ini file.
"""

import os

from paste.deploy import loadapp

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIG = os.environ.get("TAKE_A_NUMBER_CONFIG", os.path.join(HERE, "app.ini"))

application = loadapp("config:" + os.path.abspath(CONFIG))
