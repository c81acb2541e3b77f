# Thingwire firmware entry point: MicroPython runs main.py at boot.
# Edit config.py, not this file. See firmware/README.md.
import config
from thingwire.app import App
from thingwire.board import Board
from thingwire.clock import Clock
from thingwire.flash import FlashBuffer
from thingwire.http import HttpSession
from thingwire.payload import valid_device_id
from thingwire.ring import Ring
from thingwire.sampler import Sampler
from thingwire.sensors import DHT22Sensor, InternalTempSensor
from thingwire.session import Session
from thingwire.summary import Summariser
from thingwire.wifi import Wifi


def log(msg):
    print("[thingwire]", msg)


def make_sensors(cfg, board, dht):
    sensors = []
    if getattr(cfg, "USE_DHT22", True):
        pin = cfg.DHT22_PIN if getattr(cfg, "DHT22_PIN", None) is not None else board.default_dht_pin
        sensors.append(DHT22Sensor(dht, board.pin(pin)))
    if getattr(cfg, "USE_INTERNAL_TEMP", True):
        sensors.append(InternalTempSensor(board))
    return sensors


def mqtt_factory(cfg, MQTTClient, ssl_module=None):
    """A function that makes a fresh umqtt.simple client with the device's credentials."""
    kw = {}
    if getattr(cfg, "USE_TLS", False):
        if ssl_module is None:
            import ssl as ssl_module
        with open(cfg.CA_FILE, "rb") as f:
            ca = f.read()
        ctx = ssl_module.SSLContext(ssl_module.PROTOCOL_TLS_CLIENT)
        ctx.verify_mode = ssl_module.CERT_REQUIRED
        ctx.load_verify_locations(cadata=ca)
        kw["ssl"] = ctx

    def make():
        return MQTTClient(cfg.DEVICE_ID, cfg.BROKER_HOST, port=cfg.BROKER_PORT, user=cfg.DEVICE_ID,
                          password=cfg.TOKEN, keepalive=cfg.KEEPALIVE_S, **kw)
    return make


def build(cfg, m, log=log):
    """Wires the app from config and the MicroPython modules in `m` (a dict; fakes in the tests)."""
    if not valid_device_id(cfg.DEVICE_ID):
        raise ValueError("config.DEVICE_ID %r is not a valid device id" % cfg.DEVICE_ID)
    t = m["time"]
    board = Board(m["platform"], m["machine"], m.get("esp32"), getattr(t, "gmtime", None))
    ntp = m["ntptime"]
    if getattr(cfg, "NTP_HOST", None):
        ntp.host = cfg.NTP_HOST
    clock = Clock(t.ticks_ms, t.ticks_diff, t.time, ntp.settime, board.epoch_offset_s())
    ring = Ring(cfg.BUFFER_SIZE)
    mode = getattr(cfg, "SEND_MODE", "batch")
    if mode not in ("batch", "summary"):
        raise ValueError('config.SEND_MODE must be "batch" or "summary", not %r' % (mode,))
    summariser = None
    if mode == "summary":
        if not cfg.SEND_S:
            raise ValueError('config.SEND_MODE "summary" needs SEND_S > 0 (the summary window)')
        summariser = Summariser(ring, clock, cfg.SEND_S * 1000)
    flash = None
    if getattr(cfg, "BUFFER_FILE", None):
        flash = FlashBuffer(cfg.BUFFER_FILE, m["os"], log)
        n = flash.load(ring, t.ticks_ms())
        if n:
            log("%d unsent readings back from %s" % (n, cfg.BUFFER_FILE))
    sampler = Sampler(make_sensors(cfg, board, m["dht"]), ring, clock, log, sink=summariser)
    net = m["network"]
    wlan = net.WLAN(net.STA_IF)
    wifi = Wifi(wlan, cfg.WIFI_SSID, cfg.WIFI_PASSWORD, t.ticks_ms, t.ticks_diff,
                getattr(cfg, "WIFI_TIMEOUT_S", 20), log=log)
    transport = getattr(cfg, "TRANSPORT", "mqtt")
    if transport == "mqtt":
        session = Session(mqtt_factory(cfg, m["MQTTClient"], m.get("ssl")), cfg.DEVICE_ID, t.ticks_ms, t.ticks_diff,
                          cfg.KEEPALIVE_S, log=log)
    elif transport == "http":
        session = HttpSession(m["post"], cfg, t.ticks_ms, t.ticks_diff, log=log)
    else:
        raise ValueError('config.TRANSPORT must be "mqtt" or "http", not %r' % (transport,))
    wdt = board.watchdog(cfg.WATCHDOG_S * 1000) if getattr(cfg, "WATCHDOG_S", 0) else None
    led = board.led() if getattr(cfg, "LED", False) else None
    return App(cfg, clock, sampler, wifi, session, wdt, led, log, summariser, flash), board


def main():
    import sys
    import time
    import machine
    import network
    import dht
    import ntptime
    import os
    m = {"platform": sys.platform, "time": time, "machine": machine, "network": network, "dht": dht,
         "ntptime": ntptime, "os": os}
    if getattr(config, "TRANSPORT", "mqtt") == "http":
        try:
            import requests
        except ImportError:
            import urequests as requests  # older MicroPython releases
        m["post"] = requests.post
    else:
        from umqtt.simple import MQTTClient
        m["MQTTClient"] = MQTTClient
    try:
        import esp32
        m["esp32"] = esp32
    except ImportError:
        pass
    app, board = build(config, m)
    if getattr(config, "TRANSPORT", "mqtt") == "http":
        log("device %s on %s, HTTP %s" % (config.DEVICE_ID, board.platform, app.session.url))
    else:
        log("device %s on %s, broker %s:%d" % (config.DEVICE_ID, board.platform, config.BROKER_HOST, config.BROKER_PORT))
    try:
        app.run(time.sleep_ms)
    except Exception as e:  # noqa: BLE001 - anything unexpected: log, pause, start clean
        log("fatal: %r; resetting" % (e,))
        if app.flash is not None:
            app.flash.save(app.ring)
        time.sleep(5)
        board.reset()


if __name__ == "__main__":
    main()
