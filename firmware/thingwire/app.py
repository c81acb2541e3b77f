"""The main loop, one non-blocking step at a time (so the watchdog is fed and tests drive it).

Each step: feed the watchdog; sample when SAMPLE_S has passed; keep Wi-Fi up; set the clock from
NTP once online (and every NTP_RESYNC_S), stamping readings taken before it; keep the MQTT session
up; send queued readings in order when SEND_S has passed (or at once when SEND_S is 0), at most
MAX_BATCH a message, removing them from the ring only after the broker acknowledged (QoS 1).
The session is MQTT (session.Session) or HTTP (http.HttpSession): the same interface. Optional:
a Summariser (SEND_MODE "summary") closes its window at send time; a FlashBuffer keeps a copy of
the queue on flash while it cannot be sent (every BUFFER_SAVE_S) and drops it once it is sent.
"""
from .payload import encode, telemetry_topic, reading_object

MAX_MESSAGES_PER_STEP = 4  # drain a long backlog over several steps, feeding the watchdog between


class App:
    def __init__(self, cfg, clock, sampler, wifi, session, wdt=None, led=None, log=None, summariser=None, flash=None):
        self.cfg = cfg
        self.clock = clock
        self.sampler = sampler
        self.ring = sampler.ring
        self.wifi = wifi
        self.session = session
        self.wdt = wdt
        self.led = led
        self.log = log
        self.summariser = summariser
        self.flash = flash
        self.flash_ms = int(getattr(cfg, "BUFFER_SAVE_S", 300) * 1000)
        self._last_flash = None
        self.topic = telemetry_topic(cfg.DEVICE_ID)
        self.sample_ms = int(cfg.SAMPLE_S * 1000)
        self.send_ms = int(cfg.SEND_S * 1000)
        self.resync_ms = int(getattr(cfg, "NTP_RESYNC_S", 3600) * 1000)
        self.max_batch = max(1, int(getattr(cfg, "MAX_BATCH", 50)))
        self._last_sample = None
        self._last_send = None
        self._last_sync_try = None
        self.sent = 0
        self.messages = 0

    def _due(self, last, period, now):
        return last is None or self.clock.ticks_diff(now, last) >= period

    def step(self):
        self._feed()
        now = self.clock.ticks_ms()
        if self._due(self._last_sample, self.sample_ms, now):
            self._last_sample = now
            self.sampler.sample()
        if self.summariser is not None:
            self.summariser.flush_due(now)
        if not self.wifi.ensure():
            self.session.lost(OSError("wifi down"))  # the socket died with the link
            self._save_flash(now)
            return
        if not self.clock.synced or self._due(self.clock.last_sync_ticks, self.resync_ms, now):
            if self._due(self._last_sync_try, 10000 if not self.clock.synced else 60000, now):
                self._last_sync_try = now
                if self.clock.sync():
                    n = self.sampler.fix_up()
                    if n and self.log:
                        self.log("clock set; stamped %d earlier readings" % n)
        if not self.session.ensure():
            self._save_flash(now)
            return
        if self.send_ms == 0 or self._due(self._last_send, self.send_ms, now):
            if self.flush():
                self._last_send = now
            elif len(self.ring):
                self._save_flash(now)
        self.session.keepalive()
        if self.flash is not None and not len(self.ring):
            self.flash.clear()

    def _save_flash(self, now):
        """Copies the waiting queue to flash, at most every BUFFER_SAVE_S (flash wears)."""
        if self.flash is None or not len(self.ring):
            return
        if self._last_flash is not None and self.clock.ticks_diff(now, self._last_flash) < self.flash_ms:
            return
        self._last_flash = now
        self.flash.save(self.ring)

    def flush(self):
        """Sends queued readings in order; True when the queue was drained (or nothing could be sent yet)."""
        for _ in range(MAX_MESSAGES_PER_STEP):
            if not len(self.ring):
                return True
            if not self.sampler.ready():
                return True  # clock not set yet: nothing may leave without its time
            entries = self.ring.peek(self.max_batch)
            n = 0
            while n < len(entries) and entries[n][0] is not None:
                n += 1
            batch = [reading_object(e[0], e[2]) for e in entries[:n]]
            payload = encode(batch, self.send_ms != 0)
            if not self.session.publish(self.topic, payload):
                return False
            self.ring.drop_front(n)
            self.sent += n
            self.messages += 1
            self._blink()
            self._feed()
        return not len(self.ring)

    def _feed(self):
        if self.wdt is not None:
            self.wdt.feed()

    def _blink(self):
        if self.led is not None:
            try:
                self.led.toggle()
            except Exception:  # noqa: BLE001
                pass

    def stats(self):
        return {
            "samples": self.sampler.samples,
            "sent": self.sent,
            "messages": self.messages,
            "queued": len(self.ring),
            "dropped": self.ring.dropped,
            "sensor_errors": self.sampler.sensor_errors,
            "invalid_values": self.sampler.invalid_values,
            "connects": self.session.connects,
            "losses": self.session.losses,
            "rejected": getattr(self.session, "rejected", 0),
            "flash_saves": self.flash.saves if self.flash is not None else 0,
        }

    def run(self, sleep_ms, period_ms=100):
        while True:
            self.step()
            sleep_ms(period_ms)
