"""Column rules of the v1 → v2 migration, as pure functions (docs/migration_v1.md, table by table)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import phonenumbers
from tzlocal.windows_tz import win_tz

from carriers.models import SECRET_CONFIG_KEYS
from messaging.status import MessageStatus as S

V1_SERVER_TZ = ZoneInfo("America/Chicago")

# Windows time-zone ids → IANA: CLDR's windowsZones table (territory "001"), as shipped and kept
# current by tzlocal (`tzlocal.windows_tz.win_tz`, generated from CLDR's windowsZones.xml; pinned
# tzlocal>=5.4 in pyproject). A few names it gives are backward links (America/Buenos_Aires); every
# result is checked to load in this Python's zone database. NULL or blank means Central (spec).
DEFAULT_IANA = "America/Chicago"


def iana_zone(windows_id: str | None) -> tuple[str, bool]:
    """(IANA zone, known). NULL/blank → Central (spec). An id no table knows, or whose zone this
    system cannot load → Central, reported per account by the caller (decision `unknown_time_zone`)."""
    if windows_id is None or not windows_id.strip():
        return DEFAULT_IANA, True
    name = windows_id.strip()
    # Windows ids are matched exactly by Windows; v1 data was typed by people, so case is forgiven.
    zone = win_tz.get(name) or _WIN_TZ_LOWER.get(name.lower())
    if zone is None and name in available_timezones():
        zone = name  # already an IANA name (some v1 rows hold one)
    if zone is None:
        return DEFAULT_IANA, False
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        return DEFAULT_IANA, False
    return zone, True


_WIN_TZ_LOWER = {k.lower(): v for k, v in win_tz.items()}


def v1_time(wall: datetime | None) -> datetime | None:
    """v1 server wall clock (America/Chicago, naive) → aware UTC.

    fold=0 is exactly the spec's rule: in the autumn hour that occurs twice it picks the first
    occurrence (CDT), and a time inside the spring gap is read with the offset before the gap (CST),
    i.e. moved forward by the gap (02:30 → 03:30 CDT). PostgreSQL's AT TIME ZONE picks the second
    occurrence in the fold, which is why this runs in Python, not SQL.
    """
    if wall is None:
        return None
    return wall.replace(tzinfo=V1_SERVER_TZ, fold=0).astimezone(UTC)


def v1_time_sql(wall: str) -> str:
    """SQL of v1_time for a `timestamp` (wall clock) expression: the same rule, set-based.

    `wall AT TIME ZONE 'America/Chicago'` alone takes the *second* occurrence in the autumn fold
    (and already reads a spring-gap time with the offset before the gap, as fold=0 does). So: the
    candidate one hour earlier, read and shifted back (`(wall - 1h) AT TIME ZONE … + 1h`), is the
    first occurrence exactly when it is earlier and still shows `wall` on the Chicago clock.
    Checked against v1_time for every 7th minute of the transition months 1999-2030 (tests pin the
    fold and gap rows).
    """
    tz = "'America/Chicago'"
    earlier = f"(({wall} - interval '1 hour') AT TIME ZONE {tz} + interval '1 hour')"
    plain = f"({wall} AT TIME ZONE {tz})"
    return f"(CASE WHEN {earlier} < {plain} AND ({earlier} AT TIME ZONE {tz}) = {wall} THEN {earlier} ELSE {plain} END)"


def normalize_email(raw: str | None) -> str:
    return (raw or "").strip().lower()


def is_plausible_email(email: str) -> bool:
    local, at, domain = email.partition("@")
    return bool(at and local and "." in domain and " " not in email and len(email) <= 150)


ROLE_MAP = {1: "admin", 2: "agent", 3: "support"}


# Provider spellings seen in v1 (Sinch, SINCH, "sinch ", NULL) → v2 provider; anything else unsupported.
def provider_key(raw: str | None) -> str:
    return (raw or "sinch").strip().lower() or "sinch"


def sinch_config(raw: str | None) -> dict | None:
    """v1 ProviderConfig JSON → v2 CarrierAccount.config for Sinch, or None when unusable.

    Never raises with the config in the message: the caller must not be able to leak it.
    """
    try:
        data = json.loads(raw) if raw else None
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    lowered = {str(k).lower().replace("_", ""): v for k, v in data.items()}
    plan, token = lowered.get("serviceplanid"), lowered.get("apitoken")
    if not plan or not token:
        return None
    return {"service_plan_id": str(plan), "api_token": str(token), "region": str(lowered.get("region") or "us")}


def config_is_unparseable(raw: str | None) -> bool:
    """A ProviderConfig that is set but is not JSON at all (the row is quarantined, secrets masked)."""
    if raw is None or not str(raw).strip():
        return False
    try:
        json.loads(raw)
    except ValueError:
        return True
    return False


def scrub_config(raw: str | None) -> object:
    """ProviderConfig for the quarantine/report: secrets replaced, unknown shapes dropped."""
    try:
        data = json.loads(raw) if raw else None
    except ValueError:
        return "<unparseable, withheld>" if raw else None
    if not isinstance(data, dict):
        return "<withheld>"
    secret_words = ("token", "password", "secret", "key", "sid")
    lowered_secrets = {k.lower() for k in SECRET_CONFIG_KEYS}
    return {
        k: ("••••" if (k.lower() in lowered_secrets or any(w in k.lower() for w in secret_words)) else v)
        for k, v in data.items()
    }


def jsonable(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes | memoryview):
        raw = bytes(value)
        # jsonb cannot hold U+0000: the readable form spells it out; base64 keeps the exact bytes.
        text = raw.decode("utf-8", "backslashreplace").replace("\x00", "\\x00")
        return {"base64": base64.b64encode(raw).decode(), "text": text}
    return value


def row_json(columns: list[str], row: tuple, *, secret_columns: tuple[str, ...] = ()) -> dict:
    out = {}
    for col, value in zip(columns, row, strict=True):
        out[col] = scrub_config(value) if col in secret_columns else jsonable(value)
    return out


# v1 Messages.Status → v2 status. 0 Pending / 1 Queued never left v1: they become "canceled" (final),
# never "queued", so that v2 workers cannot send years-old history. 2 Sending stays "sending" with its
# carrier batch id and recipient, for the status backfill to repair.
STATUS_MAP = {
    0: S.CANCELED,
    1: S.CANCELED,
    2: S.SENDING,
    3: S.SENT,
    4: S.DELIVERED,
    5: S.FAILED,
    6: S.UNDELIVERED,
    7: S.RECEIVED,
}
STATUS_NAMES = {
    0: "Pending",
    1: "Queued",
    2: "Sending",
    3: "Sent",
    4: "Delivered",
    5: "Failed",
    6: "Undelivered",
    7: "Received",
}


def decode_body(raw: bytes | memoryview | str | None) -> tuple[str | None, str | None]:
    """(text, problem). NULL body (picture-only) → "". NUL characters or bytes that are not UTF-8 →
    problem; the row is quarantined whole rather than silently altered (see docs). The body arrives
    as bytes from a bytea column and as text from a text/varchar one (preflight)."""
    if raw is None:
        return "", None
    if isinstance(raw, str):
        text = raw
    else:
        try:
            text = bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            return None, "body_not_utf8"
    if "\x00" in text:
        return None, "body_nul_character"
    return text, None


def clean_text(value: object, limit: int | None = None) -> tuple[object, str | None]:
    """A v1 text value as v2 can store it: (value, problem). Bytes (a bytea column) are decoded as
    UTF-8; NUL characters, bytes that are not UTF-8 and values longer than the v2 column are
    problems (the row is quarantined: `not_utf8`, `nul_character`, `too_long`)."""
    if value is None:
        return None, None
    if isinstance(value, bytes | memoryview):
        try:
            value = bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return None, "not_utf8"
    if not isinstance(value, str):
        return value, None
    if "\x00" in value:
        return None, "nul_character"
    if limit is not None and len(value.strip()) > limit:
        return None, "too_long"
    return value, None


def phone_extension(raw: object) -> str:
    """The extension a free-form number carries ("512-555-0100 x12"), '' if none: v2 stores E.164
    only, so a dropped extension is a reported decision."""
    if raw is None:
        return ""
    text = str(raw)
    if not any(ch.isalpha() or ch in "#;," for ch in text):
        return ""
    try:
        return phonenumbers.parse(text, "US").extension or ""
    except phonenumbers.NumberParseException:
        return ""
