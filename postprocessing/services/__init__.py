"""Post-processing services (writes). See docs/postprocessing.md.

- `events_record(*, type, message_ids=None, payload=None)`: record non-status events (link.clicked ...).
- `drain_kick()`: wake the drain after commit (debounced).
- `events_drain(...)`, `drain_batch(...)`, `processings_retry_due(...)`: the drain.
- `dead_letters_requeue(...)`: re-run dead letters.
"""

from .drain import (
    BATCH_SIZE,
    MAX_ATTEMPTS,
    DrainResult,
    dead_letters_requeue,
    drain_batch,
    events_drain,
    events_prune,
    processings_retry_due,
)
from .record import drain_kick, drain_kick_now, events_record

__all__ = [
    "BATCH_SIZE",
    "MAX_ATTEMPTS",
    "DrainResult",
    "dead_letters_requeue",
    "drain_batch",
    "drain_kick",
    "drain_kick_now",
    "events_drain",
    "events_prune",
    "events_record",
    "processings_retry_due",
]
