"""The naive send path, for comparison only (never imported by the product).

One Celery task per message doing every step at send time, with the ORM, and one carrier call per
message: load the blast, contact, line and carrier account, check the opt-out, get or create the
conversation, render, count segments, insert the message, call the carrier with one recipient,
record the result. This is what the optimized pipeline is measured against (bench/bench_send.py).
Loaded into a worker with `celery -A config worker -Q naive -I naive_send` (bench/ on PYTHONPATH).
"""

from __future__ import annotations

import uuid

from celery import shared_task
from django.utils import timezone

QUEUE = "naive"


@shared_task(name="bench.naive_send_one", acks_late=True)
def naive_send_one(blast_id: int, contact_id: int) -> str:
    from carriers.base import OutboundBatch
    from carriers.registry import adapter_for
    from messaging import segments
    from messaging.models import Blast, Contact, Conversation, Direction, Message, OptOut
    from messaging.services.status import StatusUpdate, messages_apply_statuses
    from messaging.services.templates import contact_fields, render
    from messaging.status import MessageStatus as S

    blast = Blast.objects.select_related("line__carrier_account", "organization").get(pk=blast_id)
    contact = Contact.objects.get(pk=contact_id)
    line, account = blast.line, blast.line.carrier_account
    opted_out = OptOut.objects.filter(organization_id=blast.organization_id, phone_number=contact.phone_number).exists()
    conversation, _ = Conversation.objects.get_or_create(
        line=line, contact=contact, defaults={"organization_id": blast.organization_id}
    )
    body = render(
        blast.body,
        contact_fields(
            contact.first_name, contact.last_name, contact.email, contact.phone_number, contact.custom_fields
        ),
    )
    info = segments.count(body)
    message = Message.objects.create(
        organization_id=blast.organization_id,
        line=line,
        conversation=conversation,
        contact=contact,
        blast=blast,
        direction=Direction.OUTBOUND,
        body=blast.body,
        rendered_body=body,
        segments=info.segments,
        encoding=info.encoding,
        carrier_recipient=contact.phone_number,
        status=S.BLOCKED if opted_out else S.SENDING,
        client_reference="n:" + uuid.uuid4().hex,
        sending_at=timezone.now(),
    )
    if opted_out:
        return "blocked"
    from django.conf import settings

    result = adapter_for(account).send_batch(
        OutboundBatch(
            from_number=line.phone_number,
            recipients=[contact.phone_number],
            body=body,
            client_reference=message.client_reference,
            callback_url=f"{settings.PUBLIC_BASE_URL}/webhooks/sinch/{account.webhook_secret}/delivery",
        )
    )
    messages_apply_statuses(updates=[StatusUpdate(message.id, S.SENT, carrier_batch_id=result.batch_id)])
    return result.batch_id
