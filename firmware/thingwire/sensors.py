"""The sensor interface: any object with a `name` and read() -> {metric: value}.

read() raises (OSError, typically) when the sensor did not answer; the sampler counts it and
carries on with the other sensors. Add a sensor by writing a class with these two members and
listing it in main.py's make_sensors().
"""


class Sensor:
    name = "sensor"

    def read(self):
        raise NotImplementedError


class DHT22Sensor(Sensor):
    """A DHT22 (AM2302) on one GPIO: temperature (degC) and humidity (%RH), at most every 2 s."""

    name = "dht22"

    def __init__(self, dht_module, pin):
        self._d = dht_module.DHT22(pin)

    def read(self):
        self._d.measure()
        t = self._d.temperature()
        h = self._d.humidity()
        # The DHT22's range; a value outside it is a bad read (loose wire), not weather.
        if not (-40 <= t <= 80) or not (0 <= h <= 100):
            raise OSError("dht22 reading out of range: %r degC %r %%" % (t, h))
        return {"temperature": round(t, 1), "humidity": round(h, 1)}


class InternalTempSensor(Sensor):
    """The microcontroller's own temperature sensor, through the board (board.py); rough (+-2..5 degC)."""

    name = "internal"

    def __init__(self, board):
        self._board = board

    def read(self):
        return {"chip_temperature": round(self._board.internal_temp_c(), 1)}
