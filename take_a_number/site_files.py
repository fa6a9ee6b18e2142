"""The files a site starts from, which ``take-a-number init DIR`` writes into DIR.

``app.ini``, the commented configuration; with ``--deploy`` also ``runner.py`` (the
WSGI script of mod_wsgi) and ``deploy/`` (gunicorn, Apache, nginx, ...), so that
the recipes of docs/deployment.md work in DIR as in a checkout. A wheel carries
them in the package's ``site/`` (setup.py copies them there when it builds); a
checkout has them at its top.
"""

import os
import shutil

from . import PACKAGE_DIR

CONFIGURATION = "app.ini"
DEPLOY_FILES = ("runner.py", "deploy")  # setup.py's SITE_FILES: these and CONFIGURATION


def source_dir():
    """Where the files are: the package's ``site/`` in a wheel, else the checkout's top."""
    inside = os.path.join(PACKAGE_DIR, "site")
    return inside if os.path.isdir(inside) else os.path.dirname(PACKAGE_DIR)


def names(deploy):
    """The files to write, as paths relative to the site directory."""
    top = source_dir()
    found = [CONFIGURATION]
    for name in DEPLOY_FILES if deploy else ():
        path = os.path.join(top, name)
        if os.path.isfile(path):
            found.append(name)
            continue
        for folder, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for file in sorted(files):
                if not file.endswith(".pyc"):
                    found.append(os.path.relpath(os.path.join(folder, file), top))
    return found


def write(directory, deploy=False, force=False):
    """Copy the files into ``directory``; the paths written.

    Refuses (FileExistsError, naming them) to replace any file unless ``force``:
    an operator's edited app.ini is not to be lost to a second ``init``.
    """
    top = source_dir()
    wanted = names(deploy)
    existing = [name for name in wanted if os.path.exists(os.path.join(directory, name))]
    if existing and not force:
        raise FileExistsError(", ".join(existing))
    written = []
    for name in wanted:
        target = os.path.join(directory, name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy(os.path.join(top, name), target)
        written.append(target)
    return written
