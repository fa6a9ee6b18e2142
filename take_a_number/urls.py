"""URLs from route names: Routes' URLGenerator, remembered, or filled in directly."""

import re

from routes.util import URLGenerator

# URLs remembered: the size of the BoundedCache every request's Urls shares.
URL_CACHE_SIZE = 20_000
# Characters a URL path never quotes: a value made of them is filled in as is.
_UNQUOTED = "[A-Za-z0-9_.~-]+"


class Urls:
    """``url(name, **args)`` for one request: Routes' URLGenerator, remembered.

    A URL depends only on the route, its arguments and SCRIPT_NAME, and
    Routes takes long to build one, so each is built once (in ``cache``, a
    BoundedCache every request shares). A URL whose every argument fills a
    path variable with characters no URL quotes is filled in directly
    (``paths``, from :func:`fillable_paths`), as Routes would.
    """

    def __init__(self, mapper, environ, cache, paths):
        self.mapper = mapper
        self.environ = environ
        self.cache = cache
        self.paths = paths
        self.generator = None

    def __call__(self, name, **args):
        key = (self.environ.get("SCRIPT_NAME", ""), name, *sorted(args.items()))
        url = self.cache.get(key)
        if url is None:
            url = self._fill(name, args)
            if url is None:
                if self.generator is None:
                    self.generator = URLGenerator(self.mapper, self.environ)
                url = self.generator(name, **args)
            self.cache.put(key, url)
        return url

    def _fill(self, name, args):
        path = self.paths.get(name)
        if path is None:
            return None
        template, requirements = path
        if args.keys() != requirements.keys():
            return None
        values = {arg: str(value) for arg, value in args.items()}
        if not all(requirements[arg].fullmatch(value) for arg, value in values.items()):
            return None
        return self.environ.get("SCRIPT_NAME", "") + template.format(**values)


def fillable_paths(mapper):
    """``{route name: (path template, {variable: pattern})}`` for Urls._fill.

    A value must match the route's requirement and hold only characters that
    URLs never quote, so that filling it in gives the URL Routes would build.
    """
    paths = {}
    for route in mapper.matchlist:
        if route.name is None or route.name in paths:
            continue
        variables = re.findall(r"{(\w+)}", route.routepath)
        if route.routepath.count("{") != len(variables):
            continue  # a pattern inside the path: leave it to Routes
        patterns = {}
        for variable in variables:
            requirement = route.reqs.get(variable)
            pattern = f"(?=(?:{requirement})\\Z){_UNQUOTED}" if requirement else _UNQUOTED
            patterns[variable] = re.compile(pattern)
        paths[route.name] = (route.routepath, patterns)
    return paths
