"""The short guide `fieldline demo` prints once: where things are, what to type, how
to stop. Every `curl` line in it is meant to be copied as is (tests run them)."""

from __future__ import annotations

import httpx

from fieldline_backend.common.settings import Settings
from fieldline_backend.simulator.demo_setup import DemoAccount, DemoDevice, demo_dir
from fieldline_backend.simulator.scenario import DemoTimeline


def console_url(base_url: str) -> str | None:
    """The web console's address when this build serves one at / (an HTML page)."""
    try:
        answer = httpx.get(base_url + "/", timeout=5, follow_redirects=True)
    except httpx.HTTPError:
        return None
    if answer.status_code == 200 and "text/html" in answer.headers.get("content-type", ""):
        return base_url + "/"
    return None


def guide(
    settings: Settings,
    account: DemoAccount,
    devices: list[DemoDevice],
    timeline: DemoTimeline,
    log_file,
    console: str | None,
    port_notes: list[str] | tuple[str, ...] = (),
) -> str:
    base = settings.http_base_url
    api = f"{base}/api/v1"
    auth = f'-H "Authorization: Bearer {account.token}"'
    mail = settings.data_dir / "mail"
    greenhouse, beehive = devices[0], devices[1] if len(devices) > 1 else devices[0]
    speed = f"simulated time x{timeline.speed:g}" if timeline.speed != 1 else "real time"
    lines = [
        "",
        f"Fieldline demo: {len(devices)} virtual devices running the real SDK ({speed}).",
        "",
        f"  API         {api}   (interactive docs: {base}/docs)",
    ]
    if console:
        lines.append(f"  web console {console}   (sign in with the user below)")
    lines += [
        f"  token       {account.token}",
        f"  user        {account.username}   password {account.password}   "
        f"(both kept in {demo_dir(settings) / 'account.json'})",
        f"  MQTT        127.0.0.1:{settings.mqtt_port}",
        *(f"  ({note})" for note in port_notes),
        "",
        "Try:",
        f"  curl -s {auth} {api}/devices",
        f'  curl -s {auth} "{api}/devices/{greenhouse.id}/telemetry'
        f'?fields=temperature,humidity&start=-5m"',
        f"  curl -s {auth} {api}/devices/{beehive.id}/status",
        f"  curl -s {auth} {api}/alerts",
        "",
        f"What happens: the {greenhouse.name} heater sticks on (temperature over 30 C for "
        f"{timeline.threshold_for_s:g} s: an alert mail);",
        f"the {beehive.name} loses its Wi-Fi for {timeline.silence_lasts:.0f} s, buffers its "
        f"readings and sends them when back (offline after {timeline.deadman_for_s:g} s: "
        "a mail, then a recovery mail).",
        "",
        f"  mail        {mail}/new/   (read it with: mutt -f {mail})",
        f"  data, logs  {settings.data_dir}   (log: {log_file})",
        "",
        "Stop with Ctrl-C. Run the same command again to continue with the same user, "
        "devices and history.",
        "",
    ]
    return "\n".join(lines)
