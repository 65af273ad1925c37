"""Property tests of messaging.segments against an independent reference written the other way round:
the body is first turned into its wire units (an escape + char pair for GSM-7 extension characters, a
surrogate pair for astral characters), then the units are cut into parts, pulling a pair that would
straddle a boundary into the next part."""

from hypothesis import example, given, settings
from hypothesis import strategies as st

from messaging import segments

BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)  # GSM 03.38 default alphabet, typed from the spec table (ESC 0x1B excluded)
EXTENSION = "\f^{}\\[~]|€"  # GSM 03.38 extension table


def reference(body: str) -> tuple[str, int, int]:
    if all(ch in BASIC or ch in EXTENSION for ch in body):
        units = []
        for ch in body:
            units += [("ESC", True), (ch, False)] if ch in EXTENSION else [(ch, False)]
        single, multi, encoding = 160, 153, "GSM-7"
    else:
        units = []
        for ch in body:
            code = ord(ch)
            if code > 0xFFFF:
                code -= 0x10000
                units += [(0xD800 + (code >> 10), True), (0xDC00 + (code & 0x3FF), False)]
            else:
                units.append((code, False))
        single, multi, encoding = 70, 67, "UCS-2"
    if not units:
        return encoding if encoding == "UCS-2" else "GSM-7", 0, 0
    if len(units) <= single:
        return encoding, len(units), 1
    parts, start = 0, 0
    while start < len(units):
        end = min(start + multi, len(units))
        # the first half of a pair may not end a part
        if end < len(units) and units[end - 1][1]:
            end -= 1
        parts += 1
        start = end
    return encoding, len(units), parts


gsm_text = st.text(alphabet=st.sampled_from(BASIC + EXTENSION), max_size=700)
gsm_basic_text = st.text(alphabet=st.sampled_from(BASIC), max_size=700)
any_text = st.text(
    alphabet=st.one_of(
        st.sampled_from(BASIC + EXTENSION), st.characters(codec="utf-8"), st.sampled_from("😀👍🏽𝄞中文ç")
    ),
    max_size=400,
)


@settings(max_examples=500)
@given(any_text)
@example("a" * 160)
@example("a" * 161)
@example("€" * 80)
@example("a" * 152 + "€")
@example("a" * 159 + "€")
@example("é" * 306)
@example("中" * 70)
@example("中" * 71)
@example("😀" * 35)
@example("a" * 66 + "😀" + "b" * 10)
@example("")
def test_count_matches_reference(body):
    info = segments.count(body)
    assert (info.encoding, info.units, info.segments) == reference(body)


@given(gsm_basic_text)
def test_basic_gsm_is_160_then_153(body):
    n = len(body)
    assert segments.count(body).segments == (0 if n == 0 else 1 if n <= 160 else -(-n // 153))


@given(gsm_text)
def test_extension_chars_count_double(body):
    info = segments.count(body)
    assert info.encoding == segments.GSM7
    assert info.units == len(body) + sum(ch in EXTENSION for ch in body)


@given(st.text(alphabet=st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF), max_size=400))
def test_bmp_ucs2_is_70_then_67(body):
    n = len(body)
    assert segments.count(body).segments == (0 if n == 0 else 1 if n <= 70 else -(-n // 67))


@given(st.integers(min_value=1, max_value=200))
def test_surrogate_pairs_count_two_units_and_are_never_split(n):
    body = "😀" * n
    info = segments.count(body)
    assert info.units == 2 * n
    # 33 emoji (66 units) fit a 67-unit part, never 33.5
    assert info.segments == (1 if 2 * n <= 70 else -(-n // 33))


@given(any_text, any_text)
def test_more_text_never_needs_fewer_segments(a, b):
    assert segments.count(a + b).segments >= segments.count(a).segments
