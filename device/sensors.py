"""Sensor drivers, chosen by config.json's "sensors" list. Each driver has `name` and
`read()` -> dict of value name -> number.

    {"kind": "simulated", "name": "temperature", "mode": "sine"}   sine | counter
    {"kind": "esp32_temperature", "name": "chip_temperature"}
    {"kind": "dht22", "pin": 4, "prefix": ""}            -> temperature, humidity
    {"kind": "bme280", "sda": 21, "scl": 22, "address": 118, "prefix": ""}
                                                          -> temperature, humidity, pressure
    {"kind": "adc", "pin": 34, "name": "soil", "scale": 1.0, "offset": 0.0}
"""

import math
import struct

from fieldline import port


class Simulated:
    """A made-up value: a sine wave around `base`, or a counter (handy in tests)."""

    def __init__(self, name, mode="sine", base=20.0, amplitude=5.0, period_s=60.0):
        if mode not in ("sine", "counter"):
            raise ValueError("simulated sensor mode must be sine or counter, got %r" % (mode,))
        self.name = name
        self.mode = mode
        self.base = base
        self.amplitude = amplitude
        self.period_ms = period_s * 1000
        self.count = 0
        self._t0 = port.ticks_ms()

    def read(self):
        self.count += 1
        if self.mode == "counter":
            return {self.name: self.count}
        phase = port.ticks_diff(port.ticks_ms(), self._t0) / self.period_ms
        return {self.name: round(self.base + self.amplitude * math.sin(2 * math.pi * phase), 3)}


class Esp32Temperature:
    """The ESP32's own die temperature in degrees C (not the room's: it runs warm)."""

    def __init__(self, name="chip_temperature"):
        import esp32

        self.name = name
        self._esp32 = esp32

    def read(self):
        esp32 = self._esp32
        if hasattr(esp32, "mcu_temperature"):  # S2, S3, C3: already in degrees C
            return {self.name: esp32.mcu_temperature()}
        fahrenheit = esp32.raw_temperature()  # original ESP32: degrees F
        return {self.name: round((fahrenheit - 32) / 1.8, 1)}


class Dht22:
    def __init__(self, pin, prefix=""):
        import dht
        import machine

        self.name = prefix + "dht22"
        self._prefix = prefix
        self._dht = dht.DHT22(machine.Pin(pin))

    def read(self):
        self._dht.measure()  # OSError on a timeout: the caller logs it and goes on
        return {
            self._prefix + "temperature": self._dht.temperature(),
            self._prefix + "humidity": self._dht.humidity(),
        }


class Bme280:
    """Bosch BME280 over I2C, compensated with the datasheet's floating-point formulas."""

    def __init__(self, sda, scl, address=0x76, prefix=""):
        import machine

        self.name = prefix + "bme280"
        self._prefix = prefix
        self._address = address
        self._i2c = machine.SoftI2C(scl=machine.Pin(scl), sda=machine.Pin(sda))
        calib = self._i2c.readfrom_mem(address, 0x88, 26)
        self._t = struct.unpack("<Hhh", calib[0:6])
        self._p = struct.unpack("<Hhhhhhhhh", calib[6:24])
        h = self._i2c.readfrom_mem(address, 0xE1, 7)
        h4 = (h[3] << 4) | (h[4] & 0x0F)
        h5 = (h[5] << 4) | (h[4] >> 4)
        self._h = (
            calib[25],
            struct.unpack("<h", h[0:2])[0],
            h[2],
            h4 - 4096 if h4 > 2047 else h4,
            h5 - 4096 if h5 > 2047 else h5,
            h[6] - 256 if h[6] > 127 else h[6],
        )
        self._i2c.writeto_mem(address, 0xF2, b"\x01")  # humidity oversampling x1
        self._i2c.writeto_mem(address, 0xF4, b"\x27")  # temp, pressure x1; normal mode
        self._i2c.writeto_mem(address, 0xF5, b"\xa0")  # 1 s standby

    def read(self):
        d = self._i2c.readfrom_mem(self._address, 0xF7, 8)
        adc_p = (d[0] << 12) | (d[1] << 4) | (d[2] >> 4)
        adc_t = (d[3] << 12) | (d[4] << 4) | (d[5] >> 4)
        adc_h = (d[6] << 8) | d[7]
        t1, t2, t3 = self._t
        var1 = (adc_t / 16384.0 - t1 / 1024.0) * t2
        var2 = (adc_t / 131072.0 - t1 / 8192.0) ** 2 * t3
        t_fine = var1 + var2
        p1, p2, p3, p4, p5, p6, p7, p8, p9 = self._p
        var1 = t_fine / 2.0 - 64000.0
        var2 = var1 * var1 * p6 / 32768.0 + var1 * p5 * 2.0
        var2 = var2 / 4.0 + p4 * 65536.0
        var1 = (p3 * var1 * var1 / 524288.0 + p2 * var1) / 524288.0
        var1 = (1.0 + var1 / 32768.0) * p1
        pressure = 0.0
        if var1:
            pressure = (1048576.0 - adc_p - var2 / 4096.0) * 6250.0 / var1
            pressure += (
                p9 * pressure * pressure / 2147483648.0 + pressure * p8 / 32768.0 + p7
            ) / 16
        h1, h2, h3, h4, h5, h6 = self._h
        hum = t_fine - 76800.0
        hum = (adc_h - (h4 * 64.0 + h5 / 16384.0 * hum)) * (
            h2 / 65536.0 * (1.0 + h6 / 67108864.0 * hum * (1.0 + h3 / 67108864.0 * hum))
        )
        hum = min(100.0, max(0.0, hum * (1.0 - h1 * hum / 524288.0)))
        return {
            self._prefix + "temperature": round(t_fine / 5120.0, 2),
            self._prefix + "humidity": round(hum, 1),
            self._prefix + "pressure": round(pressure / 100.0, 2),  # hPa
        }


class Analog:
    """An ADC pin as value = raw (0..65535) * scale + offset."""

    def __init__(self, pin, name, scale=1.0, offset=0.0):
        import machine

        self.name = name
        self.scale = scale
        self.offset = offset
        self._adc = machine.ADC(machine.Pin(pin))

    def read(self):
        return {self.name: self._adc.read_u16() * self.scale + self.offset}


def make(spec):
    kind = spec.get("kind")
    if kind == "simulated":
        return Simulated(
            spec.get("name", "temperature"),
            spec.get("mode", "sine"),
            float(spec.get("base", 20.0)),
            float(spec.get("amplitude", 5.0)),
            float(spec.get("period_s", 60.0)),
        )
    if kind == "esp32_temperature":
        return Esp32Temperature(spec.get("name", "chip_temperature"))
    if kind == "dht22":
        return Dht22(int(spec["pin"]), spec.get("prefix", ""))
    if kind == "bme280":
        return Bme280(
            int(spec["sda"]),
            int(spec["scl"]),
            int(spec.get("address", 0x76)),
            spec.get("prefix", ""),
        )
    if kind == "adc":
        return Analog(
            int(spec["pin"]),
            spec.get("name", "analog"),
            float(spec.get("scale", 1.0)),
            float(spec.get("offset", 0.0)),
        )
    raise ValueError(
        "unknown sensor kind %r: use simulated, esp32_temperature, dht22, bme280 or adc" % (kind,)
    )


def from_config(specs, strict=False):
    """Drivers for the sensors that work on this board. At boot (not strict) a sensor that
    cannot start is reported and left out, so one missing part does not stop the device;
    a remote config (strict) is refused whole instead: the error names the sensor."""
    drivers = []
    for spec in specs:
        try:
            drivers.append(make(spec))
        except ValueError:
            raise
        except Exception as exc:  # noqa: BLE001 - ImportError on the unix port, OSError on I2C
            if strict:
                raise ValueError("sensor %r cannot start: %r" % (spec.get("kind"), exc))
            print("fieldline: sensor %r not available: %r" % (spec.get("kind"), exc))
    return drivers
