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
        self.generation = None

    def only_for(self, generation):
        """Empty the cache unless its entries were made in this ``generation`` of the store.

        For caches of what was read from the store: what was read before a change
        is never given again, and on a busy day it would be most of the cache.
        """
        if generation != self.generation:
            self.clear()
            self.generation = generation

    def put(self, key, value):
        """Keep ``value`` under ``key`` (emptying the cache first if it is full); return it."""
        if len(self) >= self.size and key not in self:
            self.clear()
        self[key] = value
        return value
