"""Vietnamese mobile numbers: validated, stored as E.164 (+84…), masked wherever they are shown
to anyone but the officer handling the dossier (pages, logs, exports)."""

from __future__ import annotations

import re

from thanthien.hub.services.errors import Invalid

# mobile prefixes after the trunk 0 (2026): 03x Viettel, 05x Vietnamobile/Reddi/Gmobile,
# 07x Mobifone, 08x Vinaphone/Viettel/Mobifone/Itelecom, 09x all of them
MOBILE = re.compile(r"^(3[2-9]|5[2-9]|7[06-9]|8[1-9]|9\d)\d{7}$")
SEPARATORS = re.compile(r"[\s.\-()]")


def normalise(raw: str) -> str:
    """``0912 345 678``, ``+84 912345678`` or ``84912345678`` → ``+84912345678``; anything that
    is not a Vietnamese mobile number is refused (``Invalid``) with the reason."""
    digits = SEPARATORS.sub("", raw or "")
    if digits.startswith("+84"):
        national = digits[3:]
    elif digits.startswith("0084"):
        national = digits[4:]
    elif digits.startswith("84") and len(digits) == 11:
        national = digits[2:]
    elif digits.startswith("0"):
        national = digits[1:]
    else:
        raise Invalid("Số điện thoại phải là số di động Việt Nam (0xxx xxx xxx hoặc +84…)")
    if not national.isdigit() or not MOBILE.match(national):
        raise Invalid(
            "Số điện thoại không phải số di động Việt Nam hợp lệ (10 chữ số, đầu số 03, 05, 07, 08 hoặc 09)"
        )
    return "+84" + national


def national(phone: str) -> str:
    """``+84912345678`` → ``0912345678`` (how people read and type it)."""
    return "0" + phone[3:] if phone.startswith("+84") else phone


def mask(phone: str | None) -> str:
    """``+84912345678`` → ``091****678``: enough to tell numbers apart, not to call one."""
    if not phone:
        return "—"
    n = national(phone)
    return n[:3] + "*" * max(len(n) - 6, 1) + n[-3:] if len(n) > 6 else "*" * len(n)


def parse_sender(raw: str) -> str | None:
    """A sender as a gateway gives it (``+84…``, ``84…``, ``0…``), or ``None`` when it is no
    Vietnamese mobile number (a brand name, a short code)."""
    try:
        return normalise(raw)
    except Invalid:
        return None
