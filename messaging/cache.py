"""Settings the send pipeline reads on every task: lines, carrier accounts, organizations.

Three levels: a per-process dict, the shared Django cache (Redis), the database. One Redis counter
(the generation) is bumped by post_save/post_delete of Line, CarrierAccount and Organization; every
lookup reads it first (one Redis GET per task, not per message; a read is reused for
GENERATION_REUSE_S) and drops the process dict when it moved, so a changed line rate or carrier token
is seen by every worker on its next task.
See docs/send-pipeline.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from time import monotonic

from django.conf import settings
from django.core.cache import cache as django_cache
from django.db.models.signals import post_delete, post_save

_GEN_KEY = "messaging:settings-gen"
_local: dict[tuple[str, int], object] = {}
_local_gen: list[int | None] = [None]
# A generation read is reused for this long: a send task looks up its line and then the line's carrier
# account, and each lookup read it (two Redis GETs per carrier call, an eighth of a paced send task's
# Redis round trips; py-spy in bench_lines). Another process's change is seen within this long.
GENERATION_REUSE_S = 0.05
_gen_read_at: list[float] = [float("-inf")]


@dataclass(frozen=True, slots=True)
class LineInfo:
    id: int
    organization_id: int
    phone_number: str
    rate_per_second: float
    is_active: bool
    carrier_account_id: int | None


@dataclass(frozen=True, slots=True)
class OrgInfo:
    id: int
    time_zone: str
    quiet_hours_enabled: bool
    quiet_hours_start: time
    quiet_hours_end: time
    short_link_domain: str


@dataclass(frozen=True, slots=True)
class AccountInfo:
    id: int
    organization_id: int
    provider: str
    config: dict
    webhook_secret: str
    updated_at: datetime

    def __repr__(self) -> str:  # config holds the api token: never in a repr or a log line
        return f"<AccountInfo {self.id} {self.provider}>"

    @property
    def callback_url(self) -> str:
        return f"{settings.PUBLIC_BASE_URL.rstrip('/')}/webhooks/sinch/{self.webhook_secret}/delivery"


def _generation() -> int:
    now = monotonic()
    if _local_gen[0] is not None and now - _gen_read_at[0] < GENERATION_REUSE_S:
        return _local_gen[0]
    gen = django_cache.get(_GEN_KEY)
    if gen is None:
        django_cache.add(_GEN_KEY, 1, timeout=None)
        gen = django_cache.get(_GEN_KEY) or 1
    _gen_read_at[0] = now
    return int(gen)


def invalidate(**_kwargs) -> None:
    """Signal receiver: any change to a cached row bumps the generation everywhere."""
    try:
        django_cache.incr(_GEN_KEY)
    except ValueError:
        django_cache.add(_GEN_KEY, 1, timeout=None)
    _local.clear()
    _gen_read_at[0] = float("-inf")  # this process reads the new generation on its next lookup


def _get(kind: str, pk: int, load):
    gen = _generation()
    if _local_gen[0] != gen:
        _local.clear()
        _local_gen[0] = gen
    key = (kind, pk)
    if key in _local:
        return _local[key]
    # v2: OrgInfo gained quiet_hours_enabled; a pickle of the old shape must not be read back.
    shared_key = f"messaging:{kind}:v2:{pk}:{gen}"
    value = django_cache.get(shared_key)
    if value is None:
        value = load(pk)
        if value is None:
            return None
        django_cache.set(shared_key, value, timeout=3600)
    _local[key] = value
    return value


def _load_line(pk: int) -> LineInfo | None:
    from .models import Line

    row = (
        Line.objects.filter(pk=pk)
        .values_list("id", "organization_id", "phone_number", "rate_per_second", "is_active", "carrier_account_id")
        .first()
    )
    return LineInfo(*row) if row else None


def _load_org(pk: int) -> OrgInfo | None:
    from organizations.models import Organization

    row = (
        Organization.objects.filter(pk=pk)
        .values_list(
            "id", "time_zone", "quiet_hours_enabled", "quiet_hours_start", "quiet_hours_end", "short_link_domain"
        )
        .first()
    )
    return OrgInfo(*row) if row else None


def _load_account(pk: int) -> AccountInfo | None:
    from carriers.models import CarrierAccount

    row = (
        CarrierAccount.objects.filter(pk=pk)
        .values_list("id", "organization_id", "provider", "config", "webhook_secret", "updated_at")
        .first()
    )
    return AccountInfo(*row) if row else None


def line_info(line_id: int) -> LineInfo | None:
    return _get("line", line_id, _load_line)


def org_info(organization_id: int) -> OrgInfo | None:
    return _get("org", organization_id, _load_org)


def account_info(account_id: int) -> AccountInfo | None:
    return _get("account", account_id, _load_account)


def adapter_for_line(line: LineInfo):
    """The carrier adapter of a line, built from the cached account (the registry caches adapters by
    account id and updated_at, so this costs nothing after the first call)."""
    from carriers.models import CarrierAccount
    from carriers.registry import adapter_for

    if line.carrier_account_id is None:
        return None, None
    info = account_info(line.carrier_account_id)
    if info is None:
        return None, None
    account = CarrierAccount(
        id=info.id,
        organization_id=info.organization_id,
        provider=info.provider,
        config=info.config,
        webhook_secret=info.webhook_secret,
        updated_at=info.updated_at,
    )
    return adapter_for(account), info


def connect_signals() -> None:
    from carriers.models import CarrierAccount
    from organizations.models import Organization

    from .models import Line

    for model in (Line, CarrierAccount, Organization):
        post_save.connect(invalidate, sender=model, dispatch_uid=f"messaging.cache.{model.__name__}.save")
        post_delete.connect(invalidate, sender=model, dispatch_uid=f"messaging.cache.{model.__name__}.delete")
