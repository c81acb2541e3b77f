"""A bounded FIFO that drops the oldest item when full and counts what it dropped."""


class Ring:
    def __init__(self, capacity):
        if capacity < 1:
            raise ValueError("ring capacity must be at least 1")
        self._buf = [None] * capacity
        self._cap = capacity
        self._head = 0  # index of the oldest item
        self._n = 0
        self.dropped = 0

    def __len__(self):
        return self._n

    @property
    def capacity(self):
        return self._cap

    def push(self, item):
        if self._n == self._cap:
            self._buf[self._head] = item  # overwrite the oldest: it becomes the newest
            self._head = (self._head + 1) % self._cap
            self.dropped += 1
        else:
            self._buf[(self._head + self._n) % self._cap] = item
            self._n += 1

    def peek(self, k):
        """Up to k oldest items, oldest first, without removing them."""
        k = min(k, self._n)
        return [self._buf[(self._head + i) % self._cap] for i in range(k)]

    def drop_front(self, k):
        """Removes the k oldest items (after they were sent)."""
        k = min(k, self._n)
        for i in range(k):
            self._buf[(self._head + i) % self._cap] = None
        self._head = (self._head + k) % self._cap
        self._n -= k

    def items(self):
        for i in range(self._n):
            yield self._buf[(self._head + i) % self._cap]
