"""Alert rules: list, create and edit with the 7-day preview, enable/disable, delete."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from starlette.responses import Response

from fieldline_backend.console.api import ApiError
from fieldline_backend.console.errors import ConsoleRoute
from fieldline_backend.console.rule_form import (
    CONDITIONS,
    editable,
    form_from_rule,
    rule_from_form,
)
from fieldline_backend.console.web import (
    FormDep,
    Session,
    SessionDep,
    or_not_found,
    redirect,
    render,
)

router = APIRouter(include_in_schema=False, route_class=ConsoleRoute)
PREVIEW_PERIOD = "7d"
NOT_YOURS = "no such rule of yours"


@router.get("/rules")
async def rules_page(request: Request, session: SessionDep) -> Response:
    rules, devices = await _rules_and_devices(session)
    names = {d["id"]: d["name"] for d in devices}
    return render(
        request, "rules.html", session, rules=rules, names=names, editable=editable,
        title="Alert rules",
    )  # fmt: skip


async def _rules_and_devices(session: Session):
    return await session.api.get("/alert-rules"), await session.api.get("/devices")


async def _form_page(
    request, session: Session, values: dict, rule_id: str | None, status: int = 200, **extra
):
    devices = await session.api.get("/devices")
    fields = {}
    for device in devices:  # the field names each device has sent, for the datalist
        try:
            latest = await session.api.get(f"/devices/{device['id']}/latest")
            fields[device["id"]] = sorted(latest["fields"])
        except ApiError:
            fields[device["id"]] = []
    known = sorted({name for names in fields.values() for name in names})
    return render(
        request, "rule_form.html", session, status=status, values=values, rule_id=rule_id,
        devices=devices, known_fields=known, conditions=CONDITIONS,
        title="Edit rule" if rule_id else "New rule", **extra,
    )  # fmt: skip


@router.get("/rules/new")
async def new_rule(request: Request, session: SessionDep, device_id: str | None = None):
    values = form_from_rule({"device_id": device_id or "", "recipients": []})
    return await _form_page(request, session, values, None)


async def _rule(session: Session, rule_id: str) -> dict:
    return await or_not_found(session.api.get(f"/alert-rules/{rule_id}"), NOT_YOURS)


@router.get("/rules/{rule_id}/edit")
async def edit_rule(request: Request, rule_id: str, session: SessionDep):
    rule = await _rule(session, rule_id)
    if not editable(rule):
        raise HTTPException(400, "only threshold rules on one device are edited here; use the API")
    return await _form_page(request, session, form_from_rule(rule), rule_id)


async def _preview(session: Session, rule: dict) -> dict:
    body = {"rule": {k: v for k, v in rule.items() if v is not None}, "period": PREVIEW_PERIOD}
    return await session.api.post("/alert-rules/preview", body)


@router.post("/rules/save")
async def save_rule(request: Request, session: SessionDep, form: FormDep) -> Response:
    """One form, two buttons: `action=preview` shows how many notifications the rule
    would have sent over the last 7 days; `action=save` creates or changes it."""
    rule_id = str(form.get("rule_id") or "") or None
    parsed = rule_from_form(form)
    if parsed.errors:
        return await _form_page(
            request, session, form_from_rule(parsed.rule) | _raw(form), rule_id, 422,
            errors=parsed.errors,
        )  # fmt: skip
    try:
        if form.get("action") == "preview":
            preview = await _preview(session, parsed.rule)
            return await _form_page(
                request, session, _raw(form), rule_id, preview=preview, period=PREVIEW_PERIOD
            )
        if rule_id:
            await session.api.patch(f"/alert-rules/{rule_id}", _nulls_out(parsed.rule))
        else:
            await session.api.post("/alert-rules", _nulls_out(parsed.rule))
    except ApiError as error:
        if error.status == 404 and rule_id:
            raise HTTPException(404, NOT_YOURS) from None
        return await _form_page(request, session, _raw(form), rule_id, 422, errors=error.messages())
    return redirect("/rules", "rule-saved")


def _raw(form: dict) -> dict:
    """What the person typed, shown again as typed."""
    values = form_from_rule({})
    values.update({k: v for k, v in form.items() if k in values and isinstance(v, str)})
    values["notify_on_recovery"] = form.get("notify_on_recovery") == "on"
    values["enabled"] = form.get("enabled") == "on"
    return values


def _nulls_out(rule: dict) -> dict:
    # A PATCH merges: thresholds left empty must be sent as null to be removed.
    return {**{"warn": None, "crit": None, "clear": None}, **rule}


@router.post("/rules/preview")
async def preview_fragment(request: Request, session: SessionDep, form: FormDep) -> Response:
    """The preview alone, for the form's script: asked again as the person types."""
    parsed = rule_from_form(form)
    preview, errors = None, parsed.errors
    if not errors:
        try:
            preview = await _preview(session, parsed.rule)
        except ApiError as error:
            errors = error.messages()
    return render(
        request, "_rule_preview.html", session, preview=preview, period=PREVIEW_PERIOD,
        hints=errors,
    )  # fmt: skip


@router.post("/rules/{rule_id}/enabled")
async def set_enabled(request: Request, rule_id: str, session: SessionDep, form: FormDep):
    enabled = form.get("enabled") == "true"
    await or_not_found(
        session.api.patch(f"/alert-rules/{rule_id}", {"enabled": enabled}), NOT_YOURS
    )
    return redirect("/rules", "rule-enabled" if enabled else "rule-disabled")


@router.get("/rules/{rule_id}/delete")
async def confirm_delete(request: Request, rule_id: str, session: SessionDep):
    rule = await _rule(session, rule_id)
    return render(
        request, "confirm.html", session, title="Delete rule", heading="Delete this rule",
        consequence="It stops watching at once; its alert history stays.",
        subject=rule["name"], action=f"/rules/{rule_id}/delete", back="/rules",
    )  # fmt: skip


@router.post("/rules/{rule_id}/delete")
async def delete_rule(request: Request, rule_id: str, session: SessionDep, form: FormDep):
    await or_not_found(session.api.delete(f"/alert-rules/{rule_id}"), NOT_YOURS)
    return redirect("/rules", "rule-deleted")
