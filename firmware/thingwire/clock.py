"""Event time for readings: milliseconds since 1970, anchored on NTP and carried by the tick counter.

MicroPython's time.time() has whole seconds only and, on older ports, counts from 2000; so the
clock takes one anchor at each NTP sync (epoch ms, tick ms) and stamps a reading with
anchor_ms + ticks_diff(now, anchor_ticks). A reading taken before the first sync has no epoch time
yet: it keeps its tick count and ts = None, and is stamped retroactively by fix_up() once the clock
is set (see Sampler). Nothing is ever sent with a made-up time.
"""

# Seconds from 1970-01-01 to 2000-01-01: the epoch of MicroPython ports where gmtime(0) is 2000.
EPOCH_2000_S = 946684800
# A sync result outside 2020..2100 means NTP did not really set the clock.
MIN_VALID_MS = 1577836800000
MAX_VALID_MS = 4102444800000


class Clock:
    def __init__(self, ticks_ms, ticks_diff, rtc_time, settime=None, epoch_offset_s=0):
        """ticks_ms/ticks_diff: time.ticks_ms/ticks_diff; rtc_time: time.time; settime: ntptime.settime;
        epoch_offset_s: EPOCH_2000_S when time.gmtime(0)[0] == 2000, else 0."""
        self.ticks_ms = ticks_ms
        self.ticks_diff = ticks_diff
        self._rtc_time = rtc_time
        self._settime = settime
        self._offset_s = epoch_offset_s
        self._anchor_ms = None
        self._anchor_ticks = None
        self.last_sync_ticks = None
        self.sync_failures = 0

    @property
    def synced(self):
        return self._anchor_ms is not None

    def sync(self):
        """Sets the RTC from NTP and re-anchors. True on success; never raises."""
        try:
            if self._settime is not None:
                self._settime()
            t = self.ticks_ms()
            ms = (int(self._rtc_time()) + self._offset_s) * 1000
        except Exception:  # noqa: BLE001 - NTP over UDP fails in many ways
            self.sync_failures += 1
            return False
        if ms < MIN_VALID_MS or ms > MAX_VALID_MS:
            self.sync_failures += 1
            return False
        self._anchor_ms = ms
        self._anchor_ticks = t
        self.last_sync_ticks = t
        return True

    def epoch_ms(self, ticks=None):
        """Epoch ms of a tick count (default now); None before the first sync."""
        if self._anchor_ms is None:
            return None
        if ticks is None:
            ticks = self.ticks_ms()
        return self._anchor_ms + self.ticks_diff(ticks, self._anchor_ticks)
