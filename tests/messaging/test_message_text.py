"""Issue 14.4 and 14.5: no send that can only fail (a line without a carrier account is refused, naming
it, and creating one warns); one text field to show (rendered_body), the same for every origin."""

from __future__ import annotations

from carriers.base import InboundMessage
from messaging.models import BlastRecipient, Contact, Message
from messaging.services import prepare, sending
from messaging.services.inbound import InboundItem, inbound_messages_receive
from messaging.services.recompute import derived_recompute
from postprocessing.services import events_drain
from tests import factories


# ------------------------------------------------------------------------------------- 14.4 no carrier
def test_a_send_on_a_line_without_a_carrier_account_is_a_400_naming_line(api, org):
    line = factories.LineFactory(organization=org, carrier_account=None)
    contacts, messages = Contact.objects.count(), Message.objects.count()
    r = api.post("/api/v1/messages", {"line": line.id, "to": factories.next_number(), "body": "Hi"})
    assert r.status_code == 400, r.content
    assert "carrier account" in r.json()["error"]["fields"]["line"][0]
    assert (Contact.objects.count(), Message.objects.count()) == (contacts, messages)  # nothing written
    conv = factories.ConversationFactory(organization=org, line=line)
    r = api.post(f"/api/v1/conversations/{conv.id}/messages", {"body": "Hi"})
    assert r.status_code == 400 and "carrier account" in r.json()["error"]["fields"]["conversation"][0]
    contact = factories.ContactFactory(organization=org)
    r = api.post("/api/v1/blasts", {"line": line.id, "body": "Hi", "audience": {"contact_ids": [contact.id]}})
    assert r.status_code == 400 and "carrier account" in r.json()["error"]["fields"]["line"][0]


def test_creating_a_line_without_a_carrier_account_warns(api, org):
    r = api.post("/api/v1/lines", {"phone_number": factories.next_number(), "name": "No carrier"})
    assert r.status_code == 201, r.content
    assert [w.split(":")[0] for w in r.json()["warnings"]] == ["carrier_account"]
    with_carrier = factories.LineFactory(organization=org)
    assert api.get(f"/api/v1/lines/{with_carrier.id}").json()["warnings"] == []


# --------------------------------------------------------------------------------- 14.5 one text field
def test_an_inbound_text_has_its_text_segments_and_encoding_like_any_message(api, org):
    line = factories.LineFactory(organization=org)
    inbound_messages_receive(
        items=[
            InboundItem(
                key=1,
                account_id=line.carrier_account_id,
                message=InboundMessage(
                    carrier_id="mo-1", from_number=factories.next_number(), to_number=line.phone_number, body="Où? 😀"
                ),
            )
        ]
    )
    m = Message.objects.get(carrier_batch_id="mo-1")
    assert (m.rendered_body, m.segments, m.encoding) == ("Où? 😀", 1, "UCS-2")
    shown = api.get(f"/api/v1/conversations/{m.conversation_id}/messages").json()["results"][0]
    assert shown["rendered_body"] == "Où? 😀"


def test_a_blast_message_shows_the_text_the_phone_got_everywhere(api, org, django_capture_on_commit_callbacks):
    org.quiet_hours_enabled = False
    org.save()
    line = factories.LineFactory(organization=org)
    contact = Contact.objects.create(organization=org, phone_number=factories.next_number(), first_name="Ann")
    blast = factories.BlastFactory(organization=org, line=line, body="Hi {first_name}, sale today")
    BlastRecipient.objects.create(blast=blast, contact=contact)
    with django_capture_on_commit_callbacks(execute=False):
        sending.blast_launch(organization=org, blast_id=blast.id)
    ((lo, hi),) = sending._chunk_ranges(blast.id)
    prepare.blast_prepare_chunk(blast_id=blast.id, first_recipient_id=lo, last_recipient_id=hi)
    m = Message.objects.get(blast=blast)
    from messaging.services.status import StatusUpdate, messages_apply_statuses
    from messaging.status import MessageStatus as S

    messages_apply_statuses(updates=[StatusUpdate(m.id, S.SENDING)])
    messages_apply_statuses(updates=[StatusUpdate(m.id, S.SENT)])
    events_drain()
    conv = m.conversation
    conv.refresh_from_db()
    assert conv.last_message_preview == "Hi Ann, sale today"
    assert api.get(f"/api/v1/conversations/{conv.id}/messages").json()["results"][0]["rendered_body"] == (
        "Hi Ann, sale today"
    )
    # the recompute (the migration tool's too) uses the same field
    conv.last_message_preview = ""
    conv.save()
    derived_recompute(organization_id=org.id)
    conv.refresh_from_db()
    assert conv.last_message_preview == "Hi Ann, sale today"


def test_a_conversation_message_has_its_text_from_the_moment_it_is_written(
    api, org, django_capture_on_commit_callbacks
):
    conv = factories.ConversationFactory(organization=org)
    with django_capture_on_commit_callbacks(execute=False):
        r = api.post(f"/api/v1/conversations/{conv.id}/messages", {"body": "On my way"})
    assert r.json()["rendered_body"] == "On my way"
