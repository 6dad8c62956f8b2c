"""The demo's story in time, and the cast of virtual devices.

`--speed N` runs simulated time N times faster than the wall clock: the diurnal curve,
the battery, the door and the scripted events all follow simulated time. Two things do
not compress: the monitor judges readings by their real timestamps (the SDK stamps wall
time, as a board does), and a person is watching. So each scripted event has a floor in
wall time that leaves room for its alert: the silent device stays away at least the
deadman rule's `for` plus a few monitor cycles, whatever the speed.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

from fieldline_backend.simulator.signals import Battery, Climate, DoorContact


@dataclass
class SimClock:
    """Wall time since start -> simulated time; simulated time starts at the real now."""

    speed: float = 1.0
    wall_start: float = 0.0  # time.monotonic() at start
    epoch_start: float = 0.0  # time.time() at start

    @classmethod
    def starting_now(cls, speed: float) -> SimClock:
        return cls(speed=speed, wall_start=time.monotonic(), epoch_start=time.time())

    def wall_elapsed(self, now: float | None = None) -> float:
        return (time.monotonic() if now is None else now) - self.wall_start

    def sim_elapsed(self, wall_elapsed: float) -> float:
        return wall_elapsed * self.speed

    def sim_epoch(self, wall_elapsed: float) -> float:
        return self.epoch_start + self.sim_elapsed(wall_elapsed)


@dataclass(frozen=True)
class DemoTimeline:
    """When things happen, in wall seconds since the devices started (see module doc)."""

    speed: float = 1.0
    threshold_for_s: float = 10.0
    deadman_for_s: float = 15.0
    monitor_interval_s: float = 2.0
    sample_sim_s: float = 5.0  # one reading per 5 simulated seconds...
    sample_floor_s: float = 0.25  # ...but at most four per wall second
    heater_sticks_sim_s: float = 20.0  # the greenhouse heater sticks on here
    heater_ramp_sim_s: float = 40.0  # and takes this long to add heater_rise_c
    heater_rise_c: float = 20.0
    silence_sim_s: float = 40.0  # the beehive loses its Wi-Fi here
    silence_len_sim_s: float = 60.0  # for this long

    def _wall(self, sim_s: float, floor_s: float) -> float:
        return max(sim_s / self.speed, floor_s)

    @property
    def sample_every_s(self) -> float:
        return self._wall(self.sample_sim_s, self.sample_floor_s)

    @property
    def heater_sticks_at(self) -> float:
        return self._wall(self.heater_sticks_sim_s, 5.0)

    @property
    def heater_ramp_s(self) -> float:
        return self._wall(self.heater_ramp_sim_s, 1.0)

    @property
    def silence_starts_at(self) -> float:
        # Late enough that the rules are enabled (after every device has been heard).
        return self._wall(self.silence_sim_s, 10.0)

    @property
    def silence_lasts(self) -> float:
        room = self.deadman_for_s + 3 * self.monitor_interval_s + 5.0
        return self._wall(self.silence_len_sim_s, room)

    def heater_offset_c(self, wall_elapsed: float) -> float:
        progress = (wall_elapsed - self.heater_sticks_at) / self.heater_ramp_s
        return self.heater_rise_c * min(1.0, max(0.0, progress))

    def silent(self, wall_elapsed: float) -> bool:
        start = self.silence_starts_at
        return start <= wall_elapsed < start + self.silence_lasts


@dataclass
class Profile:
    """One virtual device of the demo: its name, tags, what it measures, its role."""

    name: str
    room: str
    climate: Climate
    battery: Battery
    door: DoorContact | None = None
    role: str = ""  # "heater stuck" (drifts over its threshold), "flaky wifi" (goes silent)

    @property
    def metadata(self) -> dict:
        return {"fleet": "demo", "room": self.room}


CAST = (
    # name, room, mean, amplitude, humidity, door, role
    ("Greenhouse", "garden", 20.0, 5.0, 70.0, False, "heater stuck"),
    ("Beehive", "garden", 24.0, 3.0, 60.0, False, "flaky wifi"),
    ("Back door", "hall", 19.0, 2.0, 50.0, True, ""),
    ("Cellar", "cellar", 12.0, 0.8, 80.0, False, ""),
    ("Attic", "attic", 22.0, 7.0, 40.0, False, ""),
)


def demo_profiles(count: int, seed: int = 7) -> list[Profile]:
    """The cast above, then 'Sensor 6', 'Sensor 7', ... (every third with a door)."""
    profiles = []
    for index in range(count):
        rng = random.Random(f"{seed}-{index}")
        if index < len(CAST):
            name, room, mean, amplitude, humidity, has_door, role = CAST[index]
        else:
            name, room, role = f"Sensor {index + 1}", f"room {index % 7 + 1}", ""
            mean, amplitude = rng.uniform(15, 23), rng.uniform(1, 5)
            humidity, has_door = rng.uniform(40, 70), index % 3 == 2
        profiles.append(
            Profile(
                name=name,
                room=room,
                climate=Climate(mean, amplitude, humidity, rng=rng),
                battery=Battery(
                    start_percent=rng.uniform(60, 100), life_s=rng.uniform(5, 20) * 86_400
                ),
                door=DoorContact(rng=rng) if has_door else None,
                role=role,
            )
        )
    return profiles
