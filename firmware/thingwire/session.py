"""The MQTT session: connect with device id + token, last will, QoS 1 publish, recovery with backoff.

The client follows umqtt.simple's API: MQTTClient(client_id, server, port, user, password,
keepalive, ...) made by `factory`, then set_last_will(topic, msg, retain, qos), connect(),
publish(topic, msg, retain, qos), ping(), disconnect(). umqtt.simple raises OSError (or
MQTTException) when the connection is gone or the broker refuses it; any exception marks the
session down, and the next ensure() after the backoff builds a fresh client. publish() with QoS 1
returns after the PUBACK, so a reading leaves the ring only once the broker has it; a connection
lost before the PUBACK means the message is sent again after the reconnect (QoS 1's at-least-once).
"""
from .backoff import Backoff
from .payload import status_topic


class Session:
    def __init__(self, factory, device_id, ticks_ms, ticks_diff, keepalive_s=60, socket_timeout_s=10,
                 backoff_min_ms=1000, backoff_max_ms=60000, log=None):
        self.factory = factory
        self.device_id = device_id
        self.ticks_ms = ticks_ms
        self.ticks_diff = ticks_diff
        self.keepalive_ms = keepalive_s * 1000
        self.socket_timeout_s = socket_timeout_s
        self.backoff = Backoff(ticks_diff, backoff_min_ms, backoff_max_ms)
        self.log = log
        self.client = None
        self.connects = 0
        self.losses = 0
        self.last_error = None
        self._last_io = None

    @property
    def connected(self):
        return self.client is not None

    def ensure(self):
        """Connected (True), or tries to connect when the backoff allows; never raises."""
        if self.client is not None:
            return True
        now = self.ticks_ms()
        if not self.backoff.ready(now):
            return False
        c = None
        try:
            c = self.factory()
            topic = status_topic(self.device_id)
            c.set_last_will(topic, b"offline", True, 1)
            c.connect()
            sock = getattr(c, "sock", None)
            if sock is not None and hasattr(sock, "settimeout") and self.socket_timeout_s:
                sock.settimeout(self.socket_timeout_s)  # a dead link raises instead of blocking forever
            c.publish(topic, b"online", True, 1)
        except Exception as e:  # noqa: BLE001
            self.last_error = e
            self._close(c)
            wait = self.backoff.fail(now)
            if self.log:
                self.log("mqtt connect failed (%r); retry in %d ms" % (e, wait))
            return False
        self.client = c
        self.connects += 1
        self.backoff.ok()
        self._last_io = self.ticks_ms()
        return True

    def publish(self, topic, payload):
        """QoS 1 publish; False (and the session down) when it failed."""
        if self.client is None:
            return False
        try:
            self.client.publish(topic, payload, False, 1)
        except Exception as e:  # noqa: BLE001
            self.lost(e)
            return False
        self._last_io = self.ticks_ms()
        return True

    def keepalive(self):
        """Pings when nothing was sent for half the keepalive, so the broker keeps the session."""
        if self.client is None or not self.keepalive_ms:
            return
        now = self.ticks_ms()
        if self.ticks_diff(now, self._last_io) < self.keepalive_ms // 2:
            return
        try:
            self.client.ping()
        except Exception as e:  # noqa: BLE001
            self.lost(e)
            return
        self._last_io = now

    def lost(self, err=None):
        """The connection is gone (publish failed, Wi-Fi dropped): close it and back off."""
        if self.client is None:
            return
        self.last_error = err
        self._close(self.client)
        self.client = None
        self.losses += 1
        wait = self.backoff.fail(self.ticks_ms())
        if self.log:
            self.log("mqtt connection lost (%r); retry in %d ms" % (err, wait))

    def close(self):
        """A clean disconnect (no last will)."""
        if self.client is not None:
            try:
                self.client.publish(status_topic(self.device_id), b"offline", True, 1)
            except Exception:  # noqa: BLE001
                pass
            self._close(self.client)
            self.client = None

    @staticmethod
    def _close(c):
        if c is None:
            return
        try:
            c.disconnect()
        except Exception:  # noqa: BLE001
            sock = getattr(c, "sock", None)
            try:
                if sock is not None:
                    sock.close()
            except Exception:  # noqa: BLE001
                pass
