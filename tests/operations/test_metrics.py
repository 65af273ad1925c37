"""/metrics: django-prometheus' families plus ours, read from the real database, Redis and broker."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from carriers.health import webhook_refusal_record
from carriers.models import WebhookEvent, WebhookKind
from messaging.counters import sends_count
from messaging.models import BlastProgress, BlastRecipient, BlastStatus, Message
from messaging.selectors import blasts_stalled
from messaging.status import MessageStatus as S
from operations import metrics
from postprocessing.models import Event
from postprocessing.services import events_drain
from tests import factories
from tests.worker import purge_queues

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fresh(settings):
    settings.REDIS_KEY_PREFIX = f"test-metrics-{time.monotonic_ns()}"  # counters of this test only
    metrics.CACHE_SECONDS, saved = 0.0, metrics.CACHE_SECONDS
    purge_queues()
    yield
    metrics.CACHE_SECONDS = saved
    purge_queues()


def scrape(client) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def test_metrics_expose_ours_and_django_prometheus(client, org):
    line = factories.LineFactory(organization=org)
    conv = factories.ConversationFactory(organization=org, line=line)
    for status in (S.QUEUED, S.QUEUED, S.PREPARED, S.SENT, S.DELIVERED):
        factories.MessageFactory(conversation=conv, status=status)
    account = line.carrier_account
    WebhookEvent.objects.create(account=account, kind=WebhookKind.DELIVERY, body=b"{}")
    webhook_refusal_record(account_id=account.pk, kind="delivery_report", status=401, reason="bad auth")
    webhook_refusal_record(account_id=None, kind="inbound", status=404, reason="no such secret")
    sends_count(line_id=line.pk, n=7)
    from messaging.tasks import release_due

    release_due.apply_async()  # one task waiting in the broker
    got = scrape(client)
    # messages in flight, exact, and whole-table estimates (present once ANALYZE ran)
    assert got[("parley_messages_in_flight", (("status", "queued"),))] == 2
    assert got[("parley_messages_in_flight", (("status", "prepared"),))] == 1
    assert got[("parley_messages_in_flight", (("status", "sent"),))] == 1
    assert ("parley_messages_in_flight", (("status", "delivered"),)) not in got
    # webhooks per carrier account
    assert got[("parley_webhooks_accepted_last_hour", (("account", str(account.pk)),))] == 1
    assert got[("parley_webhooks_refused_last_hour", (("account", str(account.pk)),))] == 1
    assert got[("parley_webhooks_refused_last_hour", (("account", "unknown"),))] == 1
    # queue depths, from the broker
    assert got[("parley_queue_depth", (("queue", "default"),))] == 1
    assert got[("parley_queue_depth", (("queue", "send"),))] == 0
    # sends per line
    assert got[("parley_messages_sent_total", (("line", str(line.pk)),))] == 7
    # the outbox: five messages' creation events are pending
    assert got[("parley_outbox_pending", ())] == Event.objects.filter(state="pending").count()
    assert got[("parley_outbox_lag_seconds", ())] >= 0
    assert all(v == 1 for (name, _), v in got.items() if name == "parley_metrics_source_up")
    # django-prometheus' own families are there too
    assert any(name.startswith("django_http_requests") for name, _ in got)


def test_a_failing_source_is_marked_down_and_the_scrape_still_answers(client, org, settings):
    from tests.worker import free_port

    broker = settings.CELERY_BROKER_URL
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{free_port()}/0"
    got = scrape(client)
    settings.CELERY_BROKER_URL = broker
    assert got[("parley_metrics_source_up", (("source", "queues"),))] == 0
    assert got[("parley_metrics_source_up", (("source", "messages"),))] == 1


def test_metric_queries_are_few(client, org, django_assert_max_num_queries):
    with django_assert_max_num_queries(12):
        scrape(client)


def _sending_blast(org, n: int, *, launched_seconds_ago: float):
    line = factories.LineFactory(organization=org)
    blast = factories.BlastFactory(
        organization=org,
        line=line,
        status=BlastStatus.SENDING,
        launched_at=timezone.now() - timedelta(seconds=launched_seconds_ago),
        recipient_count=n,
    )
    contacts = [factories.ContactFactory(organization=org) for _ in range(n)]
    BlastRecipient.objects.bulk_create([BlastRecipient(blast=blast, contact=c) for c in contacts])
    return blast, contacts


def test_a_blast_without_progress_for_a_minute_is_stalled_in_metrics_and_admin(client, org, admin_client):
    # given: a blast launched two minutes ago whose chunks never ran (no message at all)
    stuck, _ = _sending_blast(org, 3, launched_seconds_ago=120)
    # a blast launched just now, and one whose messages are all sent (it waits for the carrier only)
    fresh, _ = _sending_blast(org, 2, launched_seconds_ago=5)
    waiting, contacts = _sending_blast(org, 1, launched_seconds_ago=120)
    conv = factories.ConversationFactory(organization=org, line=waiting.line, contact=contacts[0])
    factories.MessageFactory(conversation=conv, blast=waiting, status=S.SENT)
    assert blasts_stalled() == [stuck.pk]
    listing = admin_client.get("/admin/messaging/blast/").content.decode()
    assert listing.count('alt="True"') == 1  # the stalled column flags the stuck blast only
    got = scrape(client)
    assert got[("parley_blasts_stalled", ())] == 1 and got[("parley_blasts_sending", ())] == 3
    # the admin's list filter shows it and only it, flagged
    page = admin_client.get("/admin/messaging/blast/?stalled=yes").content.decode()
    assert f"/admin/messaging/blast/{stuck.pk}/change/" in page
    assert f"/admin/messaging/blast/{fresh.pk}/change/" not in page
    assert f"/admin/messaging/blast/{waiting.pk}/change/" not in page
    # when its messages start moving (prepare created one: its message.queued event is drained)
    conv2 = factories.ConversationFactory(organization=org, line=stuck.line)
    m = factories.MessageFactory(conversation=conv2, blast=stuck, status=S.QUEUED)
    Event.objects.create(type="message.queued", message_id=m.pk, payload={"status": "queued"})
    events_drain()
    # then it has progressed: not stalled any more, until a minute passes without a move
    assert BlastProgress.objects.filter(blast_id=stuck.pk).exists()
    assert blasts_stalled() == []
    assert admin_client.get("/admin/messaging/blast/").status_code == 200  # nothing stalled: the column still renders
    BlastProgress.objects.filter(blast_id=stuck.pk).update(at=timezone.now() - timedelta(seconds=61))
    assert blasts_stalled() == [stuck.pk]
    assert Message.objects.filter(blast=stuck).count() == 1
