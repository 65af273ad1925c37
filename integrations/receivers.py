"""Reactions to other apps' changes, connected in IntegrationsConfig.ready:
- messaging's signals (messaging/signals.py, sent after commit): a closed conversation or an opted-out
  number → one indexed query over active NICE chats and, only when there is one, the task that ends it
  at NICE (the beat job integrations.nice_end_stale catches anything this misses);
- a membership saved or deleted, a user saved → after commit, a RingCentral team sync of the
  organizations concerned that have an active connection (the beat's integrations.ringcentral_sync_all
  catches changes made without model signals, e.g. queryset.update)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models.signals import post_delete, post_save

from config.wakeup import wake, wake_on_commit
from messaging.signals import conversations_closed, numbers_opted_out
from organizations.models import Membership

from .services import nice_chats_to_end, ringcentral_organizations


def _enqueue(chat_ids: list[int]) -> None:
    if chat_ids:
        from .tasks import nice_end

        wake(nice_end, [chat_ids])


def on_conversations_closed(sender, *, conversation_ids: list[int], **kwargs) -> None:
    _enqueue(nice_chats_to_end(conversation_ids=conversation_ids))


def on_numbers_opted_out(sender, *, organization_id: int, phone_numbers: list[str], **kwargs) -> None:
    _enqueue(nice_chats_to_end(organization_id=organization_id, phone_numbers=phone_numbers))


def _sync_teams(organization_ids: list[int]) -> None:
    """After commit: one sync task per organization that has an active RingCentral connection."""
    orgs = ringcentral_organizations(organization_ids=organization_ids)
    if orgs:
        from .tasks import ringcentral_sync

        for org_id in orgs:
            wake_on_commit(ringcentral_sync, [org_id])


def on_membership_changed(sender, instance: Membership, **kwargs) -> None:
    """Joined, left, or changed role (to support: out of every team; from support: into them)."""
    _sync_teams([instance.organization_id])


def on_user_saved(sender, instance, update_fields=None, **kwargs) -> None:
    """A user's email or is_active decides their team membership; a login (last_login only) does not."""
    if update_fields is not None and set(update_fields) <= {"last_login"}:
        return
    if kwargs.get("created"):
        return  # no membership yet
    _sync_teams(list(Membership.objects.filter(user_id=instance.pk).values_list("organization_id", flat=True)))


def connect() -> None:
    conversations_closed.connect(on_conversations_closed, dispatch_uid="integrations.nice_end_on_close")
    numbers_opted_out.connect(on_numbers_opted_out, dispatch_uid="integrations.nice_end_on_opt_out")
    post_save.connect(on_membership_changed, sender=Membership, dispatch_uid="integrations.rc_sync_membership_saved")
    post_delete.connect(on_membership_changed, sender=Membership, dispatch_uid="integrations.rc_sync_membership_gone")
    post_save.connect(on_user_saved, sender=get_user_model(), dispatch_uid="integrations.rc_sync_user_saved")
