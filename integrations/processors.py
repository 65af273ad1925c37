"""The post-processing hook of the partner integrations (registered when IntegrationsConfig.ready
imports this module). See docs/integrations.md.

Runs inside the drain's batch transaction, so it makes no partner call: one query finds which of the
batch's messages are on integrated lines, and one task per small group of ids is enqueued after the
batch commits. Idempotency is in the tasks (ForwardedMessage), so a re-run batch costs a no-op task.

Cost per 1000-event batch: a few ms when the batch's organizations have no connection (what nearly
every batch pays), about twice that plus the after-commit publishes when every message is on an
integrated line. Figures and the command that measures them: docs/performance.md.
"""

from __future__ import annotations

from django.db import transaction

from postprocessing.events import EventType
from postprocessing.registry import EventRow, processor

from .selectors import messages_integrated

# Message ids per task. A conversation's messages stay in one task when they fit (they are forwarded
# in order under one lock); 50 keeps a task's partner calls (one per message, ~50-200 ms each) under ~10 s, so a
# 429's retry or a worker restart redoes little, while a burst of 1000 events is still ~20 publishes.
TASK_GROUP_SIZE = 50


def _groups(rows: list[tuple[int, int]]) -> list[list[int]]:
    """(message id, conversation id) rows sorted by conversation → id lists of at most TASK_GROUP_SIZE.
    Whole conversations are packed together; one longer than TASK_GROUP_SIZE is cut into full groups."""
    by_conversation: dict[int, list[int]] = {}
    for message_id, conversation_id in rows:
        by_conversation.setdefault(conversation_id, []).append(message_id)
    groups: list[list[int]] = []
    current: list[int] = []
    for ids in by_conversation.values():
        if current and len(current) + len(ids) > TASK_GROUP_SIZE:
            groups.append(current)
            current = []
        for i in range(0, len(ids), TASK_GROUP_SIZE):
            chunk = ids[i : i + TASK_GROUP_SIZE]
            if len(chunk) == TASK_GROUP_SIZE:
                groups.append(chunk)
            else:
                current.extend(chunk)
    if current:
        groups.append(current)
    return groups


def _org_of(event: EventRow) -> int | None:
    try:
        return int(event.payload["organization_id"])
    except (KeyError, TypeError, ValueError):
        return None  # an event written without it: looked up by message


@processor(EventType.MESSAGE_RECEIVED, EventType.MESSAGE_SENT, name="integrations_dispatch")
def integrations_dispatch(events: list[EventRow]) -> None:
    orgs = {e.message_id: _org_of(e) for e in events if e.message_id is not None}
    rows = messages_integrated(messages=sorted(orgs.items()))
    if not rows:
        return
    nice = _groups([(mid, conv) for mid, conv, to_nice, _ in rows if to_nice])
    ringcentral = _groups([(mid, conv) for mid, conv, _, rc in rows if rc is not None])

    def publish() -> None:
        from .tasks import nice_forward, ringcentral_mirror

        for group in nice:
            nice_forward.apply_async(args=[group])
        for group in ringcentral:
            ringcentral_mirror.apply_async(args=[group])

    transaction.on_commit(publish)
