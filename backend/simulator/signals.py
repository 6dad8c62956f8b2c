"""What a virtual sensor reads at a simulated moment: pure functions of simulated time
and a per-device random stream, so a test can check their shape without a clock.

- temperature: a diurnal curve (coolest near 05:00, warmest near 15:00) plus slowly
  wandering noise (AR(1): sensors and weather do not jump independently each sample);
- humidity: anti-correlated with temperature (warm air holds more water, so relative
  humidity falls as it warms), with its own noise, kept within 0-100 %;
- battery: discharges steadily (percent), replaced when it reaches 5 %;
- door: a contact that opens at random moments (Poisson, busier by day) and stays open
  for a random while.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

DAY_S = 86_400.0
WARMEST_HOUR = 15.0


def diurnal(sim_epoch_s: float, mean: float, amplitude: float) -> float:
    """The day's curve at this UTC moment: mean + amplitude at WARMEST_HOUR, - at night."""
    hour = (sim_epoch_s % DAY_S) / 3600.0
    return mean + amplitude * math.cos(2 * math.pi * (hour - WARMEST_HOUR) / 24.0)


@dataclass
class Climate:
    """Temperature and humidity of one place (a room, a greenhouse, a beehive)."""

    mean_c: float = 21.0
    amplitude_c: float = 4.0
    humidity_mean: float = 55.0
    humidity_per_c: float = 2.5  # % relative humidity lost per degree above the mean
    noise_c: float = 0.15
    rng: random.Random = field(default_factory=random.Random)
    _wander: float = 0.0  # AR(1) state of the temperature noise

    def temperature(self, sim_epoch_s: float, offset_c: float = 0.0) -> float:
        self._wander = 0.9 * self._wander + self.rng.gauss(0.0, self.noise_c)
        value = diurnal(sim_epoch_s, self.mean_c, self.amplitude_c) + self._wander + offset_c
        return round(value, 2)

    def humidity(self, temperature_c: float) -> float:
        value = self.humidity_mean - self.humidity_per_c * (temperature_c - self.mean_c)
        value += self.rng.gauss(0.0, 0.8)
        return round(min(100.0, max(0.0, value)), 1)


@dataclass
class Battery:
    """Percent charge falling linearly over `life_s` simulated seconds; a fresh battery
    goes in at 5 % (someone noticed the low-battery readings)."""

    start_percent: float = 100.0
    life_s: float = 14 * DAY_S

    def percent(self, sim_elapsed_s: float) -> float:
        span = self.life_s * (self.start_percent - 5.0) / 100.0
        if span <= 0:
            return 5.0
        used = (sim_elapsed_s % span) / self.life_s * 100.0
        return round(self.start_percent - used, 1)


@dataclass
class DoorContact:
    """Open/closed. Openings arrive as a Poisson process (rate per simulated hour, three
    times busier between 07:00 and 20:00); each lasts 10 s to 3 min simulated."""

    openings_per_hour: float = 3.0
    rng: random.Random = field(default_factory=random.Random)
    _open_until: float = -math.inf
    _last_s: float | None = None
    events: int = 0

    def is_open(self, sim_epoch_s: float) -> bool:
        if self._last_s is None or sim_epoch_s < self._last_s:
            self._last_s = sim_epoch_s
        step = sim_epoch_s - self._last_s
        self._last_s = sim_epoch_s
        hour = (sim_epoch_s % DAY_S) / 3600.0
        rate = self.openings_per_hour * (3.0 if 7 <= hour < 20 else 1.0) / 3600.0
        # P(at least one opening during the step) for a Poisson process.
        if sim_epoch_s >= self._open_until and self.rng.random() < 1 - math.exp(-rate * step):
            self._open_until = sim_epoch_s + self.rng.uniform(10.0, 180.0)
            self.events += 1
        return sim_epoch_s < self._open_until
