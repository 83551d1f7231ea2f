"""Request and response bodies of the dossier, SMS and alarm-contact routes (issue 17)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from thanthien.hub.services import phones
from thanthien.hub.services.sms_templates import MAX_BODY


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class DossierIn(Body):
    code: str = Field(min_length=1, max_length=64, description="Mã hồ sơ (the one-stop software's code).")
    procedure: str = Field(min_length=1, max_length=300, description="Tên thủ tục.")
    citizen_name: str = Field(min_length=1, max_length=200)
    phone: str = Field(min_length=9, max_length=20, description="A Vietnamese mobile number (0…, 84…, +84…).")
    counter: str | None = Field(None, max_length=63, description="The counter's code.")
    officer_id: int | None = Field(None, ge=1, le=2**31 - 1, description="The officer handling it.")
    due_at: AwareDatetime | None = Field(None, description="Hạn trả kết quả.")
    notify: bool = Field(True, description="Send the 'received' notice.")


class DossierOut(Out):
    id: int
    code: str
    procedure: str
    counter_code: str | None
    officer_id: int | None
    officer_name: str | None
    citizen_name: str
    phone: str = Field(description="In full for the officer handling the dossier, masked for everyone else.")
    phone_masked: bool
    status: str
    received_at: datetime
    due_at: datetime | None
    source: str
    created_by: str
    rating: int | None


class EventIn(Body):
    kind: Literal["received", "supplement", "result_ready"]
    note: str = Field("", max_length=300, description="What is missing (supplement).")
    event_id: str | None = Field(
        None,
        max_length=64,
        pattern=r"^[\w.:\-]{1,64}$",
        description="The caller's id: the same id again records nothing new.",
    )


class EventOut(Out):
    kind: str
    key: str
    at: datetime
    by: str
    note: str
    created: bool = True
    message_id: int | None
    message_status: str | None = None


class DossierDetail(DossierOut):
    events: list[EventOut]


class RatingSummaryRow(Out):
    group: str
    label: str
    counts: dict[int, int]
    total: int
    index: float | None


class TemplateIn(Body):
    body: str = Field(min_length=1, max_length=MAX_BODY)
    unicode: bool = Field(False, description="Accented Vietnamese (UCS-2, 70 characters a part).")
    urgent: bool = Field(False, description="May be sent outside 07:00-22:00.")
    ask_rating: bool = Field(False, description="Append the request to rate by replying 1-4.")


class TemplateOut(Out):
    kind: str
    label: str
    body: str
    unicode: bool
    urgent: bool
    ask_rating: bool
    custom: bool
    sample: str
    characters: int
    encoding: str
    segments: int


class PreviewIn(Body):
    body: str = Field(min_length=1, max_length=MAX_BODY)
    unicode: bool = False
    ask_rating: bool = False


class PreviewOut(Out):
    text: str
    characters: int
    encoding: str
    segments: int
    limit: int


class SmsOut(Out):
    id: int
    phone: str = Field(description="Masked.")
    audience: str
    kind: str
    body: str
    encoding: str
    segments: int
    urgent: bool
    status: str
    hold_reason: str
    created_at: datetime
    next_attempt_at: datetime
    attempts: int
    last_error: str
    gateway: str | None
    gateway_ref: str | None
    sent_at: datetime | None
    delivered_at: datetime | None
    dossier_id: int | None
    alarm_id: int | None

    @classmethod
    def of(cls, msg: object) -> SmsOut:
        out = cls.model_validate(msg)
        return out.model_copy(update={"phone": phones.mask(out.phone)})


class OptOutIn(Body):
    phone: str = Field(min_length=9, max_length=20)
    reason: str = Field("", max_length=200)


class OptOutOut(Out):
    phone: str = Field(description="Masked.")
    at: datetime
    by: str
    reason: str


class ContactIn(Body):
    name: str = Field(min_length=1, max_length=200)
    audience: Literal["it", "leader"]
    phone: str | None = Field(None, max_length=20)
    email: str | None = Field(None, max_length=200)
    rank: int = Field(1, ge=1, le=99, description="Order in the escalation chain when nobody is on call.")
    quiet_start: str | None = Field(None, pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    quiet_end: str | None = Field(None, pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    digest: bool = True
    commune: str | None = Field(
        None, max_length=63, description="The commune whose alarms reach the contact (a commune admin's: "
        "their own; none: the province's, paged for every commune)")


class ContactOut(Out):
    id: int
    name: str
    audience: str
    phone: str | None = Field(description="Masked.")
    email: str | None
    rank: int
    quiet_start: str | None
    quiet_end: str | None
    digest: bool
    active: bool


class ActiveIn(Body):
    active: bool


class OnCallIn(Body):
    contact_id: int = Field(ge=1, le=2**31 - 1)
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    rank: int = Field(1, ge=1, le=99)


class OnCallOut(Out):
    id: int
    contact_id: int
    starts_at: datetime
    ends_at: datetime
    rank: int


class EmailOut(Out):
    id: int
    to_addr: str
    subject: str
    kind: str
    alarm_id: int | None
    status: str
    created_at: datetime
    attempts: int
    last_error: str
    sent_at: datetime | None
