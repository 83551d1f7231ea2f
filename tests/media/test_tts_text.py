"""The TTS text normaliser on fixed facts: how Vietnamese reads numbers, dates, times, money,
percentages and phone numbers, and the pronunciation dictionary."""

from __future__ import annotations

import pytest

from thanthien.hub.services.tts_text import Lexicon, check_entry, normalise, number_words


@pytest.mark.parametrize(("n", "words"), [
    (0, "không"), (10, "mười"), (11, "mười một"), (15, "mười lăm"), (21, "hai mươi mốt"),
    (25, "hai mươi lăm"), (105, "một trăm linh năm"), (115, "một trăm mười lăm"),
    (1005, "một nghìn không trăm linh năm"), (2026, "hai nghìn không trăm hai mươi sáu"),
    (15000, "mười lăm nghìn"), (1500000, "một triệu năm trăm nghìn"),
    (1000005, "một triệu không trăm linh năm"), (3000000000, "ba tỷ"),
])
def test_numbers_are_read_as_vietnamese_words(n, words):
    assert number_words(n) == words


def test_abbreviations_are_read_out_from_the_built_in_dictionary():
    assert normalise("UBND xã và TDP 3 nhắc đóng BHYT") == \
        "ủy ban nhân dân xã và tổ dân phố ba nhắc đóng bảo hiểm y tế"


def test_the_admins_entry_wins_over_the_built_in_one_and_matches_whole_words_only():
    lex = Lexicon({"TDP": "tổ dân phố số", "HTX": "hợp tác xã nông nghiệp"})
    assert normalise("TDP, HTX và HTXA", lex) == "tổ dân phố số, hợp tác xã nông nghiệp và HTXA"


def test_a_date_is_read_with_day_month_and_year_and_month_four_is_tu():
    assert normalise("Họp ngày 30/4/2026.") == \
        "Họp ngày ba mươi tháng tư năm hai nghìn không trăm hai mươi sáu."


def test_a_date_without_the_word_ngay_gets_it():
    assert normalise("hạn 02-09-2026") == "hạn ngày hai tháng chín năm hai nghìn không trăm hai mươi sáu"


@pytest.mark.parametrize(("text", "spoken"), [
    ("lúc 07:30", "lúc bảy giờ ba mươi phút"), ("lúc 7h30", "lúc bảy giờ ba mươi phút"),
    ("lúc 8h sáng", "lúc tám giờ sáng"), ("lúc 19:00", "lúc mười chín giờ"),
    ("lúc 07:05", "lúc bảy giờ năm phút"),
])
def test_times_are_read_in_hours_and_minutes(text, spoken):
    assert normalise(text) == spoken


@pytest.mark.parametrize(("text", "spoken"), [
    ("gọi 0912 345 678", "gọi không chín một hai, ba bốn năm, sáu bảy tám"),
    ("gọi 0912.345.678", "gọi không chín một hai, ba bốn năm, sáu bảy tám"),
    ("gọi 0912345678", "gọi không chín một hai, ba bốn năm, sáu bảy tám"),
    ("gọi +84 912 345 678", "gọi cộng tám bốn, chín một hai, ba bốn năm, sáu bảy tám"),
])
def test_phone_numbers_are_read_digit_by_digit_in_groups(text, spoken):
    assert normalise(text) == spoken


def test_money_percent_decimals_and_ranges_are_read_out():
    assert normalise("Phí 50.000đ, giảm 10%, nặng 2,5 kg, từ 7-9 giờ") == \
        "Phí năm mươi nghìn đồng, giảm mười phần trăm, nặng hai phẩy năm kg, từ bảy đến chín giờ"


def test_a_version_like_token_is_left_alone():
    assert normalise("bản v1.2") == "bản v1.2"


@pytest.mark.parametrize(("term", "spoken"),
                         [("", "x"), ("UB ND!", "ủy ban"), ("123", "một"), ("UBND", "  ")])
def test_a_bad_dictionary_entry_is_refused_with_the_reason(term, spoken):
    with pytest.raises(ValueError, match="phải có"):
        check_entry(term, spoken)
