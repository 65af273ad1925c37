"""The processor registry: an explicit, typed dict filled by a decorator. See docs/postprocessing.md.

    @processor(EventType.MESSAGE_DELIVERED, EventType.MESSAGE_FAILED, name="blast_counters")
    def blast_counters(events: list[EventRow]) -> None: ...

A processor receives a whole batch of events (only those of its types, in id order) and must apply
them with a constant number of set-based statements, idempotently and monotonically: the same
events may be handed to it twice (a retry, a re-run dead letter) or out of order across concurrent
drains. Registering for an unknown event type raises; so does asking for one.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

from .events import EventType, UnknownEventType, check_event_type


class EventRow(NamedTuple):
    """What a processor sees of an event: plain values, no ORM instance (batches are thousands)."""

    id: int
    type: str
    message_id: int | None
    payload: dict[str, Any]


ProcessorFn = Callable[[list[EventRow]], None]


@dataclass(frozen=True)
class Processor:
    name: str
    event_types: frozenset[str]
    fn: ProcessorFn
    # Place in the batch's execution (and so row-lock) order: lower first, then registration order.
    rank: int = 0
    seq: int = 0

    @property
    def order_key(self) -> tuple[int, int]:
        return (self.rank, self.seq)

    def __call__(self, events: list[EventRow]) -> None:
        self.fn(events)


class DuplicateProcessor(ValueError):
    pass


# Execution order within a batch is (rank, registration order), and so is the order in which
# processors take row locks: a fixed order across concurrent drains avoids deadlocks. Processors
# register from several apps' AppConfig.ready (which run in INSTALLED_APPS order), so an app that
# needs its processors placed among another app's passes `rank`; the ranks of this release's
# processors are one table in messaging/processors/__init__.py. Unranked processors run last.
DEFAULT_RANK = 1000
_SEQ = itertools.count()
_BY_NAME: dict[str, Processor] = {}
_BY_TYPE: dict[str, list[Processor]] = {t: [] for t in EventType.values}


def processor(
    *event_types: str, name: str | None = None, rank: int = DEFAULT_RANK
) -> Callable[[ProcessorFn], ProcessorFn]:
    """Register the decorated function for `event_types` (at least one, each a declared EventType)."""
    if not event_types:
        raise ValueError("a processor needs at least one event type")
    types = frozenset(check_event_type(str(t)) for t in event_types)

    def decorate(fn: ProcessorFn) -> ProcessorFn:
        pname = name or fn.__name__
        if pname in _BY_NAME:
            raise DuplicateProcessor(pname)
        entry = Processor(name=pname, event_types=types, fn=fn, rank=rank, seq=next(_SEQ))
        _BY_NAME[pname] = entry
        for t in EventType.values:
            if t in types:
                _BY_TYPE[t].append(entry)
                _BY_TYPE[t].sort(key=lambda p: p.order_key)
        return fn

    return decorate


# Deferred work of processors, run by the drain outside the batch's transaction (e.g. the blast recount, which must
# not wait for a row lock): at the start of each drain task, after its last batch and, between batches, once
# AFTER_BATCH_INTERVAL_SECONDS have passed since the last run (services/drain.py) — not after every batch.
_AFTER_BATCH: list[Callable[[], object]] = []


def after_batch(fn: Callable[[], object]) -> Callable[[], object]:
    """Register a no-argument callable the drain runs after batches (see above; it must be cheap when idle, and
    keep its own to-do rows until done, as a run may cover several batches)."""
    if fn not in _AFTER_BATCH:
        _AFTER_BATCH.append(fn)
    return fn


def after_batch_hooks() -> list[Callable[[], object]]:
    return list(_AFTER_BATCH)


def processors_for(event_type: str) -> list[Processor]:
    """The processors of one event type (possibly none). An undeclared type raises UnknownEventType."""
    try:
        return _BY_TYPE[event_type]
    except KeyError:
        raise UnknownEventType(event_type) from None


def processor_named(name: str) -> Processor:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"no post-processing processor named {name!r}") from None


def all_processors() -> list[Processor]:
    """Every processor in execution order (rank, then registration order)."""
    return sorted(_BY_NAME.values(), key=lambda p: p.order_key)


def unregister(names: Iterable[str]) -> None:
    """Tests only: drop processors registered by a test."""
    for pname in list(names):
        entry = _BY_NAME.pop(pname, None)
        if entry is None:
            continue
        for lst in _BY_TYPE.values():
            if entry in lst:
                lst.remove(entry)
