"""The HTTP transport (native entries and ThingSpeak bulk updates), edge summaries, and the flash copy of
the unsent queue, through main.build with fake modules over simulated time."""
import calendar
import datetime
import json
import os
import tempfile
import unittest

import fakes  # noqa: F401 - puts firmware/ on the path
import main
from fakes import World
from shape import check_reading
from test_app import DEVICE, TOKEN, cfg
from thingwire.http import iso8601


class HttpRig:
    def __init__(self, **over):
        self.w = World()
        self.log = []
        c = dict(TRANSPORT="http", SEND_S=10)
        c.update(over)
        self.app, self.board = main.build(cfg(**c), self.w.modules(), self.log.append)

    def run(self, seconds):
        self.w.run(self.app, seconds)

    def delivered(self):
        """Readings of the bodies the server took (2xx), in order, each checked against the normaliser's shape."""
        out = []
        for body in self.w.http.delivered:
            v = json.loads(body)
            items = v if isinstance(v, list) else [v]
            for o in items:
                check_reading(o)
            out.extend(items)
        return out


class HttpNativeTest(unittest.TestCase):
    def test_posts_batches_to_the_stream_entries_with_the_token(self):
        r = HttpRig()
        r.run(61)
        url, body, headers = r.w.http.requests[0]
        self.assertEqual(url, "http://10.0.0.2:1880/api/v1/streams/greenhouse/entries")
        self.assertEqual(headers["Authorization"], "Bearer " + TOKEN)
        self.assertEqual(headers["Content-Type"], "application/json")
        self.assertIsInstance(json.loads(body), list)
        got = r.delivered()
        self.assertGreaterEqual(len(got), 10)
        ts = [o["ts"] for o in got]
        self.assertEqual(ts, sorted(ts))
        self.assertEqual(len(set(ts)), len(ts))
        self.assertEqual(set(got[0]), {"ts", "temperature", "humidity", "chip_temperature"})
        self.assertEqual(r.app.stats()["queued"], len(list(r.app.ring.items())))
        self.assertTrue(all(resp.closed for resp in r.w.http.responses))

    def test_server_errors_and_network_loss_keep_readings_until_delivered(self):
        r = HttpRig()
        r.w.http.script = [503, OSError(104), (429, "{}", {"Retry-After": "20"})]
        r.run(15)
        self.assertEqual(r.w.http.delivered, [])
        self.assertGreater(r.app.stats()["queued"], 0)
        r.w.ap_up = False
        r.run(30)
        r.w.ap_up = True
        r.run(120)
        got = r.delivered()
        samples = r.app.stats()["samples"]
        self.assertEqual(r.app.stats()["queued"] + len(got), samples)
        self.assertEqual(r.app.stats()["dropped"], 0)
        ts = [o["ts"] for o in got]
        self.assertEqual(ts, sorted(ts))
        self.assertEqual(len(set(ts)), len(ts))  # nothing sent twice: failures happened before the server took it
        self.assertGreaterEqual(r.app.session.losses, 3)
        self.assertTrue(any("retry in" in line for line in r.log))

    def test_retry_after_is_honoured(self):
        r = HttpRig(SEND_S=0)
        r.w.http.script = [(429, "{}", {"Retry-After": "30"})]
        r.run(2)
        first = len(r.w.http.requests)
        r.run(25)
        self.assertEqual(len(r.w.http.requests), first)  # quiet during the 30 s asked for
        r.run(10)
        self.assertGreater(len(r.w.http.requests), first)

    def test_wrong_token_is_kept_and_retried_not_dropped(self):
        r = HttpRig()
        r.w.http.script = [401, 401]
        r.run(100)
        self.assertEqual(r.app.stats()["rejected"], 0)
        got = r.delivered()
        self.assertEqual(len(got) + r.app.stats()["queued"], r.app.stats()["samples"])
        self.assertTrue(any("HTTP 401" in line for line in r.log))

    def test_a_payload_refused_for_good_is_dropped_and_counted(self):
        r = HttpRig(SEND_S=0)
        r.w.http.script = [400]
        r.run(11)
        s = r.app.stats()
        self.assertEqual(s["rejected"], 1)
        self.assertEqual(len(r.delivered()) + s["rejected"] + s["queued"], s["samples"])

    def test_entries_rejected_by_the_schema_are_counted(self):
        r = HttpRig(SEND_S=0)
        r.w.http.script = [(201, json.dumps({"accepted": 0, "rejected": [{"index": 0, "code": "invalid", "message": "temperature > 80"}]}), {})]
        r.run(6)
        self.assertEqual(r.app.stats()["rejected"], 1)
        self.assertTrue(any("invalid" in line for line in r.log))


class ThingSpeakTest(unittest.TestCase):
    def test_bulk_update_maps_metrics_to_fields_with_iso_times(self):
        r = HttpRig(HTTP_API="thingspeak", STREAM_ID="ch-7")
        r.run(61)
        url, body, headers = r.w.http.requests[0]
        self.assertEqual(url, "http://10.0.0.2:1880/channels/ch-7/bulk_update.json")
        b = json.loads(body)
        self.assertEqual(b["write_api_key"], "%s.%s" % (DEVICE, TOKEN))
        self.assertNotIn("Authorization", headers)
        u = b["updates"][0]
        self.assertEqual(set(u), {"created_at", "field1", "field2", "field3"})
        self.assertRegex(u["created_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertTrue(-40 < u["field1"] < 80 and 0 <= u["field2"] <= 100)

    def test_iso8601_matches_the_calendar(self):
        for ms in (0, 951782400000, 951868799999, 1709164800123, 4102444799999, 1764590400000, 86399999):
            want = datetime.datetime.fromtimestamp(ms // 1000, tz=datetime.timezone.utc)
            self.assertEqual(iso8601(ms), want.strftime("%Y-%m-%dT%H:%M:%S") + ".%03dZ" % (ms % 1000))
            back = calendar.timegm(want.timetuple()) * 1000 + ms % 1000
            self.assertEqual(back, ms)

    def test_an_old_urequests_without_timeout_still_posts(self):
        r = HttpRig(SEND_S=0)
        calls = []
        real = r.w.http.post

        def old_post(url, data=None, headers=None):
            calls.append(url)
            return real(url, data=data, headers=headers)
        r.app.session.post = old_post
        r.run(11)
        self.assertGreaterEqual(len(calls), 2)
        self.assertEqual(len(r.delivered()), r.app.stats()["samples"])

    def test_bad_settings_are_refused_at_start(self):
        with self.assertRaises(ValueError):
            main.build(cfg(TRANSPORT="http", HTTP_API="influx"), World().modules())
        with self.assertRaises(ValueError):
            main.build(cfg(TRANSPORT="carrier-pigeon"), World().modules())
        with self.assertRaises(ValueError):
            main.build(cfg(TRANSPORT="http", STREAM_ID=""), World().modules())


class SummaryTest(unittest.TestCase):
    def test_one_summary_per_window_with_mean_min_max_and_count(self):
        w = World()
        w.broker.accounts = {DEVICE: TOKEN}
        w.dht_script = [(20.0 + i, 40.0) for i in range(12)]  # 12 samples a minute at SAMPLE_S 5
        app, _b = main.build(cfg(SEND_S=60, SEND_MODE="summary", USE_INTERNAL_TEMP=False), w.modules())
        w.run(app, 130)
        got = w.broker.readings()
        self.assertEqual(len(got), 2)
        first = got[0]
        check_reading(first)
        self.assertEqual(first["samples"], 12)
        self.assertAlmostEqual(first["temperature"], 25.5)
        self.assertEqual(first["temperature_min"], 20.0)
        self.assertEqual(first["temperature_max"], 31.0)
        self.assertEqual(first["humidity"], 40.0)
        self.assertEqual(got[1]["ts"] - first["ts"], 60000)

    def test_summary_needs_a_window(self):
        with self.assertRaises(ValueError):
            main.build(cfg(SEND_S=0, SEND_MODE="summary"), World().modules())
        with self.assertRaises(ValueError):
            main.build(cfg(SEND_MODE="average"), World().modules())


class FlashBufferTest(unittest.TestCase):
    def test_unsent_readings_survive_a_reset_and_the_copy_goes_once_sent(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "buffer.json")
            w = World()
            w.broker.accounts = {DEVICE: TOKEN}
            app, _b = main.build(cfg(BUFFER_FILE=path, BUFFER_SAVE_S=60), w.modules())
            w.run(app, 20)
            sent_before = [o["ts"] for o in w.broker.readings()]
            w.broker.up = False
            w.run(app, 200)
            self.assertTrue(os.path.exists(path))
            self.assertGreaterEqual(app.flash.saves, 3)
            with open(path) as f:
                saved = [json.loads(line)[0] for line in f if line.strip()]
            self.assertGreater(len(saved), 20)
            # Power cut: a new board boots with the broker back; what was saved goes out first.
            w2 = World()
            w2.broker.accounts = {DEVICE: TOKEN}
            app2, _b2 = main.build(cfg(BUFFER_FILE=path, BUFFER_SAVE_S=60), w2.modules())
            self.assertEqual(len(app2.ring), len(saved))
            w2.run(app2, 30)
            got = [o["ts"] for o in w2.broker.readings()]
            self.assertEqual(got[:len(saved)], saved)
            self.assertTrue(set(sent_before).isdisjoint(saved))
            self.assertFalse(os.path.exists(path))

    def test_a_torn_or_foreign_file_loses_only_its_bad_lines(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "buffer.json")
            with open(path, "w") as f:
                f.write(json.dumps([1764590400000, {"temperature": 21.5}]) + "\n")
                f.write("[1764590405000, {\"temperat")
            w = World()
            app, _b = main.build(cfg(BUFFER_FILE=path), w.modules())
            self.assertEqual([e[0] for e in app.ring.items()], [1764590400000])
            self.assertEqual(app.flash.errors, 1)


if __name__ == "__main__":
    unittest.main()
