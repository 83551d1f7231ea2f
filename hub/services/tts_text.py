"""What the TTS engine is given to read: the officer's text with abbreviations spelled out
(the pronunciation dictionary) and numbers, dates, times, money, percentages and phone
numbers written as Vietnamese words. Pure functions (no DB, no engine), tested on fixed facts.

espeak-ng reads "UBND" letter by letter and "0912 345 678" as "chín trăm mười hai…", and a
resident who hears the wrong number calls the wrong office; so the text is normalised first:

* the dictionary (:data:`DEFAULT_LEXICON`, then the admin's entries, which win): whole words,
  case as written (``UBND`` -> "ủy ban nhân dân");
* phone numbers (``0912 345 678``, ``0912.345.678``, ``+84 912 345 678``, ``02153 123 456``): digit
  by digit, in the groups written (an unbroken 10-digit number as 4-3-3), with pauses;
* dates ``2/9/2026``, ``02-09-2026``, ``2/9`` (a dash or a dot only with the year): "ngày hai
  tháng chín năm hai nghìn không trăm hai mươi sáu" (month 4 is "tư"); "ngày" is not said twice;
* times ``07:30``, ``7h30``, ``7h``, ``19g15``: "bảy giờ ba mươi phút";
* money ``50.000đ`` / ``50.000 VNĐ`` / ``50.000 đồng``: "năm mươi nghìn đồng"; ``10%``: "mười phần trăm";
* numbers: ``1.500.000`` (dots group thousands) "một triệu năm trăm nghìn", ``2,5`` "hai phẩy năm",
  ``105`` "một trăm linh năm", ``21`` "hai mươi mốt", ``15`` "mười lăm"; a range ``7-9`` "bảy đến chín".
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping

DIGITS = ("không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín")
MONTHS = ("", "một", "hai", "ba", "tư", "năm", "sáu", "bảy", "tám", "chín", "mười", "mười một", "mười hai")
SCALES = ("", "nghìn", "triệu", "tỷ", "nghìn tỷ", "triệu tỷ")

DEFAULT_LEXICON: dict[str, str] = {
    "UBND": "ủy ban nhân dân",
    "HĐND": "hội đồng nhân dân",
    "UBMTTQ": "ủy ban mặt trận tổ quốc",
    "MTTQ": "mặt trận tổ quốc",
    "TDP": "tổ dân phố",
    "KP": "khu phố",
    "BHYT": "bảo hiểm y tế",
    "BHXH": "bảo hiểm xã hội",
    "CCCD": "căn cước công dân",
    "SĐT": "số điện thoại",
    "TYT": "trạm y tế",
    "TTYT": "trung tâm y tế",
    "THCS": "trung học cơ sở",
    "THPT": "trung học phổ thông",
    "PCCC": "phòng cháy chữa cháy",
    "CSGT": "cảnh sát giao thông",
    "HTX": "hợp tác xã",
    "GPMB": "giải phóng mặt bằng",
    "TP.": "thành phố",
}
"""What every hub reads out this way unless the admin's dictionary says otherwise."""

TERM_MAX, SPOKEN_MAX = 64, 255
_TERM_OK = re.compile(r"^[\w.\-/&]+(?: [\w.\-/&]+)*$")


def check_entry(term: str, spoken: str) -> tuple[str, str]:
    """A dictionary entry as stored (NFC, trimmed), or ValueError with the Vietnamese reason."""
    term = unicodedata.normalize("NFC", " ".join(term.split()))
    spoken = unicodedata.normalize("NFC", " ".join(spoken.split()))
    if not term or len(term) > TERM_MAX or not _TERM_OK.match(term) or not any(c.isalpha() for c in term):
        raise ValueError(f"Từ viết tắt phải có chữ cái, dài tối đa {TERM_MAX} ký tự, chỉ gồm chữ, số "
                         "và . - / &.")
    if not spoken or len(spoken) > SPOKEN_MAX or not any(c.isalpha() for c in spoken):
        raise ValueError(f"Cách đọc phải có chữ, dài tối đa {SPOKEN_MAX} ký tự.")
    if any(not c.isprintable() for c in spoken):
        raise ValueError("Cách đọc không được chứa ký tự điều khiển.")
    return term, spoken


class Lexicon:
    """The dictionary in force: the defaults, overridden and extended by the admin's entries."""

    def __init__(self, entries: Mapping[str, str] | None = None, *, defaults: bool = True) -> None:
        self.entries: dict[str, str] = {**(DEFAULT_LEXICON if defaults else {}), **(entries or {})}
        terms = sorted(self.entries, key=len, reverse=True)
        self._pattern = (re.compile("|".join(rf"(?<!\w){re.escape(t)}(?![\w])" for t in terms))
                         if terms else None)

    def apply(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(lambda m: self.entries[m.group(0)], text)


# -- numbers --------------------------------------------------------------------------------
def _triple(n: int, full: bool) -> list[str]:
    """0-999; ``full``: a group after a higher one, read with its hundreds ("không trăm linh năm")."""
    h, t, u = n // 100, n // 10 % 10, n % 10
    words: list[str] = []
    if h or full:
        words += [DIGITS[h], "trăm"]
    if t == 0:
        if u:
            if h or full:
                words.append("linh")
            words.append(DIGITS[u])
    elif t == 1:
        words.append("mười")
        if u:
            words.append("lăm" if u == 5 else DIGITS[u])
    else:
        words += [DIGITS[t], "mươi"]
        if u:
            words.append({1: "mốt", 5: "lăm"}.get(u, DIGITS[u]))
    return words


def number_words(n: int) -> str:
    """A whole number in Vietnamese words: 105 "một trăm linh năm", 2026 "hai nghìn không trăm
    hai mươi sáu", 1500000 "một triệu năm trăm nghìn"."""
    if n < 0:
        return "âm " + number_words(-n)
    if n == 0:
        return "không"
    groups: list[int] = []
    while n:
        groups.append(n % 1000)
        n //= 1000
    if len(groups) > len(SCALES):
        return digits_words(str(sum(g * 1000**i for i, g in enumerate(groups))))
    words: list[str] = []
    top = len(groups) - 1
    for i in range(top, -1, -1):
        g = groups[i]
        if g == 0:
            continue
        words += _triple(g, full=i < top)
        if SCALES[i]:
            words.append(SCALES[i])
    return " ".join(words)


def digits_words(digits: str) -> str:
    return " ".join(DIGITS[int(d)] for d in digits if d.isdigit())


def _decimal(text: str) -> str:
    whole, frac = text.split(",", 1)
    short = len(frac) <= 2 and not frac.startswith("0")
    frac_words = number_words(int(frac)) if short else digits_words(frac)
    return f"{_integer(whole)} phẩy {frac_words}"


def _integer(text: str) -> str:
    digits = text.replace(".", "")
    if len(digits) > 1 and digits.startswith("0"):
        return digits_words(digits)
    return number_words(int(digits))


# -- the patterns, in the order they apply ----------------------------------------------------
_NUM = r"\d{1,3}(?:\.\d{3})+|\d+"
_PHONE = re.compile(r"(?<![\w.,:/])(\+84|0)((?:[ .\-]?\d){8,10})(?![\w.,:/]?\d)")
_DATE = re.compile(r"(?<![\w/.\-])(ngày\s+)?(\d{1,2})([/\-.])(\d{1,2})(?:\3(\d{4}))?(?![\w/]|[.\-]\d)")
_TIME = re.compile(r"(?<![\w:])([01]?\d|2[0-3])(?::([0-5]\d)|\s?[hg]\s?([0-5]\d)?(?:'|p)?)(?![\w:])")
_MONEY = re.compile(rf"(?<![\w.,])({_NUM})(?:,(\d+))?\s?(?:đồng|VNĐ|VND|đ)(?!\w)")
_PERCENT = re.compile(rf"(?<![\w.,])({_NUM})(?:,(\d+))?\s?%")
_RANGE = re.compile(r"(?<![\w.,/:\-])(\d{1,4})\s?[-–]\s?(\d{1,4})(?![\w.,/:\-])")
_DECIMAL = re.compile(rf"(?<![\w.,])({_NUM}),(\d+)(?![\w,]|\.\d)")
_INTEGER = re.compile(rf"(?<![\w.,])({_NUM})(?![\w]|[.,]\d)")


def _phone(m: re.Match[str]) -> str:
    prefix, rest = m.group(1), m.group(2)
    digits = re.sub(r"\D", "", rest)
    if prefix == "0" and len(digits) not in (9, 10):
        return m.group(0)
    groups = [g for g in re.split(r"[ .\-]", rest.strip(" .-")) if g]
    if len(groups) == 1:  # unbroken: 4-3-3 (0912 345 678), 4-3-4 for an 11-digit landline
        whole = ("0" if prefix == "0" else "") + digits
        cut = [whole[:4], whole[4:7], whole[7:]] if prefix == "0" else [whole[:3], whole[3:6], whole[6:]]
        groups = [g for g in cut if g]
        head = "cộng tám bốn, " if prefix == "+84" else ""
        return head + ", ".join(digits_words(g) for g in groups)
    if prefix == "0":
        groups[0] = "0" + groups[0]
        return ", ".join(digits_words(g) for g in groups)
    return "cộng tám bốn, " + ", ".join(digits_words(g) for g in groups)


def _date(m: re.Match[str]) -> str:
    said, day, month, year = m.group(1), int(m.group(2)), int(m.group(4)), m.group(5)
    if not (1 <= day <= 31 and 1 <= month <= 12) or (year is None and m.group(3) != "/"):
        return m.group(0)
    text = f"ngày {number_words(day)} tháng {MONTHS[month]}"
    if year is not None:
        text += f" năm {number_words(int(year))}"
    return (said[: -len(said.lstrip())] if said and said[0].isspace() else "") + text


def _time(m: re.Match[str]) -> str:
    hours = int(m.group(1))
    minutes = m.group(2) if m.group(2) is not None else m.group(3)
    text = f"{number_words(hours)} giờ"
    if minutes is not None and int(minutes):
        text += f" {number_words(int(minutes))} phút"
    return text


def _amount(whole: str, frac: str | None) -> str:
    return _decimal(f"{whole},{frac}") if frac else _integer(whole)


def normalise(text: str, lexicon: Lexicon | None = None) -> str:
    """The text as the engine should read it (see the module's docstring)."""
    text = unicodedata.normalize("NFC", text)
    text = (lexicon or Lexicon()).apply(text)
    text = _PHONE.sub(_phone, text)
    text = _DATE.sub(_date, text)
    text = _TIME.sub(_time, text)
    text = _MONEY.sub(lambda m: f"{_amount(m.group(1), m.group(2))} đồng", text)
    text = _PERCENT.sub(lambda m: f"{_amount(m.group(1), m.group(2))} phần trăm", text)
    text = _RANGE.sub(lambda m: f"{_integer(m.group(1))} đến {_integer(m.group(2))}", text)
    text = _DECIMAL.sub(lambda m: _decimal(f"{m.group(1)},{m.group(2)}"), text)
    text = _INTEGER.sub(lambda m: _integer(m.group(1)), text)
    return text
