"""SMS templates, the messages sent and their state, opt-outs, alarm contacts and on-call
shifts, e-mails (admins; ``services/sms_*.py`` and ``services/paging.py`` have the rules)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, status

from thanthien.hub.api.deps import CurrentUser, DbSession, Hub, Limit, Offset, RowId, allow
from thanthien.hub.api.schemas_notify import (
    ActiveIn,
    ContactIn,
    ContactOut,
    EmailOut,
    OnCallIn,
    OnCallOut,
    OptOutIn,
    OptOutOut,
    PreviewIn,
    PreviewOut,
    SmsOut,
    TemplateIn,
    TemplateOut,
)
from thanthien.hub.roles import ADMINS
from thanthien.hub.services import paging, phones, sms_outbox, sms_templates
from thanthien.hub.services.sms_templates import Template

router = APIRouter(tags=["notify"], dependencies=[allow(*ADMINS)])
TemplateKind = Literal["received", "supplement", "result_ready", "due_soon", "overdue"]


def _template(hub: Hub, t: Template) -> TemplateOut:
    r = sms_templates.render(t, sms_templates.SAMPLE, brand=sms_templates.brand_in_text(hub.settings.sms))
    return TemplateOut(
        kind=t.kind,
        label=sms_templates.KINDS[t.kind],
        body=t.body,
        unicode=t.unicode,
        urgent=t.urgent,
        ask_rating=t.ask_rating,
        custom=t.custom,
        sample=r.text,
        characters=r.cost.characters,
        encoding=r.cost.encoding,
        segments=r.cost.segments,
    )


@router.get("/sms/templates", response_model=list[TemplateOut])
def list_templates(hub: Hub, session: DbSession) -> list[TemplateOut]:
    return [_template(hub, t) for t in sms_templates.all_templates(session)]


@router.put("/sms/templates/{kind}", response_model=TemplateOut)
def update_template(
    hub: Hub, session: DbSession, actor: CurrentUser, kind: TemplateKind, body: TemplateIn
) -> TemplateOut:
    sms_templates.update(
        session,
        actor=actor,
        kind=kind,
        body=body.body,
        unicode=body.unicode,
        urgent=body.urgent,
        ask_rating=body.ask_rating,
        now=hub.clock(),
        brand=sms_templates.brand_in_text(hub.settings.sms),
    )
    session.commit()
    return _template(hub, sms_templates.get(session, kind))


@router.post(
    "/sms/templates/preview",
    response_model=PreviewOut,
    summary="The characters and parts a template takes with sample values",
)
def preview(hub: Hub, body: PreviewIn) -> PreviewOut:
    r = sms_templates.preview(
        body.body,
        unicode=body.unicode,
        ask_rating=body.ask_rating,
        brand=sms_templates.brand_in_text(hub.settings.sms),
    )
    return PreviewOut(
        text=r.text,
        characters=r.cost.characters,
        encoding=r.cost.encoding,
        segments=r.cost.segments,
        limit=r.cost.limit,
    )


@router.get("/sms/messages", response_model=list[SmsOut], summary="Every text message and its state")
def list_messages(
    session: DbSession,
    actor: CurrentUser,
    status: str | None = None,
    kind: str | None = None,
    limit: Limit = 200,
    offset: Offset = 0,
) -> list[SmsOut]:
    return [
        SmsOut.of(m)
        for m in sms_outbox.list_messages(
            session, viewer=actor, status=status, kind=kind, limit=max(1, min(limit, 1000)),
            offset=max(offset, 0),
        )
    ]


@router.post("/sms/messages/{message_id}/requeue", response_model=SmsOut)
def requeue(hub: Hub, session: DbSession, actor: CurrentUser, message_id: RowId) -> SmsOut:
    msg = sms_outbox.requeue(session, actor=actor, message_id=message_id, now=hub.clock())
    session.commit()
    return SmsOut.of(msg)


@router.get("/sms/opt-outs", response_model=list[OptOutOut])
def list_opt_outs(session: DbSession, actor: CurrentUser) -> list[OptOutOut]:
    return [
        OptOutOut.model_validate(o).model_copy(update={"phone": phones.mask(o.phone)})
        for o in sms_outbox.list_opt_outs(session, viewer=actor)
    ]


@router.post(
    "/sms/opt-outs",
    response_model=OptOutOut,
    status_code=status.HTTP_201_CREATED,
    summary="Stop every further message to a number",
)
def add_opt_out(hub: Hub, session: DbSession, actor: CurrentUser, body: OptOutIn) -> OptOutOut:
    row = sms_outbox.admin_opt_out(
        session, actor=actor, phone=body.phone, reason=body.reason, now=hub.clock()
    )
    session.commit()
    return OptOutOut.model_validate(row).model_copy(update={"phone": phones.mask(row.phone)})


@router.delete("/sms/opt-outs/{phone}", status_code=status.HTTP_204_NO_CONTENT)
def remove_opt_out(session: DbSession, actor: CurrentUser, phone: str) -> None:
    sms_outbox.remove_opt_out(session, actor=actor, phone=phone)
    session.commit()


def _contact(c: object) -> ContactOut:
    out = ContactOut.model_validate(c)
    return out.model_copy(update={"phone": phones.mask(out.phone) if out.phone else None})


@router.get("/notify/contacts", response_model=list[ContactOut])
def list_contacts(session: DbSession, actor: CurrentUser) -> list[ContactOut]:
    return [_contact(c) for c in paging.list_contacts(session, viewer=actor)]


@router.post("/notify/contacts", response_model=ContactOut, status_code=status.HTTP_201_CREATED)
def create_contact(session: DbSession, actor: CurrentUser, body: ContactIn) -> ContactOut:
    contact = paging.create_contact(session, actor=actor, **body.model_dump())
    session.commit()
    return _contact(contact)


@router.post("/notify/contacts/{contact_id}/active", response_model=ContactOut)
def set_contact_active(
    session: DbSession, actor: CurrentUser, contact_id: RowId, body: ActiveIn
) -> ContactOut:
    contact = paging.set_contact_active(session, actor=actor, contact_id=contact_id, active=body.active)
    session.commit()
    return _contact(contact)


@router.get("/notify/shifts", response_model=list[OnCallOut])
def list_shifts(hub: Hub, session: DbSession, actor: CurrentUser) -> list[OnCallOut]:
    return [OnCallOut.model_validate(s) for s in paging.list_shifts(session, viewer=actor, since=hub.clock())]


@router.post("/notify/shifts", response_model=OnCallOut, status_code=status.HTTP_201_CREATED)
def add_shift(session: DbSession, actor: CurrentUser, body: OnCallIn) -> OnCallOut:
    shift = paging.add_shift(
        session,
        actor=actor,
        contact_id=body.contact_id,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        rank=body.rank,
    )
    session.commit()
    return OnCallOut.model_validate(shift)


@router.delete("/notify/shifts/{shift_id}", status_code=status.HTTP_204_NO_CONTENT)
def remove_shift(session: DbSession, actor: CurrentUser, shift_id: RowId) -> None:
    paging.remove_shift(session, actor=actor, shift_id=shift_id)
    session.commit()


@router.get("/notify/emails", response_model=list[EmailOut], summary="Every e-mail (alarm pages, digests)")
def list_emails(session: DbSession, actor: CurrentUser) -> list[EmailOut]:
    return [EmailOut.model_validate(m) for m in paging.list_emails(session, viewer=actor)]
