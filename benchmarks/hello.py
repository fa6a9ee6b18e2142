"""The baseline: a hello-world WSGI app served by waitress.

``python benchmarks/hello.py CONFIG.ini`` serves it with CONFIG's ``[server:main]``
through PasteDeploy, exactly as ``take-a-number serve`` serves the real app, so
the two differ only in the application. benchmarks/run.py starts it.
"""

import os
import sys

BODY = b"Hello, World!\n"


def application(environ, start_response):
    start_response(
        "200 OK",
        [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(BODY)))],
    )
    return [BODY]


def main(argv):
    if len(argv) != 2:
        raise SystemExit("usage: python benchmarks/hello.py CONFIG.ini")
    from paste.deploy import loadserver

    server = loadserver("config:" + os.path.abspath(argv[1]))
    server(application)


if __name__ == "__main__":
    main(sys.argv)
