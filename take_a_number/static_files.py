"""Files under ``static/``, served with caching headers under versioned URLs."""

import hashlib
import os

from webob.static import FileApp

# A versioned static URL never changes content, so browsers may keep it a year.
IMMUTABLE = "public, max-age=31536000, immutable"


class StaticFiles:
    """The files of one directory, each with a version: a hash of its content."""

    def __init__(self, directory, max_age):
        self.directory = directory
        self.max_age = max_age
        self.versions = {}
        for name in sorted(os.listdir(directory)):
            path = os.path.join(directory, name)
            if os.path.isfile(path):
                with open(path, "rb") as f:
                    self.versions[name] = hashlib.sha256(f.read()).hexdigest()[:12]

    def url(self, req, name):
        return req.urls("static", path=name) + "?v=" + self.versions[name]

    def serve(self, req, path):
        """The file's answer, or None when there is no such file."""
        if path not in self.versions:
            return None
        response = req.get_response(FileApp(os.path.join(self.directory, path)))
        if response.status_int in (200, 304):
            versioned = req.GET.get("v") == self.versions[path]
            response.cache_control = IMMUTABLE if versioned else f"public, max-age={self.max_age}"
        return response
