"""SMS segment counting: GSM-7 (extension characters count double) 160/153, else UCS-2 70/67."""

from __future__ import annotations

from dataclasses import dataclass

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Characters of the extension table take an escape plus the character: two septets each.
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")

GSM7 = "GSM-7"
UCS2 = "UCS-2"


@dataclass(frozen=True)
class SegmentInfo:
    encoding: str
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    segments: int

    @property
    def per_segment(self) -> int:
        if self.encoding == GSM7:
            return 160 if self.segments <= 1 else 153
        return 70 if self.segments <= 1 else 67


def count(body: str) -> SegmentInfo:
    septets = 0
    for ch in body:
        if ch in GSM7_BASIC:
            septets += 1
        elif ch in GSM7_EXTENSION:
            septets += 2
        else:
            return _ucs2(body)
    if septets == 0:
        return SegmentInfo(GSM7, 0, 0)
    segments = 1 if septets <= 160 else _split_septets(body)
    return SegmentInfo(GSM7, septets, segments)


def _split_septets(body: str) -> int:
    # An escape sequence is never split across parts, so concatenated parts may hold 152 septets.
    parts, used = 1, 0
    for ch in body:
        width = 2 if ch in GSM7_EXTENSION else 1
        if used + width > 153:
            parts += 1
            used = 0
        used += width
    return parts


def _ucs2(body: str) -> SegmentInfo:
    units = len(body.encode("utf-16-le")) // 2
    if units <= 70:
        return SegmentInfo(UCS2, units, 1 if units else 0)
    # A surrogate pair (emoji) is never split across parts either.
    parts, used = 1, 0
    for ch in body:
        width = 2 if ord(ch) > 0xFFFF else 1
        if used + width > 67:
            parts += 1
            used = 0
        used += width
    return SegmentInfo(UCS2, units, parts)
