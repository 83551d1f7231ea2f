"""Admins: the notice templates (with the characters and parts each takes), every text
message and e-mail with its state, opt-outs, and the people alarms reach (contacts, on-call
shifts). The rules are ``services/sms_*.py`` and ``services/paging.py``'s."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from thanthien.hub.api.deps import RowId
from thanthien.hub.roles import ADMINS
from thanthien.hub.services import paging, phones, sms_outbox, sms_templates
from thanthien.hub.services.errors import Invalid, ServiceError
from thanthien.hub.web import flash
from thanthien.hub.web.auth import Csrf, Require, UiUser, hub_of
from thanthien.hub.web.templating import render

router = APIRouter()

Admin = Annotated[UiUser, Depends(Require(*ADMINS))]
SMS, CONTACTS = "/ui/sms", "/ui/contacts"


@router.get("/sms", response_class=HTMLResponse)
def sms_page(request: Request, user: Admin, status: str = "") -> Response:
    hub = hub_of(request)
    brand = sms_templates.brand_in_text(hub.settings.sms)
    with hub.db.new_session(write=False) as session:
        templates = [
            (t, sms_templates.render(t, sms_templates.SAMPLE, brand=brand))
            for t in sms_templates.all_templates(session)
        ]
        context = {
            "templates": templates,
            "kinds": sms_templates.KINDS,
            "placeholders": sms_templates.PLACEHOLDERS,
            "messages": sms_outbox.list_messages(session, viewer=user, status=status or None, limit=200),
            "emails": paging.list_emails(session, viewer=user, limit=100),
            "counts": sms_outbox.status_counts(session, viewer=user),
            "opt_outs": sms_outbox.list_opt_outs(session, viewer=user),
            "statuses": sms_outbox.STATUSES,
            "status": status,
            "mask": phones.mask,
            "sms": hub.settings.sms,
            "brand": brand,
        }
        return render(request, "sms.html", context, user=user)


@router.post("/sms/templates/{kind}", dependencies=[Csrf])
def save_template(
    request: Request,
    user: Admin,
    kind: str,
    body: Annotated[str, Form()] = "",
    unicode: Annotated[str, Form()] = "",
    urgent: Annotated[str, Form()] = "",
    ask_rating: Annotated[str, Form()] = "",
    reset: Annotated[str, Form()] = "",
) -> Response:
    hub = hub_of(request)
    try:
        with hub.db.session() as session:
            if reset:
                sms_templates.reset(session, actor=user, kind=kind)
            else:
                sms_templates.update(
                    session,
                    actor=user,
                    kind=kind,
                    body=body,
                    unicode=bool(unicode),
                    urgent=bool(urgent),
                    ask_rating=bool(ask_rating),
                    now=hub.clock(),
                    brand=sms_templates.brand_in_text(hub.settings.sms),
                )
    except ServiceError as exc:
        return flash.refused(f"{SMS}#mau-{kind}", exc)
    label = sms_templates.KINDS.get(kind, kind)
    return flash.redirect(
        f"{SMS}#mau-{kind}",
        message=f"Đã lưu mẫu tin '{label}'" if not reset else f"Đã trả mẫu tin '{label}' về mặc định",
    )


@router.post("/sms/opt-outs", dependencies=[Csrf])
def add_opt_out(
    request: Request, user: Admin, phone: Annotated[str, Form()] = "", reason: Annotated[str, Form()] = ""
) -> Response:
    hub = hub_of(request)
    try:
        with hub.db.session() as session:
            row = sms_outbox.admin_opt_out(session, actor=user, phone=phone, reason=reason, now=hub.clock())
            shown = phones.mask(row.phone)
    except ServiceError as exc:
        return flash.refused(f"{SMS}#tu-choi", exc)
    return flash.redirect(f"{SMS}#tu-choi", message=f"Đã dừng gửi tin tới {shown}")


@router.post("/sms/opt-outs/remove", dependencies=[Csrf])
def remove_opt_out(request: Request, user: Admin, phone: Annotated[str, Form()] = "") -> Response:
    hub = hub_of(request)
    try:
        with hub.db.session() as session:
            sms_outbox.remove_opt_out(session, actor=user, phone=phone)
    except ServiceError as exc:
        return flash.refused(f"{SMS}#tu-choi", exc)
    return flash.redirect(f"{SMS}#tu-choi", message=f"Đã cho phép gửi tin lại tới {phones.mask(phone)}")


@router.post("/sms/messages/{message_id}/requeue", dependencies=[Csrf])
def requeue(request: Request, user: Admin, message_id: RowId) -> Response:
    hub = hub_of(request)
    try:
        with hub.db.session() as session:
            sms_outbox.requeue(session, actor=user, message_id=message_id, now=hub.clock())
    except ServiceError as exc:
        return flash.refused(f"{SMS}#tin-nhan", exc)
    return flash.redirect(f"{SMS}#tin-nhan", message=f"Tin nhắn {message_id} sẽ được gửi lại")


@router.get("/contacts", response_class=HTMLResponse)
def contacts_page(request: Request, user: Admin) -> Response:
    hub = hub_of(request)
    with hub.db.new_session(write=False) as session:
        contacts = paging.list_contacts(session, viewer=user)
        context = {
            "contacts": contacts,
            "by_id": {c.id: c for c in contacts},
            "shifts": paging.list_shifts(session, viewer=user, since=hub.clock()),
            "audiences": paging.AUDIENCES,
            "mask": phones.mask,
            "notify": hub.settings.notify,
        }
        return render(request, "contacts.html", context, user=user)


@router.post("/contacts", dependencies=[Csrf])
def create_contact(
    request: Request,
    user: Admin,
    name: Annotated[str, Form()] = "",
    audience: Annotated[str, Form()] = "",
    phone: Annotated[str, Form()] = "",
    email: Annotated[str, Form()] = "",
    rank: Annotated[str, Form()] = "1",
    quiet_start: Annotated[str, Form()] = "",
    quiet_end: Annotated[str, Form()] = "",
    digest: Annotated[str, Form()] = "",
) -> Response:
    hub = hub_of(request)
    try:
        with hub.db.session() as session:
            paging.create_contact(
                session,
                actor=user,
                name=name,
                audience=audience,
                phone=phone or None,
                email=email or None,
                rank=int(rank) if rank.isdigit() else 0,
                quiet_start=quiet_start or None,
                quiet_end=quiet_end or None,
                digest=bool(digest),
            )
    except ServiceError as exc:
        return flash.refused(CONTACTS, exc)
    return flash.redirect(CONTACTS, message=f"Đã thêm người nhận cảnh báo {' '.join(name.split())}")


@router.post("/contacts/{contact_id}/active", dependencies=[Csrf])
def set_active(
    request: Request, user: Admin, contact_id: RowId, active: Annotated[str, Form()] = ""
) -> Response:
    hub = hub_of(request)
    try:
        with hub.db.session() as session:
            paging.set_contact_active(session, actor=user, contact_id=contact_id, active=active == "1")
    except ServiceError as exc:
        return flash.refused(CONTACTS, exc)
    return flash.redirect(CONTACTS, message="Đã cập nhật người nhận")


def _local(value: str, tz: ZoneInfo) -> datetime:
    try:
        return datetime.fromisoformat(value.strip()).replace(tzinfo=tz)
    except ValueError as exc:
        raise Invalid("Thời gian ca trực không đúng dạng ngày giờ") from exc


@router.post("/contacts/shifts", dependencies=[Csrf])
def add_shift(
    request: Request,
    user: Admin,
    contact_id: Annotated[str, Form()] = "",
    starts_at: Annotated[str, Form()] = "",
    ends_at: Annotated[str, Form()] = "",
    rank: Annotated[str, Form()] = "1",
) -> Response:
    hub = hub_of(request)
    tz = ZoneInfo(hub.settings.hub.timezone)
    try:
        with hub.db.session() as session:
            paging.add_shift(
                session,
                actor=user,
                contact_id=int(contact_id) if contact_id.isdigit() else 0,
                starts_at=_local(starts_at, tz),
                ends_at=_local(ends_at, tz),
                rank=int(rank) if rank.isdigit() else 1,
            )
    except ServiceError as exc:
        return flash.refused(CONTACTS, exc)
    return flash.redirect(CONTACTS, message="Đã thêm ca trực")


@router.post("/contacts/shifts/{shift_id}/remove", dependencies=[Csrf])
def remove_shift(request: Request, user: Admin, shift_id: RowId) -> Response:
    hub = hub_of(request)
    try:
        with hub.db.session() as session:
            paging.remove_shift(session, actor=user, shift_id=shift_id)
    except ServiceError as exc:
        return flash.refused(CONTACTS, exc)
    return flash.redirect(CONTACTS, message="Đã xóa ca trực")
