"""The virtual sensors' shapes and the demo timeline's floors, for any time and speed."""

from __future__ import annotations

import random
import statistics

from hypothesis import given
from hypothesis import strategies as st

from fieldline_backend.simulator.scenario import DemoTimeline, demo_profiles
from fieldline_backend.simulator.signals import DAY_S, Battery, Climate, DoorContact, diurnal

DAY_START = 1_795_737_600.0  # 2026-11-27 00:00 UTC


def test_temperature_is_warmest_in_the_afternoon_and_coolest_before_dawn():
    by_hour = {hour: diurnal(DAY_START + hour * 3600, 20.0, 5.0) for hour in range(24)}
    assert max(by_hour, key=by_hour.get) == 15
    assert min(by_hour, key=by_hour.get) == 3
    assert by_hour[15] - by_hour[3] == 10.0


def test_humidity_falls_as_temperature_rises():
    climate = Climate(mean_c=20, amplitude_c=5, rng=random.Random(1))
    samples = []
    for step in range(24 * 12):  # one simulated day, a reading every 5 minutes
        temperature = climate.temperature(DAY_START + step * 300)
        samples.append((temperature, climate.humidity(temperature)))
    temperatures, humidities = zip(*samples, strict=True)
    assert statistics.correlation(temperatures, humidities) < -0.8


@given(st.floats(0, 60 * DAY_S), st.floats(0, 60 * DAY_S))
def test_battery_only_discharges_between_replacements(a, b):
    battery = Battery(start_percent=90, life_s=10 * DAY_S)
    early, late = sorted((a, b))
    span = battery.life_s * (battery.start_percent - 5) / 100
    for value in (battery.percent(early), battery.percent(late)):
        assert 5.0 <= value <= 90.0
    if int(early // span) == int(late // span):  # same battery
        assert battery.percent(late) <= battery.percent(early)


def test_door_opens_at_random_and_closes_again():
    door = DoorContact(openings_per_hour=6, rng=random.Random(3))
    states = [door.is_open(DAY_START + 12 * 3600 + step * 5) for step in range(4 * 720)]
    assert door.events >= 20  # about 18 per hour by day
    assert 0 < sum(states) < len(states) / 2


@given(st.floats(1, 10_000), st.floats(1, 10), st.floats(5, 60))
def test_every_speed_leaves_room_for_both_alerts(speed, interval, deadman_for):
    timeline = DemoTimeline(speed=speed, monitor_interval_s=interval, deadman_for_s=deadman_for)
    assert timeline.silence_lasts >= deadman_for + 3 * interval
    assert timeline.silence_starts_at >= 10.0
    assert timeline.sample_every_s >= 0.25
    start, length = timeline.silence_starts_at, timeline.silence_lasts
    assert not timeline.silent(start - 0.01) and timeline.silent(start)
    assert timeline.silent(start + length - 0.01) and not timeline.silent(start + length)
    # The heater has added its full rise well before two minutes, at any speed.
    assert timeline.heater_offset_c(timeline.heater_sticks_at + 40.0) == timeline.heater_rise_c


def test_at_real_time_both_alerts_fit_in_two_minutes():
    timeline = DemoTimeline(speed=1, monitor_interval_s=2)
    crossing = timeline.heater_sticks_at + timeline.heater_ramp_s  # at the latest
    assert crossing + timeline.threshold_for_s + 2 * timeline.monitor_interval_s < 120
    assert timeline.silence_starts_at + timeline.deadman_for_s + 2 * 2 < 120


def test_the_cast_then_numbered_sensors_each_a_distinct_name():
    profiles = demo_profiles(200)
    names = [profile.name for profile in profiles]
    assert names[:2] == ["Greenhouse", "Beehive"] and names[5] == "Sensor 6"
    assert len(set(names)) == 200
    assert profiles[0].role == "heater stuck" and profiles[1].role == "flaky wifi"
    assert all(profile.metadata["fleet"] == "demo" for profile in profiles)
