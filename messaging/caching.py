"""A tiny per-process cache for rows read on hot paths (the webhook's provider and sender).

Entries expire after `seconds`, so an edit in the admin shows within that time in every
process. A miss (None) is never kept: a row just added is found at once.
"""

import time
from collections.abc import Callable, Hashable


class TtlCache:
    def __init__(self, seconds: float, max_size: int) -> None:
        self.seconds = seconds
        self.max_size = max_size
        self._entries: dict[Hashable, tuple[float, object]] = {}

    def get(self, key: Hashable, load: Callable[[], object]):
        now = time.monotonic()
        cached = self._entries.get(key)
        if cached is not None and cached[0] >= now:
            return cached[1]
        value = load()
        if value is not None:
            if len(self._entries) >= self.max_size:
                self._entries.clear()  # rare: far more keys than a deployment has
            self._entries[key] = (now + self.seconds, value)
        return value

    def clear(self) -> None:
        self._entries.clear()
