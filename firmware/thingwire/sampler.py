"""Sampling into the ring buffer, and the clock fix-up for readings taken before NTP.

Each sample merges the dicts of all sensors into one reading. An entry in the ring is a list
[ts_ms or None, ticks_ms, metrics]; ts is None while the clock is unset and is filled in by
fix_up() once it is (ts = epoch of the tick count). Before that, flush() sends nothing: readings
wait (bounded by the ring: the oldest go first when it is full, counted in ring.dropped).
Limit: a tick count is good for about 6 days on Pico W and ESP32 (ticks_diff range), so a
reading kept unstamped for longer than that would get a wrong time; with the default buffer
(500 readings every 5 s, about 40 minutes) that cannot happen.
"""
from .payload import clean_metrics


class Sampler:
    def __init__(self, sensors, ring, clock, log=None, sink=None):
        """sink: where samples go (default the ring; a Summariser in SEND_MODE "summary")."""
        self.sensors = sensors
        self.ring = ring
        self.sink = sink if sink is not None else ring
        self.clock = clock
        self.log = log
        self.sensor_errors = 0
        self.invalid_values = 0
        self.samples = 0

    def sample(self):
        """Reads every sensor once and queues one reading; False when no sensor gave a value."""
        values = {}
        for s in self.sensors:
            try:
                d = s.read()
            except Exception as e:  # noqa: BLE001 - a failing sensor must not stop the others
                self.sensor_errors += 1
                if self.log:
                    self.log("sensor %s: %r" % (getattr(s, "name", "?"), e))
                continue
            for k in d:
                values[k] = d[k]
        metrics, bad = clean_metrics(values)
        self.invalid_values += bad
        if not metrics:
            return False
        t = self.clock.ticks_ms()
        self.sink.push([self.clock.epoch_ms(t), t, metrics])
        self.samples += 1
        return True

    def fix_up(self):
        """Stamps readings taken before the clock was set; returns how many it stamped."""
        if not self.clock.synced:
            return 0
        n = 0
        for e in self.ring.items():
            if e[0] is None:
                e[0] = self.clock.epoch_ms(e[1])
                n += 1
        return n

    def ready(self):
        """True when the oldest queued reading has its time (so the queue can be sent in order)."""
        head = self.ring.peek(1)
        return bool(head) and head[0][0] is not None
