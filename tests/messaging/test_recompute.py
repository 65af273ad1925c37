from datetime import timedelta

from django.core.management import call_command
from django.utils import timezone

from messaging.models import Blast, BlastStatus, Conversation, Message
from messaging.services.recompute import derived_recompute
from messaging.status import MessageStatus as S
from postprocessing.services import events_drain
from tests.factories import ConversationFactory, LineFactory, MessageFactory, OrganizationFactory, UserFactory


def test_recompute_derived_rebuilds_conversations_and_blasts_even_backwards(blast_with_messages, capsys):
    # given derived fields broken by a "bug" (a future time, wrong counters), and no events at all
    blast, msgs = blast_with_messages(3, status=S.DELIVERED)
    conv = msgs[0].conversation
    Conversation.objects.filter(pk=conv.pk).update(
        last_message_at=timezone.now() + timedelta(days=3), last_message_preview="bogus"
    )
    Blast.objects.filter(pk=blast.pk).update(sent_count=99, delivered_count=0)
    # when
    call_command("recompute_derived", "--no-progress")
    # then
    conv.refresh_from_db()
    blast.refresh_from_db()
    msgs[0].refresh_from_db()
    assert (conv.last_message_at, conv.last_message_preview) == (msgs[0].sent_at, "Hi First0")
    assert (blast.sent_count, blast.delivered_count, blast.status) == (3, 3, BlastStatus.COMPLETED)
    assert "conversations: 3 checked" in capsys.readouterr().out


def test_recompute_is_scoped_by_organization_and_line(db):
    org, other = OrganizationFactory(), OrganizationFactory()
    line_a, line_b = LineFactory(organization=org), LineFactory(organization=org)
    conv_a = ConversationFactory(organization=org, line=line_a)
    conv_b = ConversationFactory(organization=org, line=line_b)
    conv_x = ConversationFactory(organization=other)
    for c in (conv_a, conv_b, conv_x):
        MessageFactory(conversation=c, body=f"in {c.pk}", direction="in", status=S.RECEIVED)
    derived_recompute(line_id=line_a.id)
    assert list(Conversation.objects.exclude(last_message_at=None).values_list("id", flat=True)) == [conv_a.id]
    result = derived_recompute(organization_id=org.id, batch_size=1)
    assert result.conversations == 2 and result.conversations_changed == 1
    assert Conversation.objects.get(pk=conv_x.pk).last_message_at is None


def test_recompute_of_a_conversation_without_messages_clears_it(db):
    conv = ConversationFactory(last_message_at=timezone.now(), last_message_preview="gone")
    derived_recompute(organization_id=conv.organization_id)
    conv.refresh_from_db()
    assert (conv.last_message_at, conv.last_message_preview) == (None, "")


def test_recompute_scoped_to_a_blast(blast_with_messages):
    blast, msgs = blast_with_messages(2, status=S.SENT)
    lone = MessageFactory(body="not in the blast")
    result = derived_recompute(blast_id=blast.id)
    assert (result.conversations, result.blasts) == (2, 1)
    assert Conversation.objects.get(pk=lone.conversation_id).last_message_at is None
    assert Blast.objects.get(pk=blast.pk).sent_count == 2


def test_number_flag_admin_actions(blast_with_messages, client):
    from messaging.models import NumberFlag, OptOut

    blast, msgs = blast_with_messages(1, status=S.SENT)
    from tests.messages import move

    move(msgs, S.UNDELIVERED, carrier_status="Deleted")
    events_drain()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    assert client.get("/admin/messaging/numberflag/").status_code == 200
    flag = NumberFlag.objects.get()
    client.post("/admin/messaging/numberflag/", {"action": "opt_out", "_selected_action": [flag.pk]})
    assert OptOut.objects.filter(phone_number=flag.phone_number, source="carrier").exists()


def test_messages_without_blast_do_not_touch_blasts(db):
    m = MessageFactory(status=S.SENT)
    from tests.messages import move

    move([m], S.DELIVERED)
    events_drain()
    assert Message.objects.get(pk=m.pk).status == S.DELIVERED
