"""The notice templates the admin edits: one per dossier event kind, Vietnamese, without
diacritics by default (one GSM-7 part), with an accented UCS-2 option; at most three
parameters each (what telcos register for a customer-care template); whether the kind is
urgent (may go outside 07:00-22:00); whether the result notice asks for a rating."""

from __future__ import annotations

import string
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy.orm import Session

from thanthien.hub.db.models import SmsTemplate
from thanthien.hub.notify.settings import SmsSettings
from thanthien.hub.roles import ADMINS, Actor, require
from thanthien.hub.services import sms_text
from thanthien.hub.services.errors import Invalid, NotFound
from thanthien.hub.tenancy import require_province

KINDS: Final[dict[str, str]] = {
    "received": "Đã tiếp nhận hồ sơ",
    "supplement": "Cần bổ sung hồ sơ",
    "result_ready": "Đã có kết quả",
    "due_soon": "Sắp đến hạn trả kết quả",
    "overdue": "Quá hạn trả kết quả",
}
"""Dossier event kinds that send a notice, as the pages name them."""

PLACEHOLDERS: Final[dict[str, str]] = {
    "ma_ho_so": "mã hồ sơ",
    "thu_tuc": "tên thủ tục",
    "ho_ten": "họ tên người nộp",
    "han": "hạn trả kết quả (ngày giờ)",
    "thieu": "giấy tờ cần bổ sung",
    "co_quan": "tên cơ quan",
}
MAX_PARAMETERS: Final = 3
MAX_BODY: Final = 480
MAX_SEGMENTS: Final = 5

DEFAULTS: Final[dict[str, str]] = {
    "received": "Ho so {ma_ho_so} da duoc tiep nhan. Hen tra ket qua: {han}.",
    "supplement": "Ho so {ma_ho_so} can bo sung: {thieu}. Moi ong/ba den {co_quan}.",
    "result_ready": "Ho so {ma_ho_so} da co ket qua. Moi ong/ba den {co_quan} de nhan.",
    "due_soon": "Ho so {ma_ho_so} sap den han tra ket qua ({han}).",
    "overdue": "Ho so {ma_ho_so} da qua han tra ket qua. {co_quan} xin loi ong/ba va dang khan truong "
    "giai quyet.",
}
RATING_LINE: Final = "Danh gia phuc vu: tra loi 1-4 (4: rat hai long, 1: khong hai long)."
SAMPLE: Final[dict[str, str]] = {
    "ma_ho_so": "000.00.12.H15-261201-0001",
    "thu_tuc": "Chứng thực bản sao",
    "ho_ten": "Lò Văn Minh",
    "han": "03/12 16:00",
    "thieu": "ban sao CCCD",
    "co_quan": "Bo phan mot cua",
}


@dataclass(frozen=True)
class Template:
    kind: str
    body: str
    unicode: bool
    urgent: bool
    ask_rating: bool
    custom: bool  # False: the built-in default


@dataclass(frozen=True)
class Rendered:
    text: str
    cost: sms_text.Cost


def brand_in_text(cfg: SmsSettings) -> str | None:
    """The brand the text itself must carry: none over SMPP (it is the sender there), the
    brand name over a modem (a SIM card sends from its own number)."""
    return None if cfg.gateway == "smpp" else cfg.brand


def fields_of(body: str) -> list[str]:
    try:
        return [name for _lit, name, _spec, _conv in string.Formatter().parse(body) if name is not None]
    except ValueError as exc:
        raise Invalid(f"Mẫu tin nhắn sai cú pháp (dấu ngoặc nhọn): {exc}") from exc


def check_body(body: str) -> str:
    body = " ".join(body.split())
    if not body:
        raise Invalid("Nội dung mẫu tin nhắn không được để trống")
    if len(body) > MAX_BODY:
        raise Invalid(f"Mẫu tin nhắn dài quá {MAX_BODY} ký tự")
    names = fields_of(body)
    unknown = sorted({n for n in names if n not in PLACEHOLDERS})
    if unknown:
        known = ", ".join("{" + k + "}" for k in PLACEHOLDERS)
        raise Invalid(f"Tham số không có: {', '.join('{' + u + '}' for u in unknown)}. Dùng được: {known}")
    if len(set(names)) > MAX_PARAMETERS:
        raise Invalid(
            f"Mỗi mẫu tin chăm sóc khách hàng có tối đa {MAX_PARAMETERS} tham số "
            "(quy định đăng ký mẫu của nhà mạng)"
        )
    return body


def get(session: Session, kind: str) -> Template:
    if kind not in KINDS:
        raise NotFound(f"Không có loại tin nhắn {kind!r}")
    row = session.get(SmsTemplate, kind)
    if row is None:
        return Template(
            kind=kind,
            body=DEFAULTS[kind],
            unicode=False,
            urgent=False,
            ask_rating=kind == "result_ready",
            custom=False,
        )
    return Template(
        kind=kind,
        body=row.body,
        unicode=row.unicode,
        urgent=row.urgent,
        ask_rating=row.ask_rating,
        custom=True,
    )


def all_templates(session: Session) -> list[Template]:
    return [get(session, kind) for kind in KINDS]


def update(
    session: Session,
    *,
    actor: Actor,
    kind: str,
    body: str,
    unicode: bool,
    urgent: bool,
    ask_rating: bool,
    now: datetime,
    brand: str | None,
) -> Template:
    """The admin's text for ``kind``; refused when it would not fit ``MAX_SEGMENTS`` parts with
    the sample values. The templates serve every commune: only a province admin changes them."""
    require(actor, ADMINS)
    require_province(actor)
    get(session, kind)
    body = check_body(body)
    if ask_rating and kind != "result_ready":
        raise Invalid("Chỉ tin nhắn 'Đã có kết quả' mới kèm lời mời đánh giá")
    draft = Template(kind=kind, body=body, unicode=unicode, urgent=urgent, ask_rating=ask_rating, custom=True)
    rendered = render(draft, SAMPLE, brand=brand)
    if rendered.cost.segments > MAX_SEGMENTS:
        raise Invalid(f"Tin nhắn mẫu chiếm {rendered.cost.segments} phần, quá {MAX_SEGMENTS}")
    row = session.get(SmsTemplate, kind) or SmsTemplate(kind=kind)
    row.body, row.unicode, row.urgent, row.ask_rating = body, unicode, urgent, ask_rating
    row.updated_at, row.updated_by = now, actor.username
    session.add(row)
    return draft


def reset(session: Session, *, actor: Actor, kind: str) -> Template:
    require(actor, ADMINS)
    require_province(actor)
    row = session.get(SmsTemplate, kind)
    if row is not None:
        session.delete(row)
        session.flush()
    return get(session, kind)


def render(template: Template, values: dict[str, str], *, brand: str | None) -> Rendered:
    """The message as the phone shows it: ``BRAND: text`` (the brand in the text when the
    gateway cannot send it as the sender, ``brand=None`` when it does), the rating line when
    asked, without diacritics unless the template is accented."""
    names = set(fields_of(template.body))
    text = template.body.format_map({n: " ".join(str(values.get(n, "")).split()) for n in names})
    if template.ask_rating:
        text = f"{text} {RATING_LINE}"
    if brand:
        text = f"{brand}: {text}"
    if not template.unicode:
        text = sms_text.strip_diacritics(text)
    return Rendered(text=text, cost=sms_text.cost(text))


def preview(body: str, *, unicode: bool, ask_rating: bool, brand: str | None) -> Rendered:
    """What the editor shows while the admin types: the sample message and its parts."""
    draft = Template(
        kind="preview",
        body=check_body(body),
        unicode=unicode,
        urgent=False,
        ask_rating=ask_rating,
        custom=True,
    )
    return render(draft, SAMPLE, brand=brand)
