"""Prints, one JSON line each, the telemetry messages the firmware publishes in a simulated run
(single readings, batches, a backlog after an outage, readings stamped after a late NTP sync):
{"topic": ..., "payload": "<the exact payload text>"}. test/firmware.test.ts feeds them through
Thingwire's real normaliser (nodes/lib/normalise.ts)."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fakes import World  # noqa: E402
import main  # noqa: E402
from test_app import DEVICE, TOKEN, cfg  # noqa: E402


def scenario(**over):
    w = World(platform=over.pop("platform", "rp2"))
    w.broker.accounts = {DEVICE: TOKEN}
    app, _b = main.build(cfg(**over), w.modules(), lambda _m: None)
    return w, app


def main_():
    out = []
    w, app = scenario()  # every sample alone
    w.run(app, 20)
    out += w.broker.telemetry()
    w, app = scenario(SEND_S=30, MAX_BATCH=7, platform="esp32")  # batches, split
    w.ntp.fail = True
    w.run(app, 40)
    w.ntp.fail = False
    w.broker.up = False
    w.broker.kill_connection()
    w.run(app, 60)
    w.broker.up = True
    w.run(app, 90)
    out += w.broker.telemetry()
    for topic, payload in out:
        print(json.dumps({"topic": topic, "payload": payload.decode("utf-8")}))


if __name__ == "__main__":
    main_()
