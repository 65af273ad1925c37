"""Thin Celery entry points of the partner integrations (routed by the "integrations." prefix to the
default queue, config/queues.py). Ids in, one service call, safe to run twice. See docs/integrations.md."""

from __future__ import annotations

from celery import shared_task

from config.wakeup import wake

from .clients import PartnerError
from .models import Partner
from .services import (
    forwards_postpone,
    nice_chat_poll,
    nice_chats_end,
    nice_chats_stale,
    nice_messages_forward,
    nice_polls_rekick,
    partner_replies_rekick,
    pending_forwards_rekick,
    ringcentral_messages_mirror,
    ringcentral_organizations,
    ringcentral_reply_postpone,
    ringcentral_reply_send,
    ringcentral_teams_sync,
)
from .services.ringcentral_teams import SYNC_PAUSE_SECONDS

MAX_RETRIES = 8
# Retry waits: the partner's Retry-After when it gave one, else 10 s doubling, capped. A countdown
# longer than the Redis visibility timeout is safe: the worker holding it heartbeats it (docs/recovery.md).
RETRY_CAP_SECONDS = 300


def _countdown(exc: PartnerError, retries: int) -> float:
    return min(exc.retry_after if exc.retry_after is not None else 10 * 2**retries, RETRY_CAP_SECONDS)


@shared_task(name="integrations.nice_forward", bind=True, acks_late=True, ignore_result=True, max_retries=MAX_RETRIES)
def nice_forward(self, message_ids: list[int]) -> int:
    try:
        return nice_messages_forward(message_ids=message_ids)
    except PartnerError as exc:
        countdown = _countdown(exc, self.request.retries)
        forwards_postpone(partner=Partner.NICE, message_ids=message_ids, seconds=countdown)
        raise self.retry(countdown=countdown) from None


@shared_task(name="integrations.nice_poll", acks_late=True, ignore_result=True)
def nice_poll(chat_id: int, handover: str = "") -> bool:
    """One long poll, then the next link of the chain (it inherits the lease through `handover`)."""
    outcome = nice_chat_poll(chat_id=chat_id, handover=handover)
    if outcome.next_token:
        nice_poll.apply_async(args=[chat_id, outcome.next_token], countdown=outcome.delay or None)
    return outcome.polled


@shared_task(name="integrations.nice_rekick", ignore_result=True)
def nice_rekick() -> int:
    return nice_polls_rekick()


@shared_task(name="integrations.nice_end", bind=True, acks_late=True, ignore_result=True, max_retries=MAX_RETRIES)
def nice_end(self, chat_ids: list[int]) -> int:
    """End these chats at NICE (conversation closed, contact opted out)."""
    try:
        return nice_chats_end(chat_ids=chat_ids)
    except PartnerError as exc:
        raise self.retry(countdown=_countdown(exc, self.request.retries)) from None


@shared_task(name="integrations.nice_end_stale", ignore_result=True)
def nice_end_stale() -> int:
    """Beat: chats whose end was missed (lost task, a close or opt-out made in the admin form or SQL)."""
    ids = nice_chats_stale()
    if ids:
        nice_end.apply_async(args=[ids])
    return len(ids)


@shared_task(
    name="integrations.ringcentral_mirror", bind=True, acks_late=True, ignore_result=True, max_retries=MAX_RETRIES
)
def ringcentral_mirror(self, message_ids: list[int]) -> int:
    try:
        return ringcentral_messages_mirror(message_ids=message_ids)
    except PartnerError as exc:  # 429: Retry-After honoured; what was posted before it is not reposted
        countdown = _countdown(exc, self.request.retries)
        forwards_postpone(partner=Partner.RINGCENTRAL, message_ids=message_ids, seconds=countdown)
        raise self.retry(countdown=countdown) from None


@shared_task(
    name="integrations.ringcentral_reply", bind=True, acks_late=True, ignore_result=True, max_retries=MAX_RETRIES
)
def ringcentral_reply(self, reply_id: int) -> str:
    try:
        return ringcentral_reply_send(reply_id=reply_id)
    except PartnerError as exc:
        countdown = _countdown(exc, self.request.retries)
        ringcentral_reply_postpone(reply_id=reply_id, seconds=countdown)
        raise self.retry(countdown=countdown) from None


@shared_task(name="integrations.forwards_rekick", ignore_result=True)
def forwards_rekick() -> int:
    """Beat: forwards and RingCentral replies whose task was lost (broker flushed, worker killed, retries
    given up), found from their pending rows past the lease (docs/recovery.md). Returns wake-ups sent."""
    due = pending_forwards_rekick()
    for group in due.nice:
        wake(nice_forward, [group])
    for group in due.ringcentral:
        wake(ringcentral_mirror, [group])
    replies = partner_replies_rekick()
    for reply_id in replies:
        wake(ringcentral_reply, [reply_id])
    return len(due.nice) + len(due.ringcentral) + len(replies)


@shared_task(
    name="integrations.ringcentral_sync", bind=True, acks_late=True, ignore_result=True, max_retries=MAX_RETRIES
)
def ringcentral_sync(self, organization_id: int) -> int:
    """Bring the organization's teams in step with its members, a batch at a time (rate limits)."""
    try:
        outcome = ringcentral_teams_sync(organization_id=organization_id)
    except PartnerError as exc:  # what was done before it is saved: the retry resumes
        raise self.retry(countdown=_countdown(exc, self.request.retries)) from None
    if outcome.more:
        ringcentral_sync.apply_async(args=[organization_id], countdown=SYNC_PAUSE_SECONDS)
    return outcome.synced


@shared_task(name="integrations.ringcentral_sync_all", ignore_result=True)
def ringcentral_sync_all() -> int:
    """Beat: the periodic check of every organization with an active connection (a no-op query for
    organizations whose teams are in step)."""
    orgs = ringcentral_organizations()
    for org_id in orgs:
        ringcentral_sync.apply_async(args=[org_id])
    return len(orgs)
