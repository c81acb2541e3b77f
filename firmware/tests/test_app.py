"""The whole firmware (main.build with fake modules) over simulated time: publishing, batching,
broker and Wi-Fi loss, buffering while offline, QoS 1 resends, clock handling, watchdog, TLS."""
import json
import types
import unittest

import fakes  # noqa: F401 - puts firmware/ on the path
from fakes import World
import main
from shape import readings_of

DEVICE = "greenhouse-1"
TOKEN = "tok-123"


def cfg(**over):
    c = dict(WIFI_SSID="lab", WIFI_PASSWORD="secret", WIFI_TIMEOUT_S=10, BROKER_HOST="10.0.0.2", BROKER_PORT=1883,
             USE_TLS=False, CA_FILE="ca.der", KEEPALIVE_S=60, DEVICE_ID=DEVICE, TOKEN=TOKEN, SAMPLE_S=5, SEND_S=0,
             BUFFER_SIZE=500, MAX_BATCH=50, DHT22_PIN=None, USE_DHT22=True, USE_INTERNAL_TEMP=True,
             NTP_HOST="ntp.lab", NTP_RESYNC_S=3600, WATCHDOG_S=8, LED=True, TRANSPORT="mqtt", SEND_MODE="batch", BUFFER_FILE=None, BUFFER_SAVE_S=300,
             HTTP_URL="http://10.0.0.2:1880", HTTP_API="native", STREAM_ID="greenhouse",
             THINGSPEAK_FIELDS=("temperature", "humidity", "chip_temperature"), HTTP_TIMEOUT_S=10)
    c.update(over)
    return types.SimpleNamespace(**c)


class Rig:
    def __init__(self, platform="rp2", **over):
        self.w = World(platform=platform)
        self.w.broker.accounts = {DEVICE: TOKEN}
        self.log = []
        self.app, self.board = main.build(cfg(**over), self.w.modules(), self.log.append)

    def run(self, seconds):
        self.w.run(self.app, seconds)

    def readings(self):
        """All telemetry readings the broker got, each checked against the normaliser's shape."""
        out = []
        for t, p in self.w.broker.telemetry():
            out.extend(readings_of(t, p, DEVICE))
        return out


class PublishingTest(unittest.TestCase):
    def test_each_sample_is_one_json_object_when_send_s_is_0(self):
        r = Rig()
        r.run(60)
        tel = r.w.broker.telemetry()
        self.assertGreaterEqual(len(tel), 11)
        for _t, p in tel:
            self.assertIsInstance(json.loads(p), dict)
        got = r.readings()
        self.assertEqual(set(got[0]), {"ts", "temperature", "humidity", "chip_temperature"})
        ts = [o["ts"] for o in got]
        self.assertEqual(ts, sorted(ts))
        self.assertTrue(all(b - a == 5000 for a, b in zip(ts, ts[1:])), ts)
        self.assertEqual(r.app.ring.dropped, 0)

    def test_login_last_will_and_online_status(self):
        r = Rig()
        r.run(10)
        b = r.w.broker
        c = b.session
        self.assertEqual((c.client_id, c.user, c.password, c.server, c.port), (DEVICE, DEVICE, TOKEN, "10.0.0.2", 1883))
        self.assertEqual(c.will, ("devices/greenhouse-1/status", b"offline", True, 1))
        self.assertEqual(b.retained["devices/greenhouse-1/status"], b"online")
        self.assertEqual(c.sock.timeout, 10)
        self.assertTrue(all(q == 1 for (_t, _p, _r, q) in b.received))
        self.assertTrue(all(t.startswith("devices/greenhouse-1/") for (t, _p, _r, _q) in b.received))
        self.assertEqual(r.w.ntp.host, "ntp.lab")

    def test_batches_every_send_s_as_arrays_in_order(self):
        r = Rig(SEND_S=60)
        r.run(185)
        tel = r.w.broker.telemetry()
        sizes = [len(json.loads(p)) for _t, p in tel]
        # First send goes out as soon as the clock is set, then one array per minute of 12 readings.
        self.assertEqual(sizes[1:], [12, 12, 12])
        got = r.readings()
        ts = [o["ts"] for o in got]
        self.assertEqual(ts, list(range(ts[0], ts[0] + 5000 * len(ts), 5000)))

    def test_a_backlog_is_split_into_max_batch_messages(self):
        r = Rig(SEND_S=60, MAX_BATCH=5)
        r.run(125)
        sizes = [len(json.loads(p)) for _t, p in r.w.broker.telemetry()]
        self.assertTrue(all(n <= 5 for n in sizes), sizes)
        self.assertEqual(sum(sizes), len(r.readings()))
        self.assertEqual(len(r.readings()), r.app.sent)

    def test_idle_connection_is_kept_alive_with_pings(self):
        r = Rig(SEND_S=600, KEEPALIVE_S=20)
        r.run(120)
        self.assertGreaterEqual(r.w.broker.session.pings, 4)

    def test_watchdog_is_fed_every_step_and_led_blinks_per_message(self):
        r = Rig()
        r.run(30)
        self.assertEqual(len(r.w.wdts), 1)
        self.assertEqual(r.w.wdts[0].timeout, 8000)
        self.assertGreaterEqual(r.w.wdts[0].feeds, 300)
        led = [p for p in r.w.pins if p.pin == "LED"][0]
        self.assertEqual(led.toggles, r.app.messages)

    def test_a_dht_error_skips_its_values_only(self):
        r = Rig()
        r.w.dht_script = [OSError("checksum")]
        r.run(12)
        got = r.readings()
        self.assertEqual(set(got[0]), {"ts", "chip_temperature"})
        self.assertIn("temperature", got[1])
        self.assertEqual(r.app.sampler.sensor_errors, 1)

    def test_esp32_build(self):
        r = Rig(platform="esp32", USE_DHT22=False)
        r.run(12)
        got = r.readings()
        self.assertEqual(got[0]["chip_temperature"], 45.0)
        self.assertEqual([p.pin for p in r.w.pins], [2])


class RecoveryTest(unittest.TestCase):
    def assert_complete(self, r, dropped=0):
        """Every reading sampled was delivered exactly once, in order (minus counted drops)."""
        got = r.readings()
        ts = [o["ts"] for o in got]
        self.assertEqual(ts, sorted(ts))
        self.assertEqual(len(set(ts)), len(ts), "duplicates")
        self.assertEqual(len(got) + r.app.ring.dropped + len(r.app.ring), r.app.sampler.samples)
        self.assertEqual(r.app.ring.dropped, dropped)
        return ts

    def test_broker_loss_buffers_then_sends_in_order_with_backoff(self):
        r = Rig()
        r.run(30)
        before = len(r.readings())
        r.w.broker.up = False
        r.w.broker.kill_connection()
        r.run(120)
        self.assertEqual(len(r.readings()), before)
        self.assertEqual(r.w.broker.retained["devices/greenhouse-1/status"], b"offline")  # the last will
        self.assertGreaterEqual(len(r.app.ring), 23)
        attempts = r.app.session.backoff.failures
        self.assertTrue(5 <= attempts <= 8, attempts)  # 1, 2, 4, 8, 16, 32, 60 s ... not every step
        r.w.broker.up = True
        r.run(90)
        self.assertEqual(len(r.app.ring), 0)
        ts = self.assert_complete(r)
        self.assertTrue(all(b - a == 5000 for a, b in zip(ts, ts[1:])), "a gap")
        self.assertEqual(r.w.broker.retained["devices/greenhouse-1/status"], b"online")
        self.assertEqual(r.app.session.connects, 2)

    def test_offline_buffer_is_bounded_and_keeps_the_newest(self):
        r = Rig(BUFFER_SIZE=10)
        r.run(12)
        r.w.broker.up = False
        r.w.broker.kill_connection()
        r.run(150)  # 30 samples while down, room for 10
        self.assertEqual(len(r.app.ring), 10)
        r.w.broker.up = True
        r.run(70)
        ts = self.assert_complete(r, dropped=r.app.ring.dropped)
        self.assertGreaterEqual(r.app.ring.dropped, 19)
        gap = max(b - a for a, b in zip(ts, ts[1:]))
        self.assertGreaterEqual(gap, 20 * 5000)  # the dropped ones are the oldest of the outage
        self.assertEqual(r.app.stats()["dropped"], r.app.ring.dropped)

    def test_lost_puback_resends_that_message_only(self):
        r = Rig(SEND_S=30)
        r.run(40)
        r.w.broker.drop_puback_next = 1
        r.run(60)
        msgs = [p for _t, p in r.w.broker.telemetry()]
        dups = [p for i, p in enumerate(msgs) if p in msgs[:i]]
        self.assertEqual(len(dups), 1)  # QoS 1: the broker got it, the device sent it again
        ts = [o["ts"] for o in r.readings()]
        once = sorted(set(ts))
        self.assertEqual(len(ts) - len(once), len(json.loads(dups[0])))
        self.assertEqual(len(once) + len(r.app.ring), r.app.sampler.samples)

    def test_wifi_loss_rejoins_and_resends(self):
        r = Rig()
        r.run(20)
        r.w.ap_up = False
        r.run(60)
        self.assertFalse(r.app.session.connected)
        r.w.ap_up = True
        r.run(120)
        self.assertEqual(len(r.app.ring), 0)
        self.assert_complete(r)
        self.assertGreaterEqual(r.app.wifi.joins, 2)

    def test_wrong_token_backs_off_without_crashing(self):
        r = Rig(TOKEN="wrong")
        r.run(120)
        self.assertEqual(r.w.broker.telemetry(), [])
        self.assertLessEqual(r.app.session.backoff.failures, 8)
        self.assertEqual(r.app.session.last_error.args, (4,))
        self.assertIn("mqtt connect failed (MQTTException(4)); retry in 60000 ms", r.log)
        r.w.broker.accounts[DEVICE] = "wrong"  # the operator fixes the registry side
        r.run(70)
        self.assertEqual(len(r.app.ring), 0)
        self.assert_complete(r, dropped=0)


class ClockHandlingTest(unittest.TestCase):
    def test_nothing_is_sent_before_ntp_and_early_readings_get_their_true_time(self):
        r = Rig()
        r.w.ntp.fail = True
        r.run(60)
        self.assertTrue(r.app.session.connected)
        self.assertEqual(r.w.broker.telemetry(), [])
        self.assertGreaterEqual(len(r.app.ring), 12)
        r.w.ntp.fail = False
        r.run(20)
        got = r.readings()
        self.assertGreaterEqual(len(got), 15)
        ts = [o["ts"] for o in got]
        self.assertEqual(ts, list(range(ts[0], ts[0] + 5000 * len(ts), 5000)))
        first_real = fakes.REAL_T0_MS  # the first sample was taken at the very start
        self.assertTrue(0 <= first_real - ts[0] < 1000, (first_real, ts[0]))

    def test_a_port_counting_from_2000_still_sends_1970_epoch_ms(self):
        r = Rig()
        r.w.time.epoch_2000 = True
        r.app, r.board = main.build(cfg(), r.w.modules(), r.log.append)
        r.run(12)
        ts = r.readings()[0]["ts"]
        self.assertTrue(0 <= fakes.REAL_T0_MS - ts < 1000, ts)

    def test_resyncs_periodically(self):
        r = Rig(NTP_RESYNC_S=60)
        r.run(200)
        self.assertGreaterEqual(r.w.ntp.calls, 3)


class MainTest(unittest.TestCase):
    def test_invalid_device_id_is_refused_at_start(self):
        with self.assertRaises(ValueError):
            main.build(cfg(DEVICE_ID="bad/id"), World().modules())

    def test_tls_passes_an_ssl_context_with_the_ca(self):
        class Ctx:
            def __init__(self, proto):
                self.proto = proto

            def load_verify_locations(self, cadata=None):
                self.cadata = cadata
        ssl = types.SimpleNamespace(SSLContext=Ctx, PROTOCOL_TLS_CLIENT=16, CERT_REQUIRED=2)
        import os
        import tempfile
        with tempfile.TemporaryDirectory() as d:
            ca = os.path.join(d, "ca.der")
            with open(ca, "wb") as f:
                f.write(b"\x30\x82CA")
            w = World()
            m = w.modules()
            m["ssl"] = ssl
            app, _b = main.build(cfg(USE_TLS=True, CA_FILE=ca, BROKER_PORT=8883), m)
            client = app.session.factory()
        self.assertEqual(client.port, 8883)
        self.assertEqual(client.ssl.cadata, b"\x30\x82CA")
        self.assertEqual(client.ssl.verify_mode, 2)

    def test_shipped_config_is_complete(self):
        import config
        needed = set(vars(cfg()))
        self.assertEqual(needed - set(vars(config)), set())
        self.assertTrue(main.valid_device_id(config.DEVICE_ID))


if __name__ == "__main__":
    unittest.main()
