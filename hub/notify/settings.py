"""The ``[sms]`` and ``[notify]`` sections of the hub config (embedded by ``hub/settings.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

LOCAL_TIME = r"^([01]\d|2[0-3]):[0-5]\d$"
BRAND = r"^[A-Za-z0-9][A-Za-z0-9 ._&-]{0,10}$"
"""A brand name (Decree 91/2020): at most 11 characters, letters, digits and a few marks."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GammuSettings(_Section):
    """A GSM/3G USB modem driven by gammu-smsd with its FILES backend: the hub writes each
    message into ``spool_dir/outbox`` and reads ``inbox``, ``sent`` and ``error``."""

    spool_dir: Path | None = Field(
        None,
        description="gammu-smsd's folders (inbox, outbox, sent, error) live "
        "here; default: hub.data_dir/gammu.",
    )
    run_smsd: bool = Field(
        False,
        description="The hub starts gammu-smsd itself (with the device below) instead of a system service.",
    )
    device: str = Field(
        "",
        description="gammurc Device: /dev/ttyUSB0 for a modem; a folder for Gammu's "
        "dummy driver (connection none, model dummy).",
    )
    connection: str = Field("at", description="gammurc Connection: at, at115200, …; none for the dummy.")
    model: str = Field("", description="gammurc Model: empty for a modem, dummy for the dummy driver.")
    smsd_binary: str = Field("gammu-smsd", description="The gammu-smsd program (run_smsd).")


class SmppSettings(_Section):
    """An SMPP 3.4 account of a telco brand name (bind transceiver)."""

    host: str = Field("127.0.0.1", description="The SMSC's address.")
    port: int = Field(2775, ge=1, le=65535)
    system_id: str = Field("", max_length=16, description="The account (system_id).")
    password: SecretStr = Field(SecretStr(""), description="The account's password (at most 9 characters).")
    system_type: str = Field("", max_length=13)
    timeout_s: float = Field(10.0, gt=0, le=120, description="Connect and response time limit.")
    enquire_link_s: float = Field(30.0, ge=1, le=3600, description="Keep-alive interval of the bind.")


class SmsSettings(_Section):
    """Text messages to citizens (dossier notices) and to staff (alarms), under Decree 91/2020."""

    gateway: Literal["none", "gammu", "smpp"] = Field(
        "none",
        description="Where messages go: none (they wait in the outbox), gammu (a GSM modem "
        "through gammu-smsd) or smpp (a telco brand-name account).",
    )
    brand: str = Field(
        "UBND",
        pattern=BRAND,
        description="The sender's brand name, on every message (at most 11 characters).",
    )
    office_name: str = Field(
        "Bo phan mot cua", max_length=60, description="Named in the notices ({co_quan})."
    )
    window_start: str = Field(
        "07:00", pattern=LOCAL_TIME, description="Messages are sent from this local time ..."
    )
    window_end: str = Field(
        "22:00", pattern=LOCAL_TIME, description="... until this one, except kinds the admin marks urgent."
    )
    daily_cap: int = Field(
        5,
        ge=1,
        le=100,
        description="Most messages one citizen number gets a local day; more wait for the next day.",
    )
    dispatch_s: float = Field(2.0, ge=0.05, le=3600, description="How often the outbox is worked through.")
    attempts: int = Field(10, ge=1, le=1000, description="Tries per message before it is given up.")
    backoff_s: float = Field(30.0, ge=0.01, le=24 * 3600, description="First retry delay; doubles per try.")
    backoff_max_s: float = Field(3600.0, ge=0.01, le=7 * 24 * 3600, description="The longest retry delay.")
    rating_reply_days: int = Field(
        7,
        ge=1,
        le=90,
        description="A reply 1-4 rates the dossier whose notice asked for it within this many days.",
    )
    due_soon_hours: float = Field(
        3.0, gt=0, le=240, description="The 'due soon' notice goes this long before the due time."
    )
    gammu: GammuSettings = Field(default_factory=GammuSettings)
    smpp: SmppSettings = Field(default_factory=SmppSettings)


class SmtpSettings(_Section):
    host: str = Field("", description="The SMTP server; empty: no e-mail is sent (it waits).")
    port: int = Field(25, ge=1, le=65535)
    starttls: bool = Field(False, description="Upgrade the connection with STARTTLS.")
    username: str = Field("", description="Login, when the server asks for one.")
    password: SecretStr = Field(SecretStr(""))
    from_addr: str = Field("thanthien@localhost", max_length=200, description="The sender of every e-mail.")
    timeout_s: float = Field(10.0, gt=0, le=120)


class NotifySettings(_Section):
    """Alarms to people: contacts per audience, on-call shifts, escalation, quiet hours, digest."""

    min_severity: Literal["info", "warning", "major", "critical"] = Field(
        "major", description="Alarms of this severity or higher page the person on call."
    )
    escalate_after_s: float = Field(
        900.0,
        ge=1,
        le=7 * 24 * 3600,
        description="Not acknowledged this long after a page: the next contact of the chain is paged.",
    )
    repeat_s: float = Field(
        3600.0,
        ge=1,
        le=7 * 24 * 3600,
        description="Once the chain is exhausted, its last contact is paged again "
        "this often while the alarm lasts unacknowledged.",
    )
    check_s: float = Field(15.0, ge=0.05, le=3600, description="How often alarms are looked at.")
    digest_time: str = Field(
        "07:30", pattern=LOCAL_TIME, description="The daily digest of open alarms is sent at this local time."
    )
    email_attempts: int = Field(10, ge=1, le=1000, description="Tries per e-mail before it is given up.")
    email_backoff_s: float = Field(30.0, ge=0.01, le=24 * 3600, description="First retry delay; doubles.")
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
