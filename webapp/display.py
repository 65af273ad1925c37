"""Display strings the web app's rows share, made in Python once per row instead of by template filters."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo


def local_time(at: datetime | None, zone: ZoneInfo) -> tuple[str, str]:
    """("Mar 2, 08:30", ISO 8601) of `at` in the organization's zone, as the templates' `date:"M j, H:i"`
    and `date:"c"` wrote them; ("", "") for no time."""
    if at is None:
        return "", ""
    local = at.astimezone(zone)
    return f"{local:%b} {local.day}, {local:%H:%M}", local.isoformat()
