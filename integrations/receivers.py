"""Reactions to the messaging app's signals (messaging/signals.py), connected in IntegrationsConfig.ready.
Sent after the change committed; each receiver runs one indexed query over active NICE chats and, only
when there is one to end, enqueues the task that calls NICE. The beat job integrations.nice_end_stale
catches anything this misses."""

from __future__ import annotations

from messaging.signals import conversations_closed, numbers_opted_out

from .services import nice_chats_to_end


def _enqueue(chat_ids: list[int]) -> None:
    if chat_ids:
        from .tasks import nice_end

        nice_end.apply_async(args=[chat_ids])


def on_conversations_closed(sender, *, conversation_ids: list[int], **kwargs) -> None:
    _enqueue(nice_chats_to_end(conversation_ids=conversation_ids))


def on_numbers_opted_out(sender, *, organization_id: int, phone_numbers: list[str], **kwargs) -> None:
    _enqueue(nice_chats_to_end(organization_id=organization_id, phone_numbers=phone_numbers))


def connect() -> None:
    conversations_closed.connect(on_conversations_closed, dispatch_uid="integrations.nice_end_on_close")
    numbers_opted_out.connect(on_numbers_opted_out, dispatch_uid="integrations.nice_end_on_opt_out")
