"""What a text message costs: the GSM-7 alphabet (160 characters, 153 per part of a long
message), UCS-2 for Vietnamese with diacritics (70, 67 per part), and Vietnamese without
diacritics (``Hồ sơ đã có kết quả`` → ``Ho so da co ket qua``), which is what fits one part."""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass
from typing import Literal

Encoding = Literal["gsm7", "ucs2"]

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")
"""Characters of the extension table: each takes two septets (an escape and the character)."""

SINGLE, MULTI = {"gsm7": 160, "ucs2": 70}, {"gsm7": 153, "ucs2": 67}


@dataclass(frozen=True)
class Cost:
    """What a text takes: its characters (as the phone counts them), encoding and parts."""

    characters: int
    encoding: Encoding
    segments: int
    per_segment: int

    @property
    def limit(self) -> int:
        """Characters that fit in the parts it already takes."""
        return self.per_segment * self.segments if self.segments > 1 else SINGLE[self.encoding]


def strip_diacritics(text: str) -> str:
    """Vietnamese without diacritics (đ → d, Ư → U, à → a, …): every letter loses its marks,
    and what is then still outside GSM-7 becomes ``?``."""
    text = text.replace("đ", "d").replace("Đ", "D")
    out = []
    for ch in text:
        if ch.isascii():
            out.append(ch)
            continue
        base = "".join(c for c in unicodedata.normalize("NFD", ch) if not unicodedata.combining(c))
        base = {
            "\u2018": "'",
            "\u2019": "'",
            "\u201c": '"',
            "\u201d": '"',
            "\u2013": "-",
            "\u2014": "-",
            "\u00a0": " ",
        }.get(base, base)
        out.append(base if base and is_gsm7(base) else "?")
    return "".join(out)


def is_gsm7(text: str) -> bool:
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)


def septets(text: str) -> int:
    return sum(2 if ch in GSM7_EXTENSION else 1 for ch in text)


def cost(text: str) -> Cost:
    """The encoding a text needs (GSM-7 when every character is in it) and its parts."""
    if is_gsm7(text):
        n, encoding = septets(text), "gsm7"
    else:
        n, encoding = len(text.encode("utf-16-be")) // 2, "ucs2"
    segments = 1 if n <= SINGLE[encoding] else math.ceil(n / MULTI[encoding])
    return Cost(
        characters=n,
        encoding=encoding,
        segments=segments,  # type: ignore[arg-type]
        per_segment=SINGLE[encoding] if segments == 1 else MULTI[encoding],
    )


def normalise_reply(text: str) -> str:
    """A citizen's reply as the rules read it: no diacritics, upper case, single spaces."""
    return " ".join(strip_diacritics(text).upper().split())
