"""Small fakes of the MicroPython-only modules: time.ticks_*, machine, network, umqtt.simple, dht, ntptime.

They model just what the firmware relies on, with knobs to break things (broker down, Wi-Fi gone,
PUBACK lost, NTP failing, sensor errors). One World holds the simulated time and the broker.
"""
import json
import os
import sys
import types

# The firmware directory (thingwire/, main.py, config.py) on the path, as on the board.
FIRMWARE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if FIRMWARE not in sys.path:
    sys.path.insert(0, FIRMWARE)

TICKS_PERIOD = 1 << 30  # MicroPython ticks_ms wraps here on rp2 and esp32
REAL_T0_MS = 1764590400000  # 2025-12-01T12:00:00Z, the "real" time when the simulation starts


class FakeTime:
    """time with ticks_ms/ticks_diff/ticks_add/sleep_ms; time() is the RTC, unset (year 2000) until NTP."""

    def __init__(self, start_ticks=0, real_t0_ms=REAL_T0_MS, epoch_2000=False):
        self._ticks = start_ticks % TICKS_PERIOD
        self.elapsed_ms = 0
        self.real_t0_ms = real_t0_ms
        self.epoch_2000 = epoch_2000
        self._rtc_base_s = 0  # port-epoch seconds at _rtc_set_elapsed
        self._rtc_set_elapsed = 0

    # MicroPython semantics
    def ticks_ms(self):
        return self._ticks

    @staticmethod
    def ticks_diff(a, b):
        half = TICKS_PERIOD // 2
        return ((a - b + half) % TICKS_PERIOD) - half

    @staticmethod
    def ticks_add(a, d):
        return (a + d) % TICKS_PERIOD

    def sleep_ms(self, ms):
        self.advance(ms)

    def advance(self, ms):
        self._ticks = (self._ticks + ms) % TICKS_PERIOD
        self.elapsed_ms += ms

    def real_ms(self):
        return self.real_t0_ms + self.elapsed_ms

    def time(self):
        return self._rtc_base_s + (self.elapsed_ms - self._rtc_set_elapsed) // 1000

    def gmtime(self, secs=None):
        return (2000 if self.epoch_2000 else 1970, 1, 1, 0, 0, 0, 5, 1)

    def set_rtc_from_real(self):
        s = self.real_ms() // 1000
        self._rtc_base_s = s - 946684800 if self.epoch_2000 else s
        self._rtc_set_elapsed = self.elapsed_ms - self.real_ms() % 1000


class FakeNtp:
    def __init__(self, world):
        self.world = world
        self.host = "pool.ntp.org"
        self.calls = 0
        self.fail = False

    def settime(self):
        self.calls += 1
        if self.fail or not self.world.wlan_up():
            raise OSError(110)  # ETIMEDOUT
        self.world.time.set_rtc_from_real()


class MQTTException(Exception):
    pass


class FakeBroker:
    """Records what arrives; knobs: up, accounts, drop_puback_next."""

    def __init__(self, world):
        self.world = world
        self.up = True
        self.accounts = {}
        self.received = []  # (topic, payload bytes, retain, qos)
        self.retained = {}
        self.connects = []
        self.drop_puback_next = 0
        self.session = None  # the connected FakeMQTTClient

    def telemetry(self):
        return [(t, p) for (t, p, _r, _q) in self.received if t.endswith("/telemetry")]

    def readings(self):
        out = []
        for _t, p in self.telemetry():
            v = json.loads(p)
            out.extend(v if isinstance(v, list) else [v])
        return out

    def kill_connection(self, will=True):
        """The broker (or the network path) drops the current client: its last will goes out."""
        c = self.session
        if c is None:
            return
        c.alive = False
        self.session = None
        if will and c.will is not None:
            t, m, r, q = c.will
            self._deliver(t, m, r, q)

    def _deliver(self, topic, msg, retain, qos):
        self.received.append((topic, bytes(msg), retain, qos))
        if retain:
            self.retained[topic] = bytes(msg)


class FakeMQTTClient:
    """umqtt.simple.MQTTClient's surface."""

    broker = None  # set per world

    def __init__(self, client_id, server, port=0, user=None, password=None, keepalive=0, ssl=None, ssl_params=None):
        self.client_id = client_id
        self.server = server
        self.port = port
        self.user = user
        self.password = password
        self.keepalive = keepalive
        self.ssl = ssl
        self.will = None
        self.alive = False
        self.sock = None
        self.pings = 0

    def set_last_will(self, topic, msg, retain=False, qos=0):
        self.will = (topic, msg, retain, qos)

    def connect(self, clean_session=True):
        b = self.broker
        if not b.up or not b.world.wlan_up():
            raise OSError(113)  # EHOSTUNREACH / ECONNREFUSED
        if b.accounts and b.accounts.get(self.user) != self.password:
            raise MQTTException(4)
        b.kill_connection(will=False)  # a new connection with the same client id replaces the old
        b.connects.append(self.client_id)
        b.session = self
        self.alive = True
        self.sock = FakeSocket()
        return 0

    def _check(self):
        if not self.alive or self.broker.session is not self or not self.broker.up or not self.broker.world.wlan_up():
            if self.broker.session is self:
                self.broker.kill_connection()
            self.alive = False
            raise OSError(104)  # ECONNRESET

    def publish(self, topic, msg, retain=False, qos=0):
        self._check()
        if isinstance(msg, str):
            msg = msg.encode()
        self.broker._deliver(topic, msg, retain, qos)
        if qos == 1 and self.broker.drop_puback_next:
            self.broker.drop_puback_next -= 1
            self.broker.kill_connection()
            self.alive = False
            raise OSError(104)  # delivered, but the PUBACK never came

    def ping(self):
        self._check()
        self.pings += 1

    def disconnect(self):
        if self.broker.session is self:
            self.broker.session = None  # clean disconnect: no will
        self.alive = False


class FakeResponse:
    def __init__(self, status, body=b"", headers=None):
        self.status_code = status
        self.content = body if isinstance(body, bytes) else body.encode()
        self.headers = headers or {}
        self.closed = False

    @property
    def text(self):
        return self.content.decode()

    def json(self):
        return json.loads(self.content)

    def close(self):
        self.closed = True


class FakeHttp:
    """requests.post's surface: records requests; answers 201 {accepted, rejected: []} unless scripted.

    script: answers to give in order (an int status, a (status, body, headers) tuple, or an exception).
    """

    def __init__(self, world):
        self.world = world
        self.requests = []  # (url, body bytes, headers) of requests that reached the server
        self.delivered = []  # bodies the server took (2xx)
        self.script = []
        self.responses = []

    def post(self, url, data=None, headers=None, timeout=None):
        if not self.world.wlan_up():
            raise OSError(113)
        answer = self.script.pop(0) if self.script else None
        if isinstance(answer, Exception):
            raise answer
        self.requests.append((url, bytes(data), dict(headers or {})))
        if answer is None:
            body = json.loads(data)
            n = len(body) if isinstance(body, list) else len(body.get("updates", [])) if isinstance(body, dict) and "updates" in body else 1
            answer = (201, json.dumps({"accepted": n, "rejected": []}), {})
        if isinstance(answer, int):
            answer = (answer, json.dumps({"error": {"code": "x", "message": "status %d" % answer}}), {})
        status, body, hdrs = answer
        if 200 <= status < 300:
            self.delivered.append(bytes(data))
        r = FakeResponse(status, body, hdrs)
        self.responses.append(r)
        return r


class FakeSocket:
    def __init__(self):
        self.timeout = None

    def settimeout(self, t):
        self.timeout = t

    def close(self):
        pass


class FakeWLAN:
    def __init__(self, world, join_ms=1500):
        self.world = world
        self.join_ms = join_ms
        self._active = False
        self._joining_at = None
        self._connected = False
        self.connect_calls = 0

    def active(self, v=None):
        if v is not None:
            self._active = v
        return self._active

    def connect(self, ssid, password):
        self.connect_calls += 1
        self._joining_at = self.world.time.elapsed_ms
        self._creds = (ssid, password)

    def disconnect(self):
        self._connected = False
        self._joining_at = None

    def isconnected(self):
        w = self.world
        if not w.ap_up:
            self._connected = False
            return False
        if not self._connected and self._joining_at is not None and self._active:
            if w.time.elapsed_ms - self._joining_at >= self.join_ms and self._creds == w.ap_creds:
                self._connected = True
                self._joining_at = None
        return self._connected


class FakePin:
    OUT = 1
    IN = 0

    def __init__(self, pin, mode=None):
        self.pin = pin
        self.mode = mode
        self.v = 0
        self.toggles = 0

    def toggle(self):
        self.v ^= 1
        self.toggles += 1

    def value(self, v=None):
        if v is not None:
            self.v = v
        return self.v


class FakeADC:
    def __init__(self, ch, world):
        self.ch = ch
        self.world = world

    def read_u16(self):
        return self.world.adc_u16


class FakeWDT:
    def __init__(self, timeout):
        self.timeout = timeout
        self.feeds = 0

    def feed(self):
        self.feeds += 1


class FakeDHT22:
    def __init__(self, world, pin):
        self.world = world
        self.pin = pin
        self._t = None
        self._h = None

    def measure(self):
        r = self.world.dht_next()
        if isinstance(r, Exception):
            raise r
        self._t, self._h = r

    def temperature(self):
        return self._t

    def humidity(self):
        return self._h


class World:
    """Simulated time, Wi-Fi access point, broker and peripherals; modules() gives the fake modules."""

    def __init__(self, start_ticks=0, epoch_2000=False, platform="rp2"):
        self.time = FakeTime(start_ticks, epoch_2000=epoch_2000)
        self.ap_up = True
        self.ap_creds = ("lab", "secret")
        self.broker = FakeBroker(self)
        self.http = FakeHttp(self)
        self.ntp = FakeNtp(self)
        self.wlan = FakeWLAN(self)
        self.adc_u16 = int(0.706 / 3.3 * 65535)
        self.dht_script = []  # values or exceptions to return in order; then a default ramp
        self.dht_reads = 0
        self.platform = platform
        self.wdts = []
        self.pins = []
        self.esp32_raw_f = 113.0
        self.resets = 0

    def wlan_up(self):
        return self.wlan.isconnected()

    def dht_next(self):
        self.dht_reads += 1
        if self.dht_script:
            return self.dht_script.pop(0)
        return (20.0 + (self.dht_reads % 10) / 10, 40.0 + (self.dht_reads % 5))

    def modules(self):
        world = self

        machine = types.ModuleType("machine")

        class Pin(FakePin):
            def __init__(self, pin, mode=None):
                FakePin.__init__(self, pin, mode)
                world.pins.append(self)

        def WDT(timeout=5000):
            w = FakeWDT(timeout)
            world.wdts.append(w)
            return w

        def reset():
            world.resets += 1

        machine.Pin = Pin
        machine.ADC = lambda ch: FakeADC(ch, world)
        machine.WDT = WDT
        machine.reset = reset

        network = types.ModuleType("network")
        network.STA_IF = 0
        network.WLAN = lambda _i: world.wlan

        dht = types.ModuleType("dht")
        dht.DHT22 = lambda pin: FakeDHT22(world, pin)

        client_cls = type("MQTTClient", (FakeMQTTClient,), {"broker": self.broker})

        m = {"platform": self.platform, "time": self.time, "machine": machine, "network": network,
             "dht": dht, "ntptime": self.ntp, "MQTTClient": client_cls, "os": os, "post": self.http.post}
        if self.platform == "esp32":
            esp32 = types.ModuleType("esp32")
            esp32.raw_temperature = lambda: world.esp32_raw_f
            m["esp32"] = esp32
        return m

    def run(self, app, seconds, step_ms=100):
        for _ in range(int(seconds * 1000 // step_ms)):
            app.step()
            self.time.advance(step_ms)
