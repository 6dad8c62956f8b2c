"""The console's pure parts: chart windows never exceed the chart's pixels, CSRF tokens,
cookie flags, redirect targets, the rule form."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from fieldline_backend.console import charts
from fieldline_backend.console.ranges import RangeInvalid, pick_range
from fieldline_backend.console.rule_form import form_from_rule, rule_from_form
from fieldline_backend.console.sessions import (
    cookie_is_secure,
    csrf_matches,
    csrf_token,
    login_csrf_matches,
)
from fieldline_backend.console.web import safe_next

MS = st.integers(min_value=0, max_value=9_223_372_036_853)


@given(start=MS, span=st.integers(1, 400 * 86_400_000), width=st.integers(2, 5000))
def test_windows_never_exceed_the_pixels(start, span, width):
    every = charts.window_ms(start, start + span, width)
    assert every >= 1000 and every % 1000 == 0
    assert charts.windows_touched(start, start + span, every) <= width


@given(start=MS, span=st.integers(1, 400 * 86_400_000), width=st.integers(2, 5000))
def test_windows_touched_counts_aligned_windows(start, span, width):
    every = charts.window_ms(start, start + span, width)
    stop = start + span
    first = start // every * every
    expected = len(range(first, stop, every))
    assert charts.windows_touched(start, stop, every) == expected


def test_a_week_of_minutes_on_a_720px_chart_is_at_most_720_points():
    week = 7 * 86_400_000
    every = charts.window_ms(0, week, 720)
    assert every == 842_000  # 14 min 2 s
    assert charts.windows_touched(10**12, 10**12 + week, every) <= 720


@given(
    points=st.lists(
        st.tuples(st.integers(0, 10**6), st.floats(-1e12, 1e12) | st.booleans()),
        max_size=200,
    ),
    width=st.integers(60, 2000),
)
def test_draw_plots_every_point_inside_the_box(points, width):
    points = sorted(points)
    chart = charts.draw(points, 0, 10**6 + 1, width)
    assert chart.count == len(points)
    coordinates = re.findall(r"(-?[\d.]+),(-?[\d.]+)", chart.path)
    assert len(coordinates) == len(points)
    for x, y in coordinates:
        assert 0 <= float(x) <= width
        assert 0 <= float(y) <= chart.height


@given(session=st.text(min_size=1, max_size=60), other=st.text(min_size=1, max_size=60))
def test_csrf_token_belongs_to_its_session(session, other):
    token = csrf_token(session)
    assert csrf_matches(session, token)
    assert not csrf_matches(session, None)
    assert not csrf_matches(session, "")
    if other != session:
        assert not csrf_matches(other, token)
    assert not csrf_matches(session, token[:-1])


@given(cookie=st.text(max_size=40), sent=st.text(max_size=40))
def test_login_csrf_needs_both_and_equal(cookie, sent):
    assert login_csrf_matches(cookie, sent) == (bool(cookie) and cookie == sent)


def test_secure_cookie_when_https_or_public_url_says_so():
    assert cookie_is_secure("https", None)
    assert cookie_is_secure("http", "https://fieldline.example.com")  # TLS ends at Traefik
    assert not cookie_is_secure("http", None)
    assert not cookie_is_secure("http", "http://127.0.0.1:8000")


@given(target=st.text(max_size=80))
def test_redirect_after_login_stays_on_this_site(target):
    result = safe_next(target)
    as_browser_reads_it = re.sub(r"[\t\n\r]", "", result).replace("\\", "/")
    assert result.startswith("/") and not as_browser_reads_it.startswith("//")


def test_redirect_examples():
    assert safe_next("/devices/dev-1?range=1d") == "/devices/dev-1?range=1d"
    hostile_targets = ("//evil.example", "https://evil.example", "/\\evil.example",
                       "/\t/evil.example", "/\n/evil.example", None, "")  # fmt: skip
    for hostile in hostile_targets:
        assert safe_next(hostile) == "/devices"


def test_ranges():
    now = 1_800_000_000_000
    assert pick_range("1h", None, None, now).start_ms == now - 3_600_000
    custom = pick_range("custom", "2026-11-20T10:00", "2026-11-21T10:00", now)
    assert custom.stop_ms - custom.start_ms == 86_400_000
    for key, start, stop in (
        ("2h", None, None),
        ("custom", None, "2026-11-21T10:00"),
        ("custom", "2026-11-21T10:00", "2026-11-20T10:00"),
        ("custom", "yesterday", "2026-11-20T10:00"),
    ):
        try:
            pick_range(key, start, stop, now)
        except RangeInvalid as error:
            assert str(error)
        else:
            raise AssertionError(f"{key} {start} {stop} was accepted")


def test_rule_form_round_trip():
    form = {
        "name": " too hot ", "device_id": "dev-1", "field": "temperature",
        "condition": "outside", "warn": "10, 30", "crit": "5 35", "clear": "",
        "for": "5m", "recipients": "a@example.com\nwebhook:https://h.example/x",
        "repeat_every": "", "notify_on_recovery": "on",
    }  # fmt: skip
    parsed = rule_from_form(form)
    assert parsed.errors == []
    assert parsed.rule["warn"] == [10, 30] and parsed.rule["crit"] == [5, 35]
    assert "clear" not in parsed.rule and parsed.rule["repeat_every"] is None
    assert parsed.rule["enabled"] is False  # an unticked box is not sent by a browser
    again = form_from_rule(parsed.rule)
    assert again["warn"] == "10, 30" and again["recipients"].splitlines()[1].startswith("webhook:")


@given(text=st.text(max_size=20).filter(lambda t: t.strip() != ""))
def test_rule_form_numbers_or_a_message(text):
    parsed = rule_from_form({"condition": "above", "crit": text})
    if parsed.errors:
        assert parsed.errors[0].startswith("crit: ")
    else:
        assert isinstance(parsed.rule["crit"], int | float)


@given(
    st.floats(-1e9, 1e9, allow_nan=False),
    st.floats(1e-6, 1e9, allow_nan=False),
)
def test_axis_ticks_are_round_inside_the_range_and_few(low, spread):
    high = low + spread
    ticks = charts.nice_ticks(low, high)
    assert 2 <= len(ticks) <= 5
    steps = [b - a for a, b in zip(ticks, ticks[1:], strict=False)]
    assert all(step > 0 for step in steps)
    slack = steps[0] * 1e-6  # inside the range to within float rounding of a step
    assert all(low - slack <= t <= high + slack for t in ticks), ticks
    labels = [charts.tick_label(t, ticks) for t in ticks]
    assert len(set(labels)) == len(labels), (ticks, labels)  # distinct as written


def test_units_by_name_and_metadata():
    assert charts.unit_for("temperature") == "°C"
    assert charts.unit_for("outside_temperature") == "°C"  # a sensor prefix keeps it
    assert charts.unit_for("soil") is None
    assert charts.unit_for("soil", {"unit_soil": "% VWC"}) == "% VWC"
    chart = charts.draw([(0, True), (1000, False)], 0, 2000, 100, every_ms=1000, boolean=True)
    assert [t.label for t in chart.ticks] == ["off", "on"]
    assert (chart.times, chart.values, chart.first_ms) == ("0,1", "1,0", 0)
