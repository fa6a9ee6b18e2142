"""Make an Elastic Beanstalk source bundle of this checkout.

    python deploy/elasticbeanstalk/bundle.py [dist/take-a-number-eb.zip]

The zip holds every file git knows of (committed or not, without what
.gitignore leaves out), with the Procfile and requirements.txt at its top, and
deploy/elasticbeanstalk/data-dir.sh as a platform hook that makes the database's
directory outside the app directory before each deploy.
"""

import os
import subprocess
import sys
import zipfile

CHECKOUT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA_DIR_HOOK = os.path.join(CHECKOUT, "deploy", "elasticbeanstalk", "data-dir.sh")
# Elastic Beanstalk runs hooks/ on a deploy, confighooks/ on a configuration change.
HOOK_NAMES = [
    ".platform/hooks/prebuild/01-take-a-number-data.sh",
    ".platform/confighooks/prebuild/01-take-a-number-data.sh",
]


def checkout_files():
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=CHECKOUT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    names = sorted({name for name in listed.split("\0") if name})
    return [name for name in names if os.path.isfile(os.path.join(CHECKOUT, name))]


def add_file(bundle, path, name):
    info = zipfile.ZipInfo.from_file(path, name)
    info.compress_type = zipfile.ZIP_DEFLATED
    with open(path, "rb") as f:
        bundle.writestr(info, f.read())


def make_bundle(path):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with zipfile.ZipFile(path, "w") as bundle:
        for name in checkout_files():
            add_file(bundle, os.path.join(CHECKOUT, name), name)
        for name in HOOK_NAMES:
            add_file(bundle, DATA_DIR_HOOK, name)
    return path


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else os.path.join("dist", "take-a-number-eb.zip")
    print(make_bundle(target))
