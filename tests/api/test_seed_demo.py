from io import StringIO

from django.core.management import call_command
from django.test import RequestFactory
from rest_framework.test import APIClient

from carriers.models import CarrierAccount
from demo.services import ADMIN_LOGIN, ORG_NAME
from messaging.models import Blast, BlastRecipient, Contact, Conversation, Line, Message
from messaging.status import MessageStatus
from organizations.models import ApiKey, Organization
from postprocessing.services import events_drain


def _run(*args):
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def _value(output, label):
    line = next(ln for ln in output.splitlines() if ln.strip().startswith(label))
    return line.split(label, 1)[1].split()[0]


def test_seed_demo_is_complete_and_idempotent(db, client):
    # when
    first = _run()
    second = _run()
    # then: one of everything, printed secrets work
    org = Organization.objects.get(name=ORG_NAME)
    password, key = _value(first, "password:"), _value(first, "API key:")
    assert client.login(request=RequestFactory().post("/login/"), username=ADMIN_LOGIN, password=password)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    conversations = api.get("/api/v1/conversations").json()["results"]
    assert len(conversations) == 3
    assert Contact.objects.filter(organization=org).count() == 50
    account = CarrierAccount.objects.get(organization=org)
    assert account.provider == "sandbox" and account.config["service_plan_id"] == "demo-plan"
    assert account.config["api_token"] and Line.objects.filter(organization=org).count() == 1
    statuses = set(Message.objects.filter(organization=org).values_list("direction", "status"))
    assert statuses == {("in", MessageStatus.RECEIVED), ("out", MessageStatus.DELIVERED)}
    blast = Blast.objects.get(organization=org)
    assert blast.status == "draft" and BlastRecipient.objects.filter(blast=blast).count() == 50
    assert ApiKey.objects.filter(organization=org).count() == 1
    assert Conversation.objects.filter(organization=org).count() == 3
    # and the rerun prints no secret, says the key exists and how to get a new one
    assert password not in second and key not in second
    assert "exists" in second and "/api/v1/api-keys" in second
    assert "already seeded" in second


def test_reset_password(db, client):
    _run()
    output = _run("--reset-password")
    assert client.login(
        request=RequestFactory().post("/login/"), username=ADMIN_LOGIN, password=_value(output, "password:")
    )


def test_seeded_inbox_shows_each_conversations_last_text(db):
    """The seeded outbound texts are sent at their own back-dated time: once post-processing has run, each
    conversation still shows its script's last text, at that text's time (stamped "now", the replies
    became the newest message, previewed over the customer's later answer)."""
    # given
    _run()
    # when: post-processing applies the seed's status events, as the worker would
    while events_drain().events:
        pass
    # then
    org = Organization.objects.get(name=ORG_NAME)
    for conversation in Conversation.objects.filter(organization=org):
        last = Message.objects.filter(conversation=conversation).order_by("-created_at", "-id").first()
        assert (conversation.last_message_preview, conversation.last_message_at) == (last.body, last.created_at)
        assert all(m.sent_at == m.created_at for m in conversation.messages.filter(direction="out"))
