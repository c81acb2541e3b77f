"""The firmware's parts alone: ring buffer, clock, payload building, backoff, sensors, board."""
import json
import unittest

import fakes  # noqa: F401 - puts firmware/ on the path
from fakes import FakeTime, TICKS_PERIOD, World
from thingwire.backoff import Backoff
from thingwire.board import Board
from thingwire.clock import Clock, EPOCH_2000_S
from thingwire.payload import clean_metrics, encode, reading_object, valid_device_id, valid_name
from thingwire.ring import Ring
from thingwire.sampler import Sampler
from thingwire.sensors import DHT22Sensor, InternalTempSensor


class RingTest(unittest.TestCase):
    def test_fifo_order_and_peek_without_removing(self):
        r = Ring(4)
        for i in range(3):
            r.push(i)
        self.assertEqual(r.peek(2), [0, 1])
        self.assertEqual(len(r), 3)
        r.drop_front(2)
        self.assertEqual(list(r.items()), [2])

    def test_full_ring_drops_oldest_and_counts(self):
        r = Ring(3)
        for i in range(8):
            r.push(i)
        self.assertEqual(list(r.items()), [5, 6, 7])
        self.assertEqual(r.dropped, 5)
        self.assertEqual(len(r), 3)

    def test_wraps_around_many_times_in_order(self):
        r = Ring(5)
        out = []
        nxt = 0
        for round_ in range(50):
            for _ in range(round_ % 4 + 1):
                r.push(nxt)
                nxt += 1
            got = r.peek(3)
            r.drop_front(len(got))
            out.extend(got)
        out.extend(r.items())
        self.assertEqual(r.dropped + len(out), nxt)
        self.assertEqual(out, sorted(out))
        self.assertEqual(len(set(out)), len(out))

    def test_drop_front_and_peek_beyond_length_are_clamped(self):
        r = Ring(2)
        r.push("a")
        self.assertEqual(r.peek(10), ["a"])
        r.drop_front(10)
        self.assertEqual(len(r), 0)
        self.assertEqual(r.peek(1), [])

    def test_capacity_must_be_positive(self):
        with self.assertRaises(ValueError):
            Ring(0)


class ClockTest(unittest.TestCase):
    def make(self, start_ticks=0, epoch_2000=False, settime=True):
        t = FakeTime(start_ticks, epoch_2000=epoch_2000)
        c = Clock(t.ticks_ms, t.ticks_diff, t.time, t.set_rtc_from_real if settime else None,
                  EPOCH_2000_S if epoch_2000 else 0)
        return t, c

    def test_no_time_before_sync(self):
        _t, c = self.make()
        self.assertFalse(c.synced)
        self.assertIsNone(c.epoch_ms())

    def test_sync_gives_epoch_ms_within_a_second_and_ms_resolution_after(self):
        t, c = self.make()
        t.advance(12345)
        self.assertTrue(c.sync())
        now = c.epoch_ms()
        self.assertTrue(0 <= t.real_ms() - now < 1000, (t.real_ms(), now))
        t.advance(250)
        self.assertEqual(c.epoch_ms() - now, 250)

    def test_ports_counting_from_2000_get_the_offset(self):
        t, c = self.make(epoch_2000=True)
        self.assertTrue(c.sync())
        self.assertTrue(0 <= t.real_ms() - c.epoch_ms() < 1000)

    def test_ticks_wraparound_keeps_time_monotonic(self):
        t, c = self.make(start_ticks=TICKS_PERIOD - 3000)
        c.sync()
        before = c.epoch_ms()
        t.advance(5000)  # ticks wrap to 2000
        self.assertLess(t.ticks_ms(), 3000)
        self.assertEqual(c.epoch_ms() - before, 5000)

    def test_earlier_ticks_map_to_earlier_times(self):
        t, c = self.make()
        early = t.ticks_ms()
        t.advance(7000)
        c.sync()
        self.assertEqual(c.epoch_ms() - c.epoch_ms(early), 7000)

    def test_unset_rtc_is_not_a_sync(self):
        _t, c = self.make(settime=False)  # RTC still at its power-on value (1970 or 2000)
        self.assertFalse(c.sync())
        self.assertFalse(c.synced)
        self.assertEqual(c.sync_failures, 1)

    def test_ntp_error_is_counted_not_raised(self):
        t = FakeTime()

        def boom():
            raise OSError(110)
        c = Clock(t.ticks_ms, t.ticks_diff, t.time, boom)
        self.assertFalse(c.sync())
        self.assertEqual(c.sync_failures, 1)


class PayloadTest(unittest.TestCase):
    def test_clean_metrics_keeps_numbers_and_bools_and_counts_the_rest(self):
        m, bad = clean_metrics({
            "temperature": 21.5, "door": True, "count": 3, "skip": None,
            "nan": float("nan"), "inf": float("inf"), "_hidden": 1, "ts": 5, "device": 1,
            "bad\nname": 1, "x" * 129: 1, "text": "hello", "nested": {"a": 1},
        })
        self.assertEqual(m, {"temperature": 21.5, "door": True, "count": 3})
        self.assertEqual(bad, 9)

    def test_unicode_names_are_fine(self):
        self.assertTrue(valid_name("température"))
        self.assertFalse(valid_name(""))

    def test_reading_object_and_encoding(self):
        o = reading_object(1764590400000, {"temperature": 21.5, "humidity": 40})
        self.assertEqual(json.loads(encode([o], as_array=False)), {"ts": 1764590400000, "temperature": 21.5, "humidity": 40})
        self.assertEqual(json.loads(encode([o])), [o])
        self.assertEqual(json.loads(encode([o, o])), [o, o])

    def test_device_ids(self):
        for ok in ("greenhouse-1", "a", "0.b_c:d-e", "x" * 128):
            self.assertTrue(valid_device_id(ok), ok)
        for bad in ("", "-a", "a/b", "a b", "x" * 129, "é", None, "a#"):
            self.assertFalse(valid_device_id(bad), bad)


class BackoffTest(unittest.TestCase):
    def test_doubles_to_the_cap_and_resets(self):
        b = Backoff(FakeTime.ticks_diff, 1000, 8000)
        self.assertTrue(b.ready(0))
        self.assertEqual([b.fail(0) for _ in range(6)], [1000, 2000, 4000, 8000, 8000, 8000])
        self.assertFalse(b.ready(7999))
        self.assertTrue(b.ready(8000))
        b.ok()
        self.assertEqual(b.fail(0), 1000)


class SamplerTest(unittest.TestCase):
    def setUp(self):
        self.t = FakeTime()
        self.clock = Clock(self.t.ticks_ms, self.t.ticks_diff, self.t.time, self.t.set_rtc_from_real)

    def test_a_failing_sensor_does_not_stop_the_others(self):
        class Bad:
            name = "bad"

            def read(self):
                raise OSError("timeout")

        class Good:
            name = "good"

            def read(self):
                return {"a": 1, "b": float("nan")}
        s = Sampler([Bad(), Good()], Ring(5), self.clock)
        self.assertTrue(s.sample())
        self.assertEqual(s.sensor_errors, 1)
        self.assertEqual(s.invalid_values, 1)
        self.assertEqual(list(s.ring.items())[0][2], {"a": 1})

    def test_nothing_read_queues_nothing(self):
        class Bad:
            def read(self):
                raise OSError("timeout")
        s = Sampler([Bad()], Ring(5), self.clock)
        self.assertFalse(s.sample())
        self.assertEqual(len(s.ring), 0)

    def test_readings_before_the_clock_are_stamped_with_their_own_time(self):
        class One:
            def read(self):
                return {"v": 1}
        s = Sampler([One()], Ring(10), self.clock)
        truth = []
        for _ in range(3):
            s.sample()
            truth.append(self.t.real_ms())
            self.t.advance(5000)
        self.assertFalse(s.ready())
        self.assertEqual(s.fix_up(), 0)  # not synced: nothing to do
        self.assertTrue(self.clock.sync())
        self.assertEqual(s.fix_up(), 3)
        self.assertTrue(s.ready())
        ts = [e[0] for e in s.ring.items()]
        self.assertEqual([b - a for a, b in zip(ts, ts[1:])], [5000, 5000])
        for got, want in zip(ts, truth):
            self.assertTrue(0 <= want - got < 1000, (want, got))
        s.sample()
        self.assertIsNotNone(list(s.ring.items())[-1][0])  # stamped at once after sync


class SensorsAndBoardTest(unittest.TestCase):
    def test_dht22_reads_and_rejects_out_of_range(self):
        w = World()
        m = w.modules()
        w.dht_script = [(21.26, 40.04), (-60.0, 40.0), OSError("no answer")]
        s = DHT22Sensor(m["dht"], m["machine"].Pin(15))
        self.assertEqual(s.read(), {"temperature": 21.3, "humidity": 40.0})
        with self.assertRaises(OSError):
            s.read()
        with self.assertRaises(OSError):
            s.read()

    def test_pico_w_profile(self):
        w = World(platform="rp2")
        m = w.modules()
        b = Board("rp2", m["machine"])
        self.assertEqual(b.led().pin, "LED")
        self.assertEqual(b.default_dht_pin, 15)
        self.assertEqual(b.watchdog(30000).timeout, 8388)  # clamped to the RP2040 maximum
        w.adc_u16 = int(0.706 / 3.3 * 65535)
        self.assertAlmostEqual(b.internal_temp_c(), 27.0, delta=0.1)
        w.adc_u16 = int((0.706 - 0.001721 * 10) / 3.3 * 65535)
        self.assertAlmostEqual(InternalTempSensor(b).read()["chip_temperature"], 37.0, delta=0.2)

    def test_esp32_profile(self):
        w = World(platform="esp32")
        m = w.modules()
        b = Board("esp32", m["machine"], m["esp32"])
        self.assertEqual(b.led().pin, 2)
        self.assertEqual(b.default_dht_pin, 4)
        self.assertEqual(b.watchdog(8000).timeout, 8000)
        w.esp32_raw_f = 113.0
        self.assertAlmostEqual(b.internal_temp_c(), 45.0)
        m["esp32"].mcu_temperature = lambda: 41  # S2/S3/C3 give Celsius
        self.assertEqual(b.internal_temp_c(), 41.0)

    def test_epoch_offset_and_unknown_board(self):
        self.assertEqual(Board("rp2", None, gmtime=lambda s: (2000, 1, 1)).epoch_offset_s(), EPOCH_2000_S)
        self.assertEqual(Board("rp2", None, gmtime=lambda s: (1970, 1, 1)).epoch_offset_s(), 0)
        with self.assertRaises(ValueError):
            Board("linux", None)


if __name__ == "__main__":
    unittest.main()
