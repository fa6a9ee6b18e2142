"""A bounded dict, the one cache of the package: when full, it starts again empty."""


class BoundedCache(dict):
    """A dict of at most ``size`` entries, filled with :meth:`put`.

    A full cache is emptied rather than trimmed entry by entry: every cache of
    the app holds things that are cheap to make again, and reading one (a
    plain ``dict.get``) is on the hottest paths, so it must cost nothing more
    than a dict's.
    """

    def __init__(self, size):
        super().__init__()
        if size < 1:
            raise ValueError("a cache holds at least one entry")
        self.size = size

    def put(self, key, value):
        """Keep ``value`` under ``key`` (emptying the cache first if it is full); return it."""
        if len(self) >= self.size and key not in self:
            self.clear()
        self[key] = value
        return value
