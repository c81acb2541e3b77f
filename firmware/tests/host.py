"""Runs the firmware on the host against a real Thingwire runtime: real time, real sockets.

Only what has no host equivalent is stood in for: the Wi-Fi interface (the host is online), the
DHT22 (a deterministic series), the watchdog and pins. The MQTT client is a small MQTT 3.1.1 client
over a plain socket with umqtt.simple's interface (connect with last will and user/password, QoS 1
publish that waits for its PUBACK, ping, disconnect); HTTP goes through urllib with requests.post's
interface. The firmware itself (main.build, thingwire/*) runs unchanged.

    python3 firmware/tests/host.py --device ID --token=TOKEN --samples N [--transport mqtt|http]
        [--broker HOST:PORT] [--http-url URL --http-api native|thingspeak --stream ID]
        [--sample-ms 200] [--send-s 1] [--send-mode batch|summary] [--timeout-s 60]

Prints one JSON line per payload the server took ({"sent": <payload>}), then {"stats": ...}.
Exit status 0 when every sample was delivered within the timeout, 1 otherwise.
"""
import argparse
import json
import os
import socket
import struct
import sys
import time
import types
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import main  # noqa: E402 - the firmware's own entry point

TICKS_PERIOD = 1 << 30


class HostTime:
    @staticmethod
    def ticks_ms():
        return int(time.monotonic() * 1000) % TICKS_PERIOD

    @staticmethod
    def ticks_diff(a, b):
        half = TICKS_PERIOD // 2
        return ((a - b + half) % TICKS_PERIOD) - half

    @staticmethod
    def time():
        return int(time.time())

    @staticmethod
    def gmtime(secs=None):
        return time.gmtime(secs)

    @staticmethod
    def sleep_ms(ms):
        time.sleep(ms / 1000)


class MQTTException(Exception):
    pass


def _str(s):
    b = s.encode() if isinstance(s, str) else bytes(s)
    return struct.pack("!H", len(b)) + b


def _remaining(n):
    out = bytearray()
    while True:
        d = n % 128
        n //= 128
        out.append(d | 0x80 if n else d)
        if not n:
            return bytes(out)


class HostMQTTClient:
    """umqtt.simple.MQTTClient's surface over a real socket (MQTT 3.1.1)."""

    def __init__(self, client_id, server, port=1883, user=None, password=None, keepalive=0, ssl=None, ssl_params=None):
        if ssl:
            raise ValueError("TLS is not part of the host adapter")
        self.client_id = client_id
        self.server = server
        self.port = port
        self.user = user
        self.password = password
        self.keepalive = keepalive
        self.will = None
        self.sock = None
        self.pid = 0

    def set_last_will(self, topic, msg, retain=False, qos=0):
        self.will = (topic, msg, retain, qos)

    def _read(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise OSError(104, "connection closed by the broker")
            buf += chunk
        return buf

    def _packet(self):
        head = self._read(1)[0]
        n, mult = 0, 1
        while True:
            d = self._read(1)[0]
            n += (d & 0x7F) * mult
            mult *= 128
            if not d & 0x80:
                break
        return head, self._read(n) if n else b""

    def connect(self, clean_session=True):
        self.sock = socket.create_connection((self.server, self.port), timeout=10)
        flags = 0x02 if clean_session else 0
        payload = _str(self.client_id)
        if self.will:
            t, m, r, q = self.will
            flags |= 0x04 | (q << 3) | (0x20 if r else 0)
            payload += _str(t) + _str(m)
        if self.user is not None:
            flags |= 0x80
            payload += _str(self.user)
        if self.password is not None:
            flags |= 0x40
            payload += _str(self.password)
        var = _str("MQTT") + bytes([4, flags]) + struct.pack("!H", self.keepalive)
        body = var + payload
        self.sock.sendall(bytes([0x10]) + _remaining(len(body)) + body)
        head, data = self._packet()
        if head != 0x20 or len(data) != 2:
            raise MQTTException("expected CONNACK, got 0x%02x" % head)
        if data[1] != 0:
            raise MQTTException(data[1])
        return data[0] & 1

    def publish(self, topic, msg, retain=False, qos=0):
        if isinstance(msg, str):
            msg = msg.encode()
        body = _str(topic)
        if qos:
            self.pid = self.pid % 65535 + 1
            body += struct.pack("!H", self.pid)
        body += msg
        self.sock.sendall(bytes([0x30 | (qos << 1) | (1 if retain else 0)]) + _remaining(len(body)) + body)
        if qos == 1:
            while True:
                head, data = self._packet()
                if head == 0x40 and struct.unpack("!H", data)[0] == self.pid:
                    return
                # anything else (a PINGRESP to an earlier ping) is read past

    def ping(self):
        self.sock.sendall(b"\xc0\x00")

    def disconnect(self):
        try:
            self.sock.sendall(b"\xe0\x00")
        finally:
            self.sock.close()


class HostResponse:
    def __init__(self, status, body, headers):
        self.status_code = status
        self.content = body
        self.headers = headers

    @property
    def text(self):
        return self.content.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.content)

    def close(self):
        pass


def host_post(url, data=None, headers=None, timeout=None):
    req = urllib.request.Request(url, data=data, headers=headers or {}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return HostResponse(r.status, r.read(), dict(r.headers))
    except urllib.error.HTTPError as e:
        return HostResponse(e.code, e.read(), dict(e.headers))


class HostWLAN:
    def active(self, v=None):
        return True

    def connect(self, ssid, password):
        pass

    def disconnect(self):
        pass

    def isconnected(self):
        return True


class Dht:
    """A DHT22 whose readings are a known series: temperature 20.0, 20.1, ... humidity 40 + i % 5."""

    count = 0

    def __init__(self, pin):
        pass

    def measure(self):
        Dht.count += 1

    def temperature(self):
        return round(20 + (Dht.count % 100) / 10, 1)

    def humidity(self):
        return 40.0 + Dht.count % 5


def modules():
    machine = types.ModuleType("machine")

    class Pin:
        OUT = 1
        IN = 0

        def __init__(self, pin, mode=None):
            self.pin = pin

        def toggle(self):
            pass

        def value(self, v=None):
            return 0

    class ADC:
        def __init__(self, ch):
            pass

        def read_u16(self):
            return int(0.706 / 3.3 * 65535)  # 27 degrees C on the RP2040's sensor

    class WDT:
        def __init__(self, timeout=5000):
            pass

        def feed(self):
            pass

    machine.Pin = Pin
    machine.ADC = ADC
    machine.WDT = WDT
    machine.reset = lambda: None
    network = types.ModuleType("network")
    network.STA_IF = 0
    network.WLAN = lambda _i: HostWLAN()
    dht = types.ModuleType("dht")
    dht.DHT22 = Dht
    ntptime = types.SimpleNamespace(host="", settime=lambda: None)  # the host's clock is already right
    return {"platform": "rp2", "time": HostTime, "machine": machine, "network": network, "dht": dht,
            "ntptime": ntptime, "MQTTClient": HostMQTTClient, "post": host_post, "os": os}


def run(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--samples", type=int, default=20)
    p.add_argument("--transport", default="mqtt")
    p.add_argument("--broker", default="127.0.0.1:1883")
    p.add_argument("--http-url", default="http://127.0.0.1:1880")
    p.add_argument("--http-api", default="native")
    p.add_argument("--stream", default="")
    p.add_argument("--sample-ms", type=int, default=200)
    p.add_argument("--send-s", type=float, default=1)
    p.add_argument("--send-mode", default="batch")
    p.add_argument("--timeout-s", type=float, default=60)
    a = p.parse_args(argv)
    host, port = a.broker.rsplit(":", 1)
    cfg = types.SimpleNamespace(
        WIFI_SSID="host", WIFI_PASSWORD="", WIFI_TIMEOUT_S=10, TRANSPORT=a.transport, BROKER_HOST=host,
        BROKER_PORT=int(port), USE_TLS=False, CA_FILE="", KEEPALIVE_S=60, DEVICE_ID=a.device, TOKEN=a.token,
        SAMPLE_S=a.sample_ms / 1000, SEND_S=a.send_s, SEND_MODE=a.send_mode, BUFFER_SIZE=1000, MAX_BATCH=50,
        BUFFER_FILE=None, BUFFER_SAVE_S=300, DHT22_PIN=None, USE_DHT22=True, USE_INTERNAL_TEMP=True,
        NTP_HOST="", NTP_RESYNC_S=3600, WATCHDOG_S=8, LED=False, HTTP_URL=a.http_url, HTTP_API=a.http_api,
        STREAM_ID=a.stream, THINGSPEAK_FIELDS=("temperature", "humidity", "chip_temperature"), HTTP_TIMEOUT_S=10)
    log = lambda m: print("[thingwire] " + m, file=sys.stderr)  # noqa: E731
    app, _board = main.build(cfg, modules(), log)
    publish = app.session.publish

    def recorded(topic, payload):
        ok = publish(topic, payload)
        if ok:
            print(json.dumps({"sent": json.loads(payload)}), flush=True)
        return ok
    app.session.publish = recorded
    deadline = time.monotonic() + a.timeout_s
    while time.monotonic() < deadline:
        app.step()
        if app.sampler.samples >= a.samples:
            app.sampler.sensors = []  # enough: stop sampling, drain what is queued
            if app.summariser is not None:
                app.summariser.close()
        if app.sampler.samples >= a.samples and not len(app.ring):
            break
        time.sleep(0.02)
    app.session.close()
    stats = app.stats()
    print(json.dumps({"stats": stats}), flush=True)
    return 0 if stats["queued"] == 0 and stats["samples"] >= a.samples else 1


if __name__ == "__main__":
    sys.exit(run())
