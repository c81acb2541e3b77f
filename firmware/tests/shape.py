"""What Thingwire's normaliser (nodes/lib/normalise.ts) accepts on devices/{id}/telemetry, for the
firmware's own payloads: an object {"ts": ms, metric: number|bool, ...} or an array of them,
strict JSON (no NaN), ts in milliseconds inside 2000..2100, names 1-128 chars, no control
characters, not starting with "_", at least one metric. (test/firmware.test.ts also feeds the
firmware's payloads through the real normaliser.)"""
import json
import math

MIN_TS = 946684800000  # 2000-01-01
MAX_TS = 4102444800000  # 2100-01-01


def _no_constants(c):
    raise ValueError("not JSON: %s" % c)


def readings_of(topic, payload, device):
    if topic != "devices/%s/telemetry" % device:
        raise AssertionError("topic %r is not devices/%s/telemetry" % (topic, device))
    v = json.loads(payload.decode("utf-8"), parse_constant=_no_constants)
    items = v if isinstance(v, list) else [v]
    if isinstance(v, list) and not 1 <= len(v) <= 10000:
        raise AssertionError("batch of %d" % len(v))
    for o in items:
        check_reading(o)
    return items


def check_reading(o):
    if not isinstance(o, dict):
        raise AssertionError("reading is not an object: %r" % (o,))
    ts = o.get("ts")
    if not isinstance(ts, int) or isinstance(ts, bool) or not MIN_TS <= ts < MAX_TS:
        raise AssertionError("ts %r is not epoch ms in 2000..2100" % (ts,))
    if "device" in o or "tags" in o or "metrics" in o:
        raise AssertionError("unexpected reserved key in %r" % (o,))
    n = 0
    for k, v in o.items():
        if k == "ts":
            continue
        if not 1 <= len(k) <= 128 or k[0] == "_" or any(ord(c) < 32 or ord(c) == 127 for c in k):
            raise AssertionError("metric name %r not allowed" % k)
        if isinstance(v, bool):
            n += 1
        elif isinstance(v, (int, float)) and math.isfinite(v):
            n += 1
        else:
            raise AssertionError("metric %r has value %r" % (k, v))
    if n == 0:
        raise AssertionError("reading without metrics: %r" % (o,))
