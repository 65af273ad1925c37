"""Issue 14.6: deleting a contact keeps its history (archive); erase redacts personal data but keeps
counts, statuses, the opt-out proof and true blast and link reports; no cascade to messages.

Real rows through the API, the real prepare step and the real post-processing recompute."""

from __future__ import annotations

import pytest
from django.db import models
from django.db.models.deletion import ProtectedError, RestrictedError

from carriers.models import WebhookEvent, WebhookKind, WebhookState
from messaging.models import Blast, BlastRecipient, Contact, Conversation, Message, OptOut
from messaging.services import erasure, prepare, sending
from messaging.services.recompute import derived_recompute
from messaging.services.status import StatusUpdate, messages_apply_statuses
from messaging.status import MessageStatus as S
from shortener.models import Click, Link
from tests import factories


def _sent_blast(org, contacts, capture, body="Hi {first_name}: https://shop.example.com/p?n={first_name}"):
    """A blast to `contacts` prepared through the real pipeline, every message delivered."""
    org.quiet_hours_enabled = False
    org.save()
    line = factories.LineFactory(organization=org)
    blast = factories.BlastFactory(organization=org, line=line, body=body)
    BlastRecipient.objects.bulk_create([BlastRecipient(blast=blast, contact=c) for c in contacts])
    with capture(execute=False):
        sending.blast_launch(organization=org, blast_id=blast.id)
    ((lo, hi),) = sending._chunk_ranges(blast.id)
    prepare.blast_prepare_chunk(blast_id=blast.id, first_recipient_id=lo, last_recipient_id=hi)
    ids = list(Message.objects.filter(blast=blast).values_list("id", flat=True))
    for status in (S.SENDING, S.SENT, S.DELIVERED):
        messages_apply_statuses(updates=[StatusUpdate(i, status) for i in ids])
    derived_recompute(organization_id=org.id)
    for link in Link.objects.filter(blast=blast):
        Click.objects.create(link=link, uid=f"u{link.pk}", clicked_at=link.created_at)
        Link.objects.filter(pk=link.pk).update(click_count=1, unique_click_count=1)
    blast.refresh_from_db()
    return blast


def _blast_report(blast):
    blast = Blast.objects.get(pk=blast.pk)
    links = Link.objects.filter(blast=blast)
    return (
        blast.recipient_count,
        blast.sent_count,
        blast.delivered_count,
        blast.delivery_rate,
        links.count(),
        sum(link.click_count for link in links),
        Click.objects.filter(link__blast=blast).count(),
    )


def _contacts(org, n):
    return [
        Contact.objects.create(
            organization=org, phone_number=factories.next_number("737"), first_name=f"Ann{i}", email=f"a{i}@ex.com"
        )
        for i in range(n)
    ]


def test_delete_archives_the_contact_and_keeps_its_history(api, org, django_capture_on_commit_callbacks):
    contacts = _contacts(org, 3)
    blast = _sent_blast(org, contacts, django_capture_on_commit_callbacks)
    gone = contacts[0]
    report = _blast_report(blast)
    messages = Message.objects.filter(contact=gone).count()

    r = api.delete(f"/api/v1/contacts/{gone.id}")

    assert r.status_code == 204
    gone.refresh_from_db()
    assert gone.archived_at is not None and gone.first_name == "Ann0"  # kept, hidden
    assert Message.objects.filter(contact=gone).count() == messages == 1
    assert Conversation.objects.filter(contact=gone).exists()
    assert BlastRecipient.objects.filter(blast=blast, contact=gone).exists()
    assert Link.objects.filter(contact=gone).count() == 1 and Click.objects.filter(link__contact=gone).count() == 1
    derived_recompute(organization_id=org.id)
    assert _blast_report(blast) == report  # the blast still reports what happened
    # hidden: not listed, not found, not in an audience
    assert gone.id not in {c["id"] for c in api.get("/api/v1/contacts").json()["results"]}
    assert api.get(f"/api/v1/contacts/{gone.id}").status_code == 404
    r = api.post("/api/v1/blasts", {"line": blast.line_id, "body": "Hi", "audience": {"all": True}})
    assert r.status_code == 201 and r.json()["recipient_count"] == 2
    r = api.post("/api/v1/blasts", {"line": blast.line_id, "body": "Hi", "audience": {"contact_ids": [gone.id]}})
    assert r.status_code == 400 and "audience.contact_ids" in r.json()["error"]["fields"]


def test_an_archived_contact_is_never_texted_again(api, org, django_capture_on_commit_callbacks):
    org.quiet_hours_enabled = False
    org.save()
    (gone, kept) = _contacts(org, 2)
    line = factories.LineFactory(organization=org)
    conv = factories.ConversationFactory(organization=org, line=line, contact=gone)
    blast = factories.BlastFactory(organization=org, line=line, body="Hi {first_name}")
    BlastRecipient.objects.bulk_create([BlastRecipient(blast=blast, contact=c) for c in (gone, kept)])
    with django_capture_on_commit_callbacks(execute=False):
        scheduled = api.post(
            f"/api/v1/conversations/{conv.id}/messages", {"body": "later", "send_at": "2031-01-01T09:00Z"}
        )
    assert scheduled.status_code == 202

    assert api.delete(f"/api/v1/contacts/{gone.id}").status_code == 204

    # what was waiting is canceled, new sends are refused naming the input
    assert Message.objects.get(pk=scheduled.json()["id"]).status == S.CANCELED
    r = api.post(f"/api/v1/conversations/{conv.id}/messages", {"body": "Hi"})
    assert r.status_code == 409 and "conversation" in r.json()["error"]["fields"]
    r = api.post("/api/v1/messages", {"line": line.id, "to": gone.phone_number, "body": "Hi"})
    assert r.status_code == 409 and "to" in r.json()["error"]["fields"]
    # a blast created before the delete blocks the archived recipient
    with django_capture_on_commit_callbacks(execute=False):
        sending.blast_launch(organization=org, blast_id=blast.id)
    ((lo, hi),) = sending._chunk_ranges(blast.id)
    prepare.blast_prepare_chunk(blast_id=blast.id, first_recipient_id=lo, last_recipient_id=hi)
    assert Message.objects.get(blast=blast, contact=gone).status == S.BLOCKED
    assert Message.objects.get(blast=blast, contact=kept).status == S.PREPARED
    # adding the number again is an explicit choice: the contact comes back, with its history
    r = api.post("/api/v1/contacts", {"phone_number": gone.phone_number, "first_name": "Back"})
    assert r.status_code == 201 and r.json()["id"] == gone.id and r.json()["archived_at"] is None


def test_erase_redacts_personal_data_and_keeps_counts_statuses_and_reports(
    api, org, django_capture_on_commit_callbacks
):
    contacts = _contacts(org, 3)
    blast = _sent_blast(org, contacts, django_capture_on_commit_callbacks)
    target = contacts[1]
    number = target.phone_number
    OptOut.objects.create(organization=org, phone_number=number, source="keyword", reason="Replied STOP")
    account = blast.line.carrier_account
    raw = WebhookEvent.objects.create(
        account=account,
        kind=WebhookKind.INBOUND,
        body=f'{{"from": "{number[1:]}", "body": "STOP"}}'.encode(),
        state=WebhookState.PROCESSED,
    )
    other_raw = WebhookEvent.objects.create(
        account=account, kind=WebhookKind.INBOUND, body=b'{"from": "15125550000"}', state=WebhookState.PROCESSED
    )
    report = _blast_report(blast)
    message = Message.objects.get(contact=target)
    assert "Ann1" in message.rendered_body and message.segments == 1

    r = api.post(f"/api/v1/contacts/{target.id}/erase")

    assert r.status_code == 200, r.content
    target.refresh_from_db()
    assert (target.first_name, target.last_name, target.email, target.custom_fields) == ("", "", "", {})
    assert number not in target.phone_number and target.erased_at and target.archived_at
    message.refresh_from_db()
    # no text, no number; the status, times and counts stay
    assert (message.body, message.rendered_body, message.carrier_recipient) == ("", "", "")
    assert (message.status, message.segments) == (S.DELIVERED, 1) and message.delivered_at is not None
    assert Conversation.objects.get(contact=target).last_message_preview == ""
    (link,) = Link.objects.filter(contact=target)
    assert link.target_url == "https://shop.example.com/" and link.click_count == 1
    derived_recompute(organization_id=org.id)
    assert _blast_report(blast) == report
    # the opt-out stays as proof, without the number: a keyed hash
    (opt_out,) = OptOut.objects.filter(organization=org)
    assert number not in opt_out.phone_number and opt_out.erased_at is not None
    assert opt_out.phone_hash == erasure.phone_hash(number) and number[1:] not in opt_out.phone_hash
    raw.refresh_from_db()
    other_raw.refresh_from_db()
    assert number[1:].encode() not in bytes(raw.body) and bytes(other_raw.body) == b'{"from": "15125550000"}'
    # no personal data of theirs left in the tables that held it
    for model, fields in (
        (Contact, ["phone_number", "first_name", "email"]),
        (Message, ["body", "rendered_body", "carrier_recipient"]),
        (OptOut, ["phone_number"]),
        (Link, ["target_url"]),
    ):
        for field in fields:
            assert not model.objects.filter(**{f"{field}__contains": number[2:]}).exists(), (model, field)
            assert not model.objects.filter(**{f"{field}__contains": "Ann1"}).exists(), (model, field)
    # erasing twice changes nothing more
    again = api.post(f"/api/v1/contacts/{target.id}/erase")
    assert again.status_code == 200 and again.json()["erased_at"] == r.json()["erased_at"]


def test_a_deleted_contact_can_still_be_erased(api, org):
    (contact,) = _contacts(org, 1)
    assert api.delete(f"/api/v1/contacts/{contact.id}").status_code == 204
    r = api.post(f"/api/v1/contacts/{contact.id}/erase")
    assert r.status_code == 200, r.content
    assert r.json()["first_name"] == "" and r.json()["erased_at"] is not None


def test_an_erased_number_that_comes_back_is_still_opted_out(api, org, settings):
    line = factories.LineFactory(organization=org)
    contact = Contact.objects.create(organization=org, phone_number=factories.next_number())
    number = contact.phone_number
    OptOut.objects.create(organization=org, phone_number=number, source="keyword")
    erasure.contact_erase(contact=contact)
    assert not OptOut.objects.filter(phone_number=number).exists()
    # sent to by number: the opt-out is found again by its hash
    r = api.post("/api/v1/messages", {"line": line.id, "to": number, "body": "Hi again"})
    assert r.status_code == 409 and "opted out" in r.json()["error"]["fields"]["to"][0]
    assert OptOut.objects.filter(organization=org, phone_number=number).exists()
    # the hash is keyed by the setting: another key, another hash
    settings.CONTACT_ERASURE_HASH_KEY = "another key"
    assert erasure.phone_hash(number) != OptOut.objects.get(phone_number=number).phone_hash


def test_an_erased_number_imported_again_is_opted_out(api, org):
    contact = Contact.objects.create(organization=org, phone_number=factories.next_number())
    number = contact.phone_number
    OptOut.objects.create(organization=org, phone_number=number, source="keyword")
    erasure.contact_erase(contact=contact)
    r = api.post("/api/v1/contacts/import", {"contacts": [{"phone_number": number}]})
    assert r.status_code == 200 and r.json()["created"] == 1
    assert OptOut.objects.filter(organization=org, phone_number=number).exists()


def test_admin_archives_and_erases_and_cannot_delete(org, admin_client):
    a, b = _contacts(org, 2)
    r = admin_client.post("/admin/messaging/contact/", {"action": "archive", "_selected_action": [a.pk]}, follow=True)
    assert r.status_code == 200
    a.refresh_from_db()
    assert a.archived_at is not None and a.first_name == "Ann0"
    admin_client.post("/admin/messaging/contact/", {"action": "erase", "_selected_action": [b.pk]}, follow=True)
    b.refresh_from_db()
    assert b.erased_at is not None and b.first_name == ""
    assert admin_client.get(f"/admin/messaging/contact/{a.pk}/delete/").status_code == 403


# Every foreign key that leads to messages, and the choice made for it (see the comments in
# messaging/models/__init__.py). A new CASCADE on this list fails here until its reason is written down.
FK_CHOICES = {
    ("Message", "organization"): models.CASCADE,  # deleting a whole tenant: the one path that removes messages
    ("Message", "line"): models.RESTRICT,
    ("Message", "conversation"): models.RESTRICT,
    ("Message", "contact"): models.RESTRICT,
    ("Message", "blast"): models.RESTRICT,
    ("Message", "sent_by"): models.SET_NULL,
    ("Conversation", "line"): models.RESTRICT,
    ("Conversation", "contact"): models.RESTRICT,
    ("BlastRecipient", "contact"): models.RESTRICT,
}


@pytest.mark.parametrize(("model", "field"), sorted(FK_CHOICES))
def test_every_foreign_key_to_messages_has_its_stated_on_delete(model, field):
    from django.apps import apps

    assert (
        apps.get_model("messaging", model)._meta.get_field(field).remote_field.on_delete is FK_CHOICES[(model, field)]
    )


def test_deleting_a_contact_line_or_blast_with_messages_is_refused(org):
    message = factories.MessageFactory(conversation=factories.ConversationFactory(organization=org))
    blast = factories.BlastFactory(organization=org, line=message.line)
    Message.objects.filter(pk=message.pk).update(blast=blast)
    for obj in (message.contact, message.line, blast, message.conversation):
        with pytest.raises((ProtectedError, RestrictedError)):
            type(obj).objects.get(pk=obj.pk).delete()
    assert Message.objects.filter(pk=message.pk).exists()
