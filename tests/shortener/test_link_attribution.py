"""The shortener's post-processing processor (shortener/processors.py): links in a sent message are
attributed to it, once, through the real drain."""

from django.db import connection

from messaging.models import Message
from messaging.status import MessageStatus as S
from postprocessing.services import events_drain
from tests.messages import move, redrain_all


def _link(org, code, **attribution):
    with connection.cursor() as c:
        c.execute(
            "INSERT INTO shortener_link (code, organization_id, target_url, message_id, contact_id, blast_id)"
            " VALUES (%s, %s, 'https://example.com/sale', %s, %s, %s) RETURNING id",
            [code, org.id, attribution.get("message"), attribution.get("contact"), attribution.get("blast")],
        )
        return c.fetchone()[0]


def _attribution(link_id):
    with connection.cursor() as c:
        c.execute("SELECT message_id, contact_id, blast_id FROM shortener_link WHERE id = %s", [link_id])
        return c.fetchone()


def test_links_in_a_sent_message_are_attributed_once(blast_with_messages, settings):
    settings.SHORT_LINK_DOMAIN = "prly.test"
    blast, msgs = blast_with_messages(2, status=S.SENDING)
    m, other = msgs
    free = _link(blast.organization, "Ab3xYz9")
    taken = _link(blast.organization, "Taken01", message=other.id, contact=other.contact_id, blast=blast.id)
    lookalike = _link(blast.organization, "Elsewhere")  # same code shape, but on a foreign host in the body
    Message.objects.filter(pk=m.pk).update(
        rendered_body="Sale! http://prly.test/Ab3xYz9 and https://prly.test/Taken01 see https://bit.ly/Elsewhere"
    )
    move([m], S.SENT)
    events_drain()
    assert _attribution(free) == (m.id, m.contact_id, blast.id)
    assert _attribution(taken) == (other.id, other.contact_id, blast.id)  # never stolen
    assert _attribution(lookalike) == (None, None, None)
    redrain_all()
    assert _attribution(free) == (m.id, m.contact_id, blast.id)
