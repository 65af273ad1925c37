"""Reads of the messaging domain, always scoped to one organization (the API's tenant boundary)."""

from __future__ import annotations

import json
from datetime import datetime

from django.db import connection
from django.db.models import Count, IntegerField, Min, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from organizations.models import Organization

from . import cache, segments
from .links import link_step
from .models import Blast, Contact, Conversation, Line, Message, OptOut
from .services.quiet_hours import quiet_release, zone_of
from .services.templates import URL_RE, contact_fields, render_message
from .status import MessageStatus


def lines_for(*, organization: Organization) -> QuerySet[Line]:
    return Line.objects.filter(organization=organization)


def contacts_for(
    *, organization: Organization, phone_number: str | None = None, include_archived: bool = False
) -> QuerySet[Contact]:
    """Deleted (archived) and erased contacts are not listed, nor found by id (their history stays);
    include_archived: for the erase endpoint, which must reach them."""
    contacts = Contact.objects.filter(organization=organization)
    if not include_archived:
        contacts = contacts.filter(archived_at__isnull=True)
    if phone_number:
        contacts = contacts.filter(phone_number=phone_number)
    return contacts


def opt_outs_for(*, organization: Organization, phone_number: str | None = None) -> QuerySet[OptOut]:
    opt_outs = OptOut.objects.filter(organization=organization)
    if phone_number:
        opt_outs = opt_outs.filter(phone_number=phone_number)
    return opt_outs


def blasts_for(*, organization: Organization) -> QuerySet[Blast]:
    return with_quiet_hours_deferrals(Blast.objects.filter(organization=organization))


def with_quiet_hours_deferrals(blasts: QuerySet[Blast]) -> QuerySet[Blast]:
    """Annotate each blast with `deferred_by_quiet_hours` (its messages waiting for the end of the
    recipients' quiet hours) and `quiet_hours_resume_at` (the earliest of their release times).

    A blast message is `scheduled` only for quiet hours (a blast's own send_at schedules the blast,
    not its messages). Two subqueries per blast over msg_blast (the blast's messages)."""
    scheduled = Message.objects.filter(blast=OuterRef("pk"), status=MessageStatus.SCHEDULED).order_by().values("blast")
    return blasts.annotate(
        deferred_by_quiet_hours=Coalesce(
            Subquery(scheduled.annotate(n=Count("id")).values("n"), output_field=IntegerField()), 0
        ),
        quiet_hours_resume_at=Subquery(scheduled.annotate(at=Min("send_at")).values("at")),
    )


def blast_quiet_hours_deferrals(*, blast: Blast) -> tuple[int, datetime | None]:
    """(deferred_by_quiet_hours, quiet_hours_resume_at) of one blast: the annotation if the row has it,
    else one query (whose answer is kept on the instance, as the annotation would be)."""
    values = vars(blast)  # annotations live in the instance's __dict__
    if "deferred_by_quiet_hours" not in values:
        found = Message.objects.filter(blast_id=blast.pk, status=MessageStatus.SCHEDULED).aggregate(
            n=Count("id"), at=Min("send_at")
        )
        values["deferred_by_quiet_hours"], values["quiet_hours_resume_at"] = found["n"], found["at"]
    return values["deferred_by_quiet_hours"], values["quiet_hours_resume_at"]


def conversations_for(
    *,
    organization: Organization,
    status: str | None = None,
    line_id: int | None = None,
    assignee_id: int | None = None,
    unassigned: bool = False,
    contact_phone: str | None = None,
    updated_since: datetime | None = None,
) -> QuerySet[Conversation]:
    """The inbox. One query with its line and contact (the list shows both); the index
    conv_org_recent (organization, -last_message_at, -id) serves the default order."""
    conversations = Conversation.objects.filter(organization=organization).select_related("line", "contact")
    if status:
        conversations = conversations.filter(status=status)
    if line_id is not None:
        conversations = conversations.filter(line_id=line_id)
    if unassigned:
        conversations = conversations.filter(assignee__isnull=True)
    elif assignee_id is not None:
        conversations = conversations.filter(assignee_id=assignee_id)
    if contact_phone:
        conversations = conversations.filter(contact__phone_number=contact_phone)
    if updated_since is not None:
        # "Updated" = a message came or went: last_message_at is what post-processing keeps current.
        conversations = conversations.filter(last_message_at__gte=updated_since)
    return conversations


def conversation_messages(*, conversation: Conversation) -> QuerySet[Message]:
    """Newest first, served by msg_conversation_recent (conversation, -created_at, -id)."""
    return Message.objects.filter(conversation=conversation, organization_id=conversation.organization_id)


# A blast is stalled when it is sending, nothing of it moved for `seconds` (no message created, sent,
# delivered, failed or blocked: postprocessing_blastprogress, else its launch), and work is left on OUR
# side: recipients without a message yet, or messages queued, prepared or in a send. Waiting only for
# the carrier's delivery reports or for quiet hours is not a stall. Cost: the sending blasts (few, on
# the blast_due index); for each one whose last move is old, an index probe and an index-only count on
# msg_blast — nothing scans the message table.
_STALLED_SQL = """
SELECT b.id FROM messaging_blast b
LEFT JOIN postprocessing_blastprogress p ON p.blast_id = b.id
WHERE b.status = %(sending)s
  AND GREATEST(b.launched_at, p.at) < now() - make_interval(secs => %(seconds)s)
  AND (EXISTS (SELECT 1 FROM messaging_message m WHERE m.blast_id = b.id AND m.status = ANY(%(ours)s))
       OR b.recipient_count > (SELECT count(*) FROM messaging_message m WHERE m.blast_id = b.id))
ORDER BY b.id
"""
STALLED_AFTER_SECONDS = 60


def blasts_stalled(*, seconds: float = STALLED_AFTER_SECONDS) -> list[int]:
    """Ids of sending blasts that made no progress for `seconds` with work left on our side."""
    from django.db import connection

    from .models import BlastStatus
    from .status import MessageStatus as S

    with connection.cursor() as cursor:
        cursor.execute(
            _STALLED_SQL,
            {"sending": BlastStatus.SENDING, "seconds": seconds, "ours": [S.QUEUED, S.PREPARED, S.SENDING]},
        )
        return [r[0] for r in cursor.fetchall()]


# -- the blast preview (GET /api/v1/blasts/{id}/preview): what a launch now would do, read only
_PREVIEW_SQL = """
SELECT c.phone_number, c.first_name, c.last_name, c.email, c.custom_fields, (o.id IS NOT NULL)
FROM messaging_blastrecipient br
JOIN messaging_contact c ON c.id = br.contact_id
LEFT JOIN messaging_optout o ON o.organization_id = c.organization_id AND o.phone_number = c.phone_number
WHERE br.blast_id = %s
"""


def blast_preview(*, organization, blast_id: int) -> dict:
    """What a launch now would do: recipients, opt-out exclusions, quiet-hours deferrals, segments
    (rendered per recipient; links counted at short-link length). Reads only. Quiet hours are those at the
    blast's send_at when that is still ahead (a launch then schedules it and it starts then), else now."""
    blast = Blast.objects.get(organization=organization, pk=blast_id)
    org = cache.org_info(organization.id)
    assert org is not None  # the organization row is in hand, so its settings exist
    now = timezone.now()
    if blast.send_at is not None and blast.send_at > now:
        now = blast.send_at
    with connection.cursor() as cursor:
        cursor.execute(_PREVIEW_SQL, [blast.id])
        rows = cursor.fetchall()
    savings, domain = _preview_savings(organization)
    opted_out = deferred = total_segments = 0
    per_message: list[int] = []
    encodings: set[str] = set()
    zone_cache: dict[str, datetime | None] = {}
    sample = None
    for phone, first, last, email, custom, is_opted_out in rows:
        if is_opted_out:
            opted_out += 1
            continue
        if isinstance(custom, str):
            custom = json.loads(custom)
        # As prepare renders it (values inside links encoded); links found in the rendered text.
        text = render_message(blast.body, contact_fields(first, last, email, phone, custom))
        if sample is None:
            sample = text
        after = savings(text, domain=domain)[2]  # segments with every link at short-link length
        info = segments.count(text)
        per_message.append(after)
        total_segments += after
        encodings.add(info.encoding)
        if not org.quiet_hours_enabled:
            continue
        tz_name = zone_of(phone) or org.time_zone
        if tz_name not in zone_cache:
            zone_cache[tz_name] = quiet_release(now, tz_name, org.quiet_hours_start, org.quiet_hours_end)
        if zone_cache[tz_name] is not None:
            deferred += 1
    links = None
    if URL_RE.search(blast.body):
        # For the sample recipient's text (no sendable recipient: the body with empty fields): what the
        # phone gets, not the template, whose {fields} would cut its URLs short.
        shown = sample if sample is not None else render_message(blast.body, {})
        saved, before, after = savings(shown, domain=domain)
        links = {"chars_saved": saved, "segments_before": before, "segments_after": after}
    return {
        "blast": blast.id,
        "status": blast.status,
        "recipient_count": len(rows),
        "opted_out_count": opted_out,
        "sendable_count": len(rows) - opted_out,
        "deferred_by_quiet_hours": deferred,
        "quiet_hours_resume_at": min((at for at in zone_cache.values() if at is not None), default=None),
        "segments_total": total_segments,
        "segments_per_message": {"min": min(per_message, default=0), "max": max(per_message, default=0)},
        "encodings": sorted(encodings),
        "sample": sample,
        "links": links,
    }


def _preview_savings(organization):
    """The link step's savings function and the organization's short domain (messaging/links.py)."""
    step = link_step()
    return step.preview_savings, step.short_domain(organization.id)
