"""The send endpoints: thin views over messaging.services.sending (tenancy, errors, after-commit enqueue)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.cache import cache as django_cache
from django.utils import timezone
from rest_framework.test import APIClient

from messaging.models import Blast, BlastRecipient, BlastStatus, Contact, Conversation, Message, OptOut
from messaging.status import MessageStatus as S
from organizations.services import api_key_create
from postprocessing.models import Event
from tests import factories


@pytest.fixture
def api(org):
    django_cache.clear()  # throttle buckets of an earlier test database
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_create(organization=org, name='t').raw_key}")
    return client


def _fields(response):
    return response.json()["error"]["fields"]


def test_conversation_message_is_written_queued_and_prepare_is_enqueued_after_commit(
    api, org, django_capture_on_commit_callbacks
):
    conv = factories.ConversationFactory(organization=org)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        r = api.post(f"/api/v1/conversations/{conv.id}/messages", {"body": "On my way"}, format="json")
    assert r.status_code == 202, r.content
    m = Message.objects.get(pk=r.json()["id"])
    assert m.status == S.QUEUED and m.direction == "out" and m.body == "On my way"
    assert m.client_reference.startswith("m:")
    assert Event.objects.filter(message_id=m.id, type="message.queued").exists()
    assert len(callbacks) == 1  # the prepare task, published only once the transaction commits


def test_get_on_the_same_path_still_lists_the_conversation_messages(api, org):
    conv = factories.ConversationFactory(organization=org)
    factories.MessageFactory(conversation=conv)
    r = api.get(f"/api/v1/conversations/{conv.id}/messages")
    assert r.status_code == 200 and len(r.json()["results"]) == 1


def test_sending_to_an_opted_out_number_is_refused_with_409_naming_the_field(api, org):
    conv = factories.ConversationFactory(organization=org)
    OptOut.objects.create(organization=org, phone_number=conv.contact.phone_number)
    r = api.post(f"/api/v1/conversations/{conv.id}/messages", {"body": "Hi"}, format="json")
    assert r.status_code == 409
    assert "opted out" in _fields(r)["conversation"][0]
    r = api.post(
        "/api/v1/messages", {"line": conv.line_id, "to": conv.contact.phone_number, "body": "Hi"}, format="json"
    )
    assert r.status_code == 409 and "to" in _fields(r)
    assert not Message.objects.exists()


def test_another_tenants_conversation_answers_404(api, other_org):
    conv = factories.ConversationFactory(organization=other_org)
    r = api.post(f"/api/v1/conversations/{conv.id}/messages", {"body": "Hi"}, format="json")
    assert r.status_code == 404


def test_new_conversation_by_number(api, org, django_capture_on_commit_callbacks):
    line = factories.LineFactory(organization=org)
    with django_capture_on_commit_callbacks(execute=False):
        r = api.post(
            "/api/v1/messages",
            {"line": line.id, "to": "(512) 555-0123".replace("555-0123", "201-4455"), "body": "Hello"},
            format="json",
        )
    assert r.status_code == 202, r.content
    contact = Contact.objects.get(organization=org, phone_number="+15122014455")
    assert Conversation.objects.filter(line=line, contact=contact).count() == 1
    assert Message.objects.get(pk=r.json()["id"]).conversation.contact_id == contact.id


@pytest.mark.parametrize(
    ("payload", "field"),
    [({"to": "12"}, "to"), ({"body": ""}, "body"), ({"line": 999999}, "line"), ({"body": "x" * 1601}, "body")],
)
def test_bad_input_names_the_field(api, org, payload, field):
    line = factories.LineFactory(organization=org)
    data = {"line": line.id, "to": "+15122014455", "body": "Hello", **payload}
    r = api.post("/api/v1/messages", data, format="json")
    assert r.status_code == 400 and field in _fields(r), r.content


def test_another_tenants_line_is_refused(api, org, other_org):
    line = factories.LineFactory(organization=other_org)
    r = api.post("/api/v1/messages", {"line": line.id, "to": "+15122014455", "body": "Hi"}, format="json")
    assert r.status_code == 400 and "line" in _fields(r)


def _draft(org, n=3, **kwargs):
    blast = factories.BlastFactory(organization=org, **kwargs)
    contacts = [factories.ContactFactory(organization=org) for _ in range(n)]
    BlastRecipient.objects.bulk_create([BlastRecipient(blast=blast, contact=c) for c in contacts])
    return blast, contacts


def test_preview_counts_recipients_opt_outs_and_segments(api, org):
    blast, contacts = _draft(org, 4, body="Hi {first_name}, see https://example.com/a/very/long/path/to/the/sale")
    OptOut.objects.create(organization=org, phone_number=contacts[0].phone_number)
    for method in (api.get, api.post):
        r = method(f"/api/v1/blasts/{blast.id}/preview")
        assert r.status_code == 200, r.content
        body = r.json()
        assert body["recipient_count"] == 4 and body["opted_out_count"] == 1 and body["sendable_count"] == 3
        assert body["segments_total"] == 3 and body["segments_per_message"] == {"min": 1, "max": 1}
    assert Blast.objects.get(pk=blast.id).status == BlastStatus.DRAFT


def test_launch_enqueues_one_prepare_task_per_1000_recipients_after_commit(
    api, org, django_capture_on_commit_callbacks
):
    blast, _ = _draft(org, 3)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        r = api.post(f"/api/v1/blasts/{blast.id}/launch")
    assert r.status_code == 202, r.content
    assert r.json()["status"] == "sending" and r.json()["recipient_count"] == 3
    assert len(callbacks) == 1
    r = api.post(f"/api/v1/blasts/{blast.id}/launch")
    assert r.status_code == 409 and "status" in _fields(r)


def test_launch_with_a_future_send_time_schedules_and_release_due_starts_it(
    api, org, django_capture_on_commit_callbacks
):
    from messaging.services.sending import blasts_start_due

    blast, _ = _draft(org, 2, send_at=timezone.now() + timedelta(hours=1))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        r = api.post(f"/api/v1/blasts/{blast.id}/launch")
    assert r.json()["status"] == "scheduled" and callbacks == []
    assert blasts_start_due() == 0
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert blasts_start_due(now=timezone.now() + timedelta(hours=2)) == 1
    assert Blast.objects.get(pk=blast.id).status == BlastStatus.SENDING and len(callbacks) == 1


def test_cancel_cancels_what_has_not_reached_the_carrier(api, org):
    blast, contacts = _draft(org, 3)
    blast.status = BlastStatus.SENDING
    blast.save()
    conv = factories.ConversationFactory(organization=org, line=blast.line, contact=contacts[0])
    waiting = factories.MessageFactory(conversation=conv, blast=blast, status=S.PREPARED)
    gone = factories.MessageFactory(conversation=conv, blast=blast, status=S.SENT)
    r = api.post(f"/api/v1/blasts/{blast.id}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "canceled"
    waiting.refresh_from_db()
    gone.refresh_from_db()
    assert waiting.status == S.CANCELED and gone.status == S.SENT
    assert api.post(f"/api/v1/blasts/{blast.id}/cancel").status_code == 409


def test_blast_endpoints_of_another_tenant_answer_404(api, other_org):
    blast, _ = _draft(other_org, 1)
    for action in ("launch", "preview", "cancel"):
        assert api.post(f"/api/v1/blasts/{blast.id}/{action}").status_code == 404
