"""What a notification says: a subject to triage from a phone lock screen, a plain
text and an HTML body, and the JSON a webhook receives.

Subject, worst first:  [CRIT] Greenhouse 3: temperature 31.5 > 30 (too hot)
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from urllib.parse import quote

from fieldline_backend.common.durations import format_duration

SYMBOL = {"above": ">", "below": "<", "outside": "outside", "inside": "inside"}
RECOVERED_SYMBOL = {"above": "<=", "below": ">=", "outside": "inside", "inside": "outside"}


def when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _number(value) -> str:
    if value is None:
        return "?"
    if isinstance(value, list):
        return "[" + ", ".join(_number(v) for v in value) + "]"
    return f"{value:g}" if isinstance(value, float) else str(value)


def subject_for(alert: dict, rule: dict) -> str:
    """Level, device, field, value vs threshold, rule name: in that order of need."""
    level = alert["level"].upper()
    device = alert.get("device_name") or alert.get("device_key") or "?"
    name = rule.get("name") or alert.get("rule_name")
    kind = alert["kind"]
    details = alert.get("details") or {}
    if kind == "test":
        return f"[TEST] {name}: this is how its alerts will reach you"
    if kind == "late":
        digest = details.get("late") or {}
        return (
            f"[LATE {digest.get('worst_level', 'warn').upper()}] {device}: "
            f"{digest.get('breaches', 0)} of {digest.get('readings', 0)} delayed readings "
            f"breached {alert.get('field') or ''}, worst {_number(digest.get('worst_value'))} "
            f"({name})"
        )
    if rule.get("kind") == "deadman":
        silence = format_duration(rule.get("for_s") or 0)
        if alert["level"] == "ok":
            return f"[OK] {device} is sending again ({name})"
        return f"[{level}] {device} offline: nothing for {silence} ({name})"
    prefix = "[OK]" if kind == "recovery" else f"[{level}{', still' if kind == 'repeat' else ''}]"
    field = alert.get("field")
    value = alert.get("value")
    condition = rule.get("condition")
    threshold = (alert.get("threshold") or {}).get("value")
    if field and condition and value is not None:
        if kind == "recovery":
            limit = rule.get("clear") if rule.get("clear") is not None else threshold
            if limit is None:
                limit = rule.get("crit") if rule.get("crit") is not None else rule.get("warn")
            comparison = f"{RECOVERED_SYMBOL[condition]} {_number(limit)}"
        else:
            comparison = f"{SYMBOL[condition]} {_number(threshold)}"
        return f"{prefix} {device}: {field} {_number(value)} {comparison} ({name})"
    text = alert.get("message") or ""
    if field and value is not None:
        text = f"{field} {_number(value)}" + (f" - {text}" if text else "")
    return f"{prefix} {device}: {text[:120] or 'status ' + alert['level']} ({name})"


def console_links(base_url: str, alert: dict) -> dict[str, str]:
    """Where a reader of the alert goes next: the console's pages (a signed-out reader signs
    in and lands there), at the public URL; the API address only for programs."""
    base = base_url.rstrip("/")
    device_id = alert.get("device_id")
    links = {"alerts": f"{base}/alerts"}
    links["device"] = (
        f"{base}/devices/{quote(device_id, safe='')}" if device_id else links["alerts"]
    )
    if alert.get("rule_id"):
        links["rule"] = f"{base}/rules/{quote(str(alert['rule_id']), safe='')}/edit"
    if device_id:
        links["api"] = f"{base}/api/v1/devices/{quote(device_id, safe='')}"
    return links


def _facts(alert: dict, rule: dict) -> list[tuple[str, str]]:
    details = alert.get("details") or {}
    facts = [
        ("What", alert.get("message") or alert["subject"]),
        ("Level", f"{alert['previous_level']} -> {alert['level']} ({alert['kind']})"),
        ("When", when(alert.get("event_ms"))),
        ("Rule", f"{rule.get('name')} ({alert['rule_id']})"),
        ("Device", f"{alert.get('device_name') or '-'} ({alert.get('device_id') or '-'})"),
    ]
    if rule.get("condition"):
        thresholds = ", ".join(
            f"{key} {_number(rule[key])}"
            for key in ("warn", "crit", "clear")
            if rule.get(key) is not None
        )
        facts.append(("Condition", f"{rule.get('field')} {rule['condition']}: {thresholds}"))
        facts.append(("For", format_duration(rule.get("for_s") or 0)))
    metadata = details.get("metadata") or alert.get("tags") or {}
    if metadata:
        facts.append(("Metadata", ", ".join(f"{k}={v}" for k, v in sorted(metadata.items()))))
    recent = details.get("last_values") or []
    if recent:
        facts.append(
            ("Last values", ", ".join(f"{_number(v)} at {when(ts)}" for ts, v in recent[-5:]))
        )
    values = details.get("fields") or (details.get("kapacitor_rows") or [{}])[-1]
    shown = {k: v for k, v in values.items() if k != "time"}
    if shown:
        facts.append(("Values", ", ".join(f"{k}={_number(v)}" for k, v in shown.items())))
    digest = details.get("late")
    if digest:
        facts.append(
            (
                "Delayed readings",
                f"{digest.get('readings')} taken {when(digest.get('first_ts'))} to "
                f"{when(digest.get('last_ts'))}; {digest.get('breaches')} breached, worst "
                f"{_number(digest.get('worst_value'))} at {when(digest.get('worst_ts'))}; "
                f"{digest.get('would_have_fired')} alert(s) would have been sent on time",
            )
        )
    if details.get("details"):
        facts.append(("Details", str(details["details"])[:2000]))
    return facts


def _link_lines(alert: dict, base_url: str) -> list[tuple[str, str, str]]:
    """(label, anchor text, URL) of each link a message carries."""
    links = console_links(base_url, alert)
    if alert.get("device_id"):
        lines = [("Device", "Open the device", links["device"])]
    else:
        lines = [("Alerts", "Open the alerts", links["alerts"])]
    if "rule" in links:
        lines.append(("Rule", "Open the rule", links["rule"]))
    return lines


def bodies(alert: dict, rule: dict, base_url: str) -> tuple[str, str]:
    """(plain text, HTML) bodies of one notification."""
    facts = _facts(alert, rule)
    links = _link_lines(alert, base_url)
    text = "\n".join(f"{label + ':':<18}{value}" for label, value in facts)
    text += "\n\n" + "".join(f"{label + ':':<8}{url}\n" for label, _, url in links)
    rows = "".join(
        f"<tr><th align='left' style='padding-right:1em'>{html.escape(label)}</th>"
        f"<td>{html.escape(str(value))}</td></tr>"
        for label, value in facts
    )
    anchors = " &middot; ".join(
        f"<a href='{html.escape(url, quote=True)}'>{anchor}</a>" for _, anchor, url in links
    )
    page = (
        "<!doctype html><html><body style='font-family:sans-serif'>"
        f"<h2>{html.escape(alert['subject'])}</h2><table>{rows}</table>"
        f"<p>{anchors}</p></body></html>"
    )
    return f"{alert['subject']}\n\n{text}", page


def compose(alert: dict, rule: dict, base_url: str) -> dict:
    """The outbox's copy of a message: fixed when decided, so a retry sends the same."""
    text, page = bodies(alert, rule, base_url)
    return {
        "subject": alert["subject"],
        "text": text,
        "html": page,
        "json": {
            "alert": {k: v for k, v in alert.items() if k not in ("details",)},
            "details": alert.get("details") or {},
            "link": console_links(base_url, alert)["device"],
            "links": console_links(base_url, alert),
        },
    }


def email_for(message: dict, recipient: str, sender: str, reply_to: str | None, msg_id: str):
    mail = EmailMessage()
    mail["Subject"] = message["subject"]
    mail["From"] = sender
    mail["To"] = recipient
    if reply_to:
        mail["Reply-To"] = reply_to
    mail["Date"] = formatdate(localtime=False)
    # Stable per outbox row: a redelivery after a crash carries the same Message-ID,
    # so mail clients and relays that dedupe on it show one message.
    mail["Message-ID"] = msg_id or make_msgid(domain="fieldline")
    mail.set_content(message["text"])
    mail.add_alternative(message["html"], subtype="html")
    return mail
