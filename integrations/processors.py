"""The post-processing hook of the partner integrations (registered when IntegrationsConfig.ready
imports this module). See docs/integrations.md.

Runs inside the drain's batch transaction, so it makes no partner call: one statement finds which of
the batch's messages are on integrated lines and writes a pending marker per message and partner
(services/forwards.py), and one task per small group of ids is woken after the batch commits. The
marker commits with the events' end, so a task lost after the commit is re-kicked from it by the beat's
`integrations.forwards_rekick` (docs/recovery.md). Idempotency is in the tasks (ForwardedMessage), so a
re-run batch costs a no-op task.

Cost per 1000-event batch: a few ms when the batch's organizations have no connection (what nearly
every batch pays), about twice that plus the after-commit publishes when every message is on an
integrated line. Figures and the command that measures them: docs/performance.md.
"""

from __future__ import annotations

from config.wakeup import wake_on_commit
from postprocessing.events import EventType
from postprocessing.registry import EventRow, processor

from .services.forwards import forwards_decide, groups_by_conversation


def _org_of(event: EventRow) -> int | None:
    try:
        return int(event.payload["organization_id"])
    except (KeyError, TypeError, ValueError):
        return None  # an event written without it: looked up by message


@processor(EventType.MESSAGE_RECEIVED, EventType.MESSAGE_SENT, name="integrations_dispatch")
def integrations_dispatch(events: list[EventRow]) -> None:
    orgs = {e.message_id: _org_of(e) for e in events if e.message_id is not None}
    rows = forwards_decide(messages=sorted(orgs.items()))
    if not rows:
        return
    from .tasks import nice_forward, ringcentral_mirror

    for group in groups_by_conversation([(mid, conv) for mid, conv, to_nice, _ in rows if to_nice]):
        wake_on_commit(nice_forward, [group])
    for group in groups_by_conversation([(mid, conv) for mid, conv, _, rc in rows if rc is not None]):
        wake_on_commit(ringcentral_mirror, [group])
