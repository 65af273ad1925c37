"""The demo account `make run` seeds (manage.py seed_demo). Idempotent: a rerun creates only what is missing
and never prints a secret it did not just create."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from carriers.models import CarrierAccount, Provider
from messaging import segments
from messaging.models import Blast, Contact, Conversation, Direction, Line, Message
from messaging.services.blasts import Audience, blast_create
from messaging.services.contacts import contacts_import
from messaging.services.status import StatusUpdate, events_record_for_new_messages, messages_apply_statuses
from messaging.status import MessageStatus
from organizations.models import ApiKey, Membership, Organization, Role
from organizations.services import api_key_create

ORG_NAME = "Parley Demo"
ADMIN_LOGIN = "demo@parley.local"
API_KEY_NAME = "Demo key"
LINE_NUMBER = "+15127000100"
BLAST_NAME = "Spring sale (demo draft)"
FIRST_NAMES = ["Ana", "Ben", "Cleo", "Dev", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jun"]
LAST_NAMES = ["Lima", "Moss", "Nair", "Ortiz", "Park"]
CONTACT_COUNT = 50
CONVERSATIONS = [
    [
        ("in", "Hi, is my order ready?"),
        ("out", "Hi {first_name}! Yes, it is ready for pickup today."),
        ("in", "Great, thanks!"),
    ],
    [("out", "Reminder: your appointment is tomorrow at 10am. Reply C to confirm."), ("in", "C")],
    [("in", "Do you deliver on weekends?")],
]


@dataclass
class DemoResult:
    organization: Organization
    login: str
    password: str | None = None  # only when the user was created by this run
    api_key: str | None = None  # only when the key was created by this run
    api_key_prefix: str = ""
    created: list[str] = field(default_factory=list)


def demo_seed(*, reset_password: bool = False) -> DemoResult:
    with transaction.atomic():
        organization, created = Organization.objects.get_or_create(
            name=ORG_NAME, defaults={"time_zone": "America/Chicago"}
        )
        result = DemoResult(organization=organization, login=ADMIN_LOGIN)
        if created:
            result.created.append("organization")
        _seed_admin(result, reset_password=reset_password)
        _seed_api_key(result)
        line = _seed_line(result)
        _seed_contacts(result)
        _seed_conversations(result, line)
        _seed_blast(result, line)
    return result


def demo_inbound_url() -> str | None:
    """The demo sandbox carrier account's inbound (MO) webhook URL on PUBLIC_BASE_URL, None before seed_demo."""
    organization = Organization.objects.filter(name=ORG_NAME).first()
    if organization is None:
        return None
    account = CarrierAccount.objects.filter(organization=organization, provider=Provider.SANDBOX).first()
    return account.inbound_url if account is not None else None


def _seed_admin(result: DemoResult, *, reset_password: bool) -> None:
    user_model = get_user_model()
    user = user_model.objects.filter(username=ADMIN_LOGIN).first()
    if user is None:
        result.password = secrets.token_urlsafe(12)
        user = user_model.objects.create_superuser(ADMIN_LOGIN, ADMIN_LOGIN, result.password)
        result.created.append("admin user")
    elif reset_password:
        result.password = secrets.token_urlsafe(12)
        user.set_password(result.password)
        user.save(update_fields=["password"])
    Membership.objects.get_or_create(user=user, organization=result.organization, defaults={"role": Role.ADMIN})


def _seed_api_key(result: DemoResult) -> None:
    existing = ApiKey.objects.active().filter(organization=result.organization, name=API_KEY_NAME).first()
    if existing is not None:
        result.api_key_prefix = existing.prefix
        return
    created = api_key_create(organization=result.organization, name=API_KEY_NAME)
    result.api_key, result.api_key_prefix = created.raw_key, created.api_key.prefix
    result.created.append("API key")


def _seed_line(result: DemoResult) -> Line:
    account = CarrierAccount.objects.filter(organization=result.organization, provider=Provider.SANDBOX).first()
    if account is None:
        account = CarrierAccount.objects.create(
            organization=result.organization,
            name="Sandbox carrier",
            provider=Provider.SANDBOX,
            config={"service_plan_id": "demo-plan", "api_token": secrets.token_urlsafe(24)},
        )
        result.created.append("sandbox carrier account")
    line = Line.objects.filter(organization=result.organization, phone_number=LINE_NUMBER).first()
    if line is None:
        line = Line.objects.create(
            organization=result.organization,
            phone_number=LINE_NUMBER,
            name="Main line",
            carrier_account=account,
            rate_per_second=10.0,
        )
        result.created.append("line")
    return line


def _seed_contacts(result: DemoResult) -> None:
    rows = [
        {
            "phone_number": f"+1737700{i:04d}",
            "first_name": FIRST_NAMES[i % len(FIRST_NAMES)],
            "last_name": LAST_NAMES[i % len(LAST_NAMES)],
            "custom_fields": {"tier": "gold" if i % 5 == 0 else "standard"},
        }
        for i in range(1, CONTACT_COUNT + 1)
    ]
    imported = contacts_import(organization=result.organization, rows=rows)
    if imported.created:
        result.created.append(f"{imported.created} contacts")


def _seed_conversations(result: DemoResult, line: Line) -> None:
    if Conversation.objects.filter(organization=result.organization).exists():
        return
    contacts = list(Contact.objects.filter(organization=result.organization).order_by("id")[: len(CONVERSATIONS)])
    now = timezone.now()
    outbound: list[tuple[int, datetime]] = []
    for index, (contact, script) in enumerate(zip(contacts, CONVERSATIONS, strict=False)):
        conversation = Conversation.objects.create(organization=result.organization, line=line, contact=contact)
        start = now - timedelta(hours=3 * (len(CONVERSATIONS) - index))
        last = (start, "")
        for step, (direction, text) in enumerate(script):
            body = text.format(first_name=contact.first_name)
            info = segments.count(body)
            at = start + timedelta(minutes=7 * step)
            inbound = direction == "in"
            message = Message.objects.create(
                organization=result.organization,
                line=line,
                conversation=conversation,
                contact=contact,
                direction=Direction.INBOUND if inbound else Direction.OUTBOUND,
                body=body,
                rendered_body=body,
                status=MessageStatus.RECEIVED if inbound else MessageStatus.QUEUED,
                segments=info.segments,
                encoding=info.encoding,
                received_at=at if inbound else None,
            )
            # created_at is auto_now_add: back-date the history so the inbox reads naturally.
            Message.objects.filter(pk=message.pk).update(created_at=at)
            events_record_for_new_messages(message_ids=[message.pk], status=message.status)
            if not inbound:
                outbound.append((message.pk, at))
            last = (at, body)
        Conversation.objects.filter(pk=conversation.pk).update(
            last_message_at=last[0], last_message_preview=last[1][:160]
        )
    # Outbound history walks the state machine like a real send would (one statement per step), at the
    # message's own back-dated time: sent_at is when a text went out, and the inbox's last message follows
    # it (messaging/processors/conversation.py). Stamped "now", every seeded reply became its
    # conversation's newest message, previewed over the customer's later answer still marked Needs reply.
    for status in (MessageStatus.PREPARED, MessageStatus.SENDING, MessageStatus.SENT, MessageStatus.DELIVERED):
        messages_apply_statuses(
            updates=[
                StatusUpdate(i, status, at=at, carrier_status="Delivered" if status == "delivered" else "")
                for i, at in outbound
            ]
        )
    result.created.append(f"{len(contacts)} conversations")


def _seed_blast(result: DemoResult, line: Line) -> None:
    if Blast.objects.filter(organization=result.organization, name=BLAST_NAME).exists():
        return
    blast_create(
        organization=result.organization,
        line=line,
        name=BLAST_NAME,
        body="Hi {first_name}, our spring sale starts Friday: 20% off everything. Reply STOP to opt out.",
        audience=Audience(all_contacts=True),
    )
    result.created.append("draft blast")
