"""Adapters by provider. `adapter_for(account)` is what every caller uses; adapters register here."""

from __future__ import annotations

from collections.abc import Callable

from .base import CarrierAdapter

_FACTORIES: dict[str, Callable[[object], CarrierAdapter]] = {}


def register(provider: str):
    def decorator(factory):
        _FACTORIES[provider] = factory
        return factory

    return decorator


def adapter_for(account) -> CarrierAdapter:
    """Filled in by the carriers work (cached per process, keyed by account id and updated_at)."""
    try:
        factory = _FACTORIES[account.provider]
    except KeyError:
        raise LookupError(f"no carrier adapter for provider {account.provider!r}") from None
    return factory(account)
