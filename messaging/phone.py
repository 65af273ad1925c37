"""Phone numbers: everything stored is E.164, normalized with Google's libphonenumber port."""

from __future__ import annotations

from functools import lru_cache

import phonenumbers
from django.core.exceptions import ValidationError
from phonenumbers import timezone as pn_timezone

DEFAULT_REGION = "US"
E164_MAX_DIGITS = 15


@lru_cache(maxsize=65536)
def _parse(raw: str, region: str) -> str | None:
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    # libphonenumber's metadata accepts some German numbers of 16 digits ("+4920100000000000"); E.164
    # and the carriers stop at 15.
    if len(e164) - 1 > E164_MAX_DIGITS:
        return None
    return e164


def try_normalize(raw: object, region: str = DEFAULT_REGION) -> str | None:
    """E.164 for a valid number, else None. Accepts carrier forms without '+' ("15125550100")."""
    if raw is None:
        return None
    text = str(raw).strip()
    if not text:
        return None
    digits = "".join(ch for ch in text if ch.isdigit())
    # Carriers (Sinch) send MSISDNs without the '+': 11+ digits that do not parse in the default
    # region are tried as international.
    result = _parse(text, region)
    if result is None and not text.startswith("+") and digits.startswith("00"):
        # "00" is the international prefix almost everywhere but in NANP (011), so a US-region parse
        # refuses "0044 7911 123456"; it is the same number as "+44 7911 123456" (no NANP number
        # starts with 0, so this reading is unambiguous at any length).
        result = _parse("+" + digits[2:], region)
    elif result is None and not text.startswith("+") and len(digits) >= 11:
        result = _parse("+" + digits, region)
    return result


def normalize(raw: object, region: str = DEFAULT_REGION, field: str = "phone_number") -> str:
    """E.164 or a ValidationError naming the field and the reason."""
    result = try_normalize(raw, region)
    if result is None:
        raise ValidationError({field: [f"'{raw}' is not a valid phone number."]}, code="invalid_phone")
    return result


# Short codes are 3 to 8 digits in the countries we know of (US 5-6, UK 5, FR 5, DE 4-5, IN 5-6).
SHORT_CODE_DIGITS = range(3, 9)
SENDER_MAX_LENGTH = 20  # Contact.phone_number; alphanumeric sender ids are at most 11 characters


def classify_sender(raw: object, region: str = DEFAULT_REGION) -> tuple[str, str]:
    """The sender of an inbound text → (kind, value), kind a messaging.models.SenderKind value:
    ("phone", E.164) for a valid number, ("short_code", its digits) for 3–8 digits that are not a
    number, else ("alphanumeric", the sender as given, clipped). Never an invented E.164 number."""
    text = str(raw or "").strip()
    e164 = try_normalize(text, region)
    if e164 is not None:
        return "phone", e164
    bare = text.lstrip("+")
    if bare.isdigit() and bare.isascii() and len(bare) in SHORT_CODE_DIGITS:
        return "short_code", bare
    return "alphanumeric", text[:SENDER_MAX_LENGTH]


def msisdn(e164: str) -> str:
    """Carrier form without the '+' (Sinch delivery reports use it)."""
    return e164.lstrip("+")


@lru_cache(maxsize=65536)
def time_zones_for(e164: str) -> tuple[str, ...]:
    """IANA time zones the number may be in (area-code level for NANP)."""
    try:
        zones = pn_timezone.time_zones_for_number(phonenumbers.parse(e164, None))
    except phonenumbers.NumberParseException:
        return ()
    return tuple(z for z in zones if z != pn_timezone.UNKNOWN_TIMEZONE)
