"""What differs between Raspberry Pi Pico W (port rp2) and ESP32: LED, internal temperature, watchdog,
default DHT22 pin, time epoch. Everything else in thingwire/ is board-independent.

The MicroPython modules are passed in (machine, and esp32 where there is one) so the host tests
can hand in fakes.
"""

EPOCH_2000_S = 946684800

PROFILES = {
    # Pico W: the LED hangs off the Wi-Fi chip ("LED" pin name); WDT at most 8388 ms.
    "rp2": {"led": "LED", "dht_pin": 15, "wdt_max_ms": 8388},
    # ESP32 DevKit: LED on GPIO 2 on most boards; the WDT takes long timeouts.
    "esp32": {"led": 2, "dht_pin": 4, "wdt_max_ms": 60000},
}


class Board:
    def __init__(self, platform, machine, esp32=None, gmtime=None):
        if platform not in PROFILES:
            raise ValueError("unsupported board %r (rp2 = Pico W, esp32)" % platform)
        self.platform = platform
        self.machine = machine
        self.esp32 = esp32
        p = PROFILES[platform]
        self.led_pin = p["led"]
        self.default_dht_pin = p["dht_pin"]
        self.wdt_max_ms = p["wdt_max_ms"]
        self._gmtime = gmtime
        self._adc = None

    def epoch_offset_s(self):
        """0 when time.time() counts from 1970; 946684800 on ports (older firmware) counting from 2000."""
        if self._gmtime is not None and self._gmtime(0)[0] == 2000:
            return EPOCH_2000_S
        return 0

    def led(self):
        return self.machine.Pin(self.led_pin, self.machine.Pin.OUT)

    def pin(self, n):
        return self.machine.Pin(n)

    def watchdog(self, timeout_ms):
        """A started hardware watchdog (cannot be stopped): feed() it faster than timeout_ms."""
        return self.machine.WDT(timeout=min(int(timeout_ms), self.wdt_max_ms))

    def internal_temp_c(self):
        if self.platform == "rp2":
            # RP2040 datasheet 4.9.5: ADC input 4; T = 27 - (V - 0.706) / 0.001721.
            if self._adc is None:
                self._adc = self.machine.ADC(4)
            v = self._adc.read_u16() * 3.3 / 65535
            return 27 - (v - 0.706) / 0.001721
        e = self.esp32
        if e is None:
            raise OSError("esp32 module missing")
        if hasattr(e, "mcu_temperature"):  # S2/S3/C3 (and newer firmware): degrees Celsius
            return float(e.mcu_temperature())
        return (e.raw_temperature() - 32) / 1.8  # original ESP32: Fahrenheit

    def reset(self):
        self.machine.reset()
