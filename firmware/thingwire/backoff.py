"""Exponential backoff in ticks: 1 s, 2 s, 4 s ... up to a cap; reset on success."""


class Backoff:
    def __init__(self, ticks_diff, min_ms=1000, max_ms=60000):
        self.ticks_diff = ticks_diff
        self.min_ms = min_ms
        self.max_ms = max_ms
        self.failures = 0
        self._since = None
        self._wait = 0

    def ready(self, now):
        return self._since is None or self.ticks_diff(now, self._since) >= self._wait

    def fail(self, now):
        self.failures += 1
        self._since = now
        self._wait = min(self.max_ms, self.min_ms * (1 << min(self.failures - 1, 20)))
        return self._wait

    def hold(self, now, ms):
        """Waits at least `ms` from now (a server's Retry-After), at most an hour; returns the wait."""
        self._since = now
        self._wait = min(max(self._wait, ms), 3600000)
        return self._wait

    def ok(self):
        self.failures = 0
        self._since = None
        self._wait = 0
