"""Adapters by provider. `adapter_for(account)` is what every caller uses; adapters register here.

Adapters hold a pooled requests.Session, so they are cached per process, keyed by (account id,
updated_at): editing an account (new token, new base_url) yields a fresh adapter on next use.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from .base import CarrierAdapter

_FACTORIES: dict[str, Callable[[object], CarrierAdapter]] = {}
_CACHE: dict[int, tuple[object, CarrierAdapter]] = {}
_LOCK = threading.Lock()


def register(provider: str):
    def decorator(factory):
        _FACTORIES[provider] = factory
        return factory

    return decorator


def adapter_for(account) -> CarrierAdapter:
    """The adapter for this account's provider and configuration, cached per process."""
    key = getattr(account, "pk", None) or getattr(account, "id", None)
    version = account.updated_at
    cached = _CACHE.get(key) if key is not None else None
    if cached is not None and cached[0] == version:
        return cached[1]
    try:
        factory = _FACTORIES[account.provider]
    except KeyError:
        raise LookupError(f"no carrier adapter for provider {account.provider!r}") from None
    adapter = factory(account)
    if key is not None:
        # The replaced adapter is not closed: another thread may be mid-call on it; GC closes it.
        with _LOCK:
            _CACHE[key] = (version, adapter)
    return adapter


def adapters_clear() -> None:
    """Forget cached adapters (tests; after fork)."""
    with _LOCK:
        _CACHE.clear()


def _sinch_factory(account) -> CarrierAdapter:
    from .sinch import SinchAdapter

    return SinchAdapter.from_account(account)


# "sandbox" is the same wire format pointed at settings.SANDBOX_CARRIER_URL (config may override).
register("sinch")(_sinch_factory)
register("sandbox")(_sinch_factory)
