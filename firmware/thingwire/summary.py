"""Edge summaries: one reading per SEND_S window instead of every sample (SEND_MODE = "summary").

The energy-meter lesson: aggregate at the edge. Samples go into the current window; when a sample
arrives SEND_S or more after the window's first one (or flush_due() is called at send time), the
window closes into one reading, stamped with the time of its first sample:
  <metric>      the mean of the window's values (numbers), or the last value (booleans)
  <metric>_min  the smallest value (numbers)
  <metric>_max  the largest value (numbers)
  samples       how many samples the window had
A metric whose name with _min/_max would pass 128 characters is sent as the mean only. The summary
goes into the ring like any reading, so buffering while offline and ordering are unchanged.
"""
from .payload import MAX_NAME, valid_name


class Summariser:
    def __init__(self, ring, clock, period_ms):
        self.ring = ring
        self.clock = clock
        self.period_ms = max(1, int(period_ms))
        self._start = None  # ticks of the window's first sample
        self._n = 0
        self._acc = {}  # name -> [sum, min, max, count] for numbers, or ["last", value]
        self.windows = 0

    def push(self, entry):
        ticks = entry[1]
        if self._start is not None and self.clock.ticks_diff(ticks, self._start) >= self.period_ms:
            self._close()
        if self._start is None:
            self._start = ticks
        self._n += 1
        metrics = entry[2]
        for name in metrics:
            v = metrics[name]
            a = self._acc.get(name)
            if isinstance(v, bool):
                self._acc[name] = ["last", v]
            elif a is None or a[0] == "last":
                self._acc[name] = [v, v, v, 1]
            else:
                a[0] += v
                if v < a[1]:
                    a[1] = v
                if v > a[2]:
                    a[2] = v
                a[3] += 1

    def flush_due(self, now_ticks):
        """Closes the window when its period has passed (called at send time); True when it did."""
        if self._start is None or self.clock.ticks_diff(now_ticks, self._start) < self.period_ms:
            return False
        self._close()
        return True

    def close(self):
        """Closes the open window now (at shutdown); True when there was one."""
        if self._start is None:
            return False
        self._close()
        return True

    def _close(self):
        out = {}
        for name in self._acc:
            a = self._acc[name]
            if a[0] == "last":
                out[name] = a[1]
                continue
            out[name] = a[0] / a[3]
            if len(name) + 4 <= MAX_NAME and valid_name(name + "_min"):
                out[name + "_min"] = a[1]
                out[name + "_max"] = a[2]
        out["samples"] = self._n
        self.ring.push([self.clock.epoch_ms(self._start), self._start, out])
        self.windows += 1
        self._start = None
        self._n = 0
        self._acc = {}
