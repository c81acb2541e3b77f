"""Readings as Thingwire's normaliser reads them (README "Topics and payloads").

One reading is a flat JSON object {"ts": <epoch ms>, "<metric>": <number|bool>, ...}; a batch is a
JSON array of them, published on devices/{id}/telemetry. Values the normaliser would reject
(NaN, infinities, names starting with "_" or with control characters, over 128 characters, the
reserved keys ts/device/tags/metrics) are left out here and counted, so one bad value never costs
the whole reading.
"""
import json

RESERVED = ("ts", "device", "tags", "metrics")
MAX_NAME = 128
INF = float("inf")


def valid_name(name):
    if not isinstance(name, str) or not name or len(name) > MAX_NAME or name[0] == "_":
        return False
    if name in RESERVED:
        return False
    for c in name:
        o = ord(c)
        if o < 32 or o == 127:
            return False
    return True


def clean_value(v):
    """The value as sent, or None when it cannot be a metric."""
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)):
        if v != v or v == INF or v == -INF:  # NaN, infinities
            return None
        return v
    return None


def clean_metrics(values):
    """(metrics dict, number of values left out)."""
    out = {}
    bad = 0
    for name in values:
        v = values[name]
        if v is None:
            continue
        cv = clean_value(v)
        if cv is None or not valid_name(name):
            bad += 1
            continue
        out[name] = cv
    return out, bad


def reading_object(ts_ms, metrics):
    o = {"ts": int(ts_ms)}
    for k in metrics:
        o[k] = metrics[k]
    return o


def encode(readings, as_array=True):
    """JSON bytes of readings: an array (a batch), or one object when as_array is False and there is one."""
    if len(readings) == 1 and not as_array:
        return json.dumps(readings[0]).encode()
    return json.dumps(readings).encode()


def telemetry_topic(device_id):
    return "devices/%s/telemetry" % device_id


def status_topic(device_id):
    return "devices/%s/status" % device_id


def valid_device_id(device_id):
    if not isinstance(device_id, str) or not 1 <= len(device_id) <= 128:
        return False
    if not (device_id[0].isalpha() or device_id[0].isdigit()) or ord(device_id[0]) > 127:
        return False
    for c in device_id:
        if not (("a" <= c <= "z") or ("A" <= c <= "Z") or ("0" <= c <= "9") or c in "._:-"):
            return False
    return True
