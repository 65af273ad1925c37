"""Property tests of messaging.phone: E.164 round trip, formatting variants, junk rejected."""

import phonenumbers
import pytest
from django.core.exceptions import ValidationError
from hypothesis import assume, example, given
from hypothesis import strategies as st

from messaging.phone import msisdn, normalize, try_normalize

PNF = phonenumbers.PhoneNumberFormat

# Real, populated US/CA area codes (the factories use 512 and 737).
AREA_CODES = ["212", "305", "312", "415", "512", "617", "702", "737", "813", "917", "416", "604"]


@st.composite
def nanp_numbers(draw):
    number = f"+1{draw(st.sampled_from(AREA_CODES))}{draw(st.integers(200, 999))}{draw(st.integers(0, 9999)):04d}"
    assume(phonenumbers.is_valid_number(phonenumbers.parse(number)))
    return number


@st.composite
def world_numbers(draw):
    region = draw(st.sampled_from(sorted(phonenumbers.SUPPORTED_REGIONS)))
    kind = draw(st.sampled_from([phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE]))
    example_number = phonenumbers.example_number_for_type(region, kind)
    assume(example_number is not None)
    return phonenumbers.format_number(example_number, PNF.E164)


def _variants(e164: str) -> list[str]:
    parsed = phonenumbers.parse(e164)
    digits = msisdn(e164)
    variants = [
        e164,
        phonenumbers.format_number(parsed, PNF.INTERNATIONAL),
        phonenumbers.format_number(parsed, PNF.RFC3966),
        f"  {e164}\n",
        "00" + digits,  # the international prefix used outside North America
    ]
    if len(digits) >= 11:  # carrier MSISDN form, no '+' (shorter ones are ambiguous with US numbers)
        variants.append(digits)
    if parsed.country_code == 1:
        national = phonenumbers.format_number(parsed, PNF.NATIONAL)  # (512) 200-1234
        n = digits[1:]
        variants += [
            national,
            n,
            f"{n[:3]}-{n[3:6]}-{n[6:]}",
            f"{n[:3]}.{n[3:6]}.{n[6:]}",
            f"1 {n}",
            f"+1 ({n[:3]}) {n[3:6]}-{n[6:]}",
            f"1-{n[:3]}-{n[3:6]}-{n[6:]}",
            "011" + digits,
        ]
    return variants


@given(st.one_of(nanp_numbers(), world_numbers()))
@example("+447911123456")
def test_round_trip_and_idempotence(e164):
    assert normalize(e164) == e164
    assert normalize(normalize(e164)) == normalize(e164)


@given(st.one_of(nanp_numbers(), world_numbers()))
@example("+15122001234")
@example("+447911123456")
def test_formatting_variants_normalize_equal(e164):
    for variant in _variants(e164):
        assert try_normalize(variant) == e164, variant


@given(nanp_numbers())
def test_full_width_digits_are_the_same_number(e164):
    full_width = "".join(chr(ord(c) - ord("0") + 0xFF10) if c.isdigit() else c for c in e164)
    assert try_normalize(full_width) == e164


no_digits = st.text(st.characters(blacklist_categories=["Nd"]), max_size=30)


@given(no_digits)
@example("")
@example("   ")
@example("STOP")
@example("+")
def test_text_without_digits_is_rejected(junk):
    assert try_normalize(junk) is None
    with pytest.raises(ValidationError) as caught:
        normalize(junk, field="to")
    assert "to" in caught.value.message_dict


@given(st.text("0123456789", min_size=1, max_size=6), st.sampled_from(["", "+", "1-"]))
def test_too_short_is_rejected(digits, prefix):
    assert try_normalize(prefix + digits) is None


@given(st.text("0123456789", min_size=16, max_size=30))
@example("4902010000000000")  # "+49 (0)201...": the trunk 0 after the country code is dropped, 15 digits
@example("4920100000000000")  # libphonenumber calls this 16-digit German number valid
def test_never_more_than_15_digits(digits):
    # E.164 allows at most 15 digits; longer input is refused unless it carries a droppable trunk prefix
    result = try_normalize("+" + digits)
    assert result is None or len(result) - 1 <= 15


@given(st.text(max_size=50))
def test_never_raises_and_only_returns_e164(anything):
    result = try_normalize(anything)
    assert result is None or (result.startswith("+") and result[1:].isdigit() and len(result) <= 16)


@pytest.mark.parametrize("raw", [None, 0, "555-0100", "+1 512 000 0100", "1234567890123456789", "00", "0000000000000"])
def test_known_junk(raw):
    assert try_normalize(raw) is None
