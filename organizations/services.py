"""Writes of the organizations app: API keys, the organization's settings."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils import timezone

from .models import ApiKey, ApiKeyScope, Organization


@dataclass(frozen=True)
class CreatedApiKey:
    api_key: ApiKey
    # The only time the key exists in clear: hand it to the caller, never store or log it.
    raw_key: str


def api_key_create(
    *, organization: Organization, name: str, scope: str = ApiKeyScope.ALL, created_by=None
) -> CreatedApiKey:
    raw_key = ApiKey.generate()
    api_key = ApiKey.objects.create(
        organization=organization,
        name=name,
        scope=scope,
        prefix=raw_key[: ApiKey.PREFIX_LEN],
        key_hash=ApiKey.hash(raw_key),
        created_by=created_by if getattr(created_by, "is_authenticated", False) else None,
    )
    return CreatedApiKey(api_key=api_key, raw_key=raw_key)


def api_keys_revoke(*, organization_id: int | None = None, api_key_ids: list[int]) -> int:
    """Revokes the given keys (of one organization when organization_id is given). Idempotent: an
    already revoked key keeps its first revocation time. Returns how many were revoked now."""
    keys = ApiKey.objects.filter(pk__in=api_key_ids, revoked_at__isnull=True)
    if organization_id is not None:
        keys = keys.filter(organization_id=organization_id)
    return keys.update(revoked_at=timezone.now())


SETTINGS_FIELDS = ("time_zone", "quiet_hours_enabled", "quiet_hours_start", "quiet_hours_end")


def organization_update_settings(*, organization: Organization, **changes) -> Organization:
    """Time zone and quiet hours (validated by the caller's serializer; the database's check constraint
    backs up "a window that is on is not empty"). Saving bumps the send pipeline's settings cache."""
    unknown = set(changes) - set(SETTINGS_FIELDS)
    if unknown:
        raise TypeError(f"not an organization setting: {', '.join(sorted(unknown))}")
    for name, value in changes.items():
        setattr(organization, name, value)
    if changes:
        organization.save(update_fields=list(changes))
    return organization
