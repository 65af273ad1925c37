"""Column rules of the v1 → v2 migration, as pure functions (docs/migration_v1.md, table by table)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from carriers.models import SECRET_CONFIG_KEYS
from messaging.status import MessageStatus as S

V1_SERVER_TZ = ZoneInfo("America/Chicago")

# Windows time-zone ids of v1 → IANA (CLDR windowsZones "001" territory). NULL means Central.
WINDOWS_TO_IANA = {
    "Eastern Standard Time": "America/New_York",
    "Central Standard Time": "America/Chicago",
    "Mountain Standard Time": "America/Denver",
    "US Mountain Standard Time": "America/Phoenix",  # Arizona: no DST
    "Pacific Standard Time": "America/Los_Angeles",
    "Alaskan Standard Time": "America/Anchorage",
    "Hawaiian Standard Time": "Pacific/Honolulu",
    "US Eastern Standard Time": "America/Indiana/Indianapolis",
    "Atlantic Standard Time": "America/Halifax",
    "Newfoundland Standard Time": "America/St_Johns",
    "Aleutian Standard Time": "America/Adak",
    "UTC": "UTC",
}
DEFAULT_IANA = "America/Chicago"


def iana_zone(windows_id: str | None) -> tuple[str, bool]:
    """(IANA zone, known). NULL/blank → Central (spec). Unknown ids → Central, reported as a warning."""
    if windows_id is None or not windows_id.strip():
        return DEFAULT_IANA, True
    name = windows_id.strip()
    if name in WINDOWS_TO_IANA:
        return WINDOWS_TO_IANA[name], True
    return DEFAULT_IANA, False


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


def decode_body(raw: bytes | memoryview | None) -> tuple[str | None, str | None]:
    """(text, problem). NULL body (picture-only) → "". NUL characters or bytes that are not UTF-8 →
    problem; the row is quarantined whole rather than silently altered (see docs)."""
    if raw is None:
        return "", None
    data = bytes(raw)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None, "body_not_utf8"
    if "\x00" in text:
        return None, "body_nul_character"
    return text, None
