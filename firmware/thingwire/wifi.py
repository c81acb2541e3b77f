"""Joining Wi-Fi without blocking the loop: start a join, poll it, give up after a timeout, back off."""
from .backoff import Backoff


class Wifi:
    def __init__(self, wlan, ssid, password, ticks_ms, ticks_diff, timeout_s=20,
                 backoff_min_ms=2000, backoff_max_ms=120000, log=None):
        self.wlan = wlan
        self.ssid = ssid
        self.password = password
        self.ticks_ms = ticks_ms
        self.ticks_diff = ticks_diff
        self.timeout_ms = timeout_s * 1000
        self.backoff = Backoff(ticks_diff, backoff_min_ms, backoff_max_ms)
        self.log = log
        self._joining_since = None
        self.joins = 0

    def ensure(self):
        """True when connected; otherwise starts or polls a join. Never raises."""
        try:
            if self.wlan.isconnected():
                if self._joining_since is not None:
                    self._joining_since = None
                    self.joins += 1
                    self.backoff.ok()
                return True
        except Exception:  # noqa: BLE001
            pass
        now = self.ticks_ms()
        if self._joining_since is not None:
            if self.ticks_diff(now, self._joining_since) < self.timeout_ms:
                return False
            self._joining_since = None
            try:
                self.wlan.disconnect()
            except Exception:  # noqa: BLE001
                pass
            wait = self.backoff.fail(now)
            if self.log:
                self.log("wifi join timed out; retry in %d ms" % wait)
            return False
        if not self.backoff.ready(now):
            return False
        try:
            self.wlan.active(True)
            self.wlan.connect(self.ssid, self.password)
        except Exception as e:  # noqa: BLE001
            wait = self.backoff.fail(now)
            if self.log:
                self.log("wifi connect failed (%r); retry in %d ms" % (e, wait))
            return False
        self._joining_since = now
        return False
