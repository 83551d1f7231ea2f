"""What a message costs, which numbers are mobile numbers, how they are masked, and the
template rules (no database)."""

from __future__ import annotations

import pytest

from thanthien.hub.notify.settings import SmsSettings
from thanthien.hub.services import phones, sms_templates, sms_text
from thanthien.hub.services.errors import Invalid


def test_vietnamese_without_diacritics_is_plain_gsm7():
    assert sms_text.strip_diacritics("Hồ sơ đã có kết quả, Đinh Thị Là") == "Ho so da co ket qua, Dinh Thi La"


@pytest.mark.parametrize(
    ("text", "encoding", "segments"),
    [
        ("a" * 160, "gsm7", 1),
        ("a" * 161, "gsm7", 2),
        ("a" * 306, "gsm7", 2),
        ("a" * 307, "gsm7", 3),
        ("ơ" * 70, "ucs2", 1),
        ("ơ" * 71, "ucs2", 2),
        ("ơ" * 134, "ucs2", 2),
        ("€" * 80, "gsm7", 1),
        ("€" * 81, "gsm7", 2),
    ],
)
def test_a_text_takes_the_parts_of_its_encoding(text, encoding, segments):
    cost = sms_text.cost(text)
    assert (cost.encoding, cost.segments) == (encoding, segments)


@pytest.mark.parametrize(
    "raw", ["0912345678", "0912 345 678", "+84912345678", "84912345678", "0084-912-345-678", "(091) 234.5678"]
)
def test_vietnamese_mobile_numbers_in_every_usual_form_become_one_e164_number(raw):
    assert phones.normalise(raw) == "+84912345678"


@pytest.mark.parametrize(
    "raw", ["02153812345", "0112345678", "091234567", "09123456789", "+1 415 555 0100", "abc", ""]
)
def test_landlines_foreign_and_malformed_numbers_are_refused(raw):
    with pytest.raises(Invalid):
        phones.normalise(raw)


def test_a_masked_number_shows_only_its_first_and_last_three_digits():
    assert phones.mask("+84912345678") == "091****678"


def test_the_default_templates_fit_one_gsm7_part_with_the_sample_values():
    cfg = SmsSettings(brand="UBNDMUONGANG"[:11])
    for kind in sms_templates.KINDS:
        template = sms_templates.Template(
            kind=kind,
            body=sms_templates.DEFAULTS[kind],
            unicode=False,
            urgent=False,
            ask_rating=False,
            custom=False,
        )
        rendered = sms_templates.render(
            template, sms_templates.SAMPLE, brand=sms_templates.brand_in_text(cfg)
        )
        assert (kind, rendered.cost.encoding, rendered.cost.segments) == (kind, "gsm7", 1), rendered.text


def test_every_message_over_a_modem_begins_with_the_brand_name():
    template = sms_templates.Template(
        kind="received", body="Ho so {ma_ho_so}", unicode=False, urgent=False, ask_rating=False, custom=False
    )
    rendered = sms_templates.render(template, {"ma_ho_so": "X1"}, brand="UBND MA")
    assert rendered.text == "UBND MA: Ho so X1"


def test_a_brand_name_longer_than_eleven_characters_is_refused_by_the_settings():
    with pytest.raises(ValueError, match="brand"):
        SmsSettings(brand="UBND MUONG ANG")


def test_an_accented_template_is_sent_in_ucs2_with_its_diacritics():
    template = sms_templates.Template(
        kind="received",
        body="Hồ sơ {ma_ho_so} đã được tiếp nhận",
        unicode=True,
        urgent=False,
        ask_rating=False,
        custom=True,
    )
    rendered = sms_templates.render(template, {"ma_ho_so": "X1"}, brand=None)
    assert (rendered.text, rendered.cost.encoding) == ("Hồ sơ X1 đã được tiếp nhận", "ucs2")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("Ho so {ma}", "Tham số không có"),
        ("{ma_ho_so} {han} {thieu} {ho_ten}", "tối đa 3 tham số"),
        ("Ho so {ma_ho_so", "sai cú pháp"),
    ],
)
def test_a_template_with_unknown_or_too_many_parameters_is_refused(body, reason):
    with pytest.raises(Invalid, match=reason):
        sms_templates.check_body(body)
