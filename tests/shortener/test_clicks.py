import pytest

from postprocessing.models import Event
from shortener import conf, services
from shortener.cache import redis_client
from shortener.clicks import bot_reason, clicks_flush
from shortener.models import Click, Link, LinkVisitor
from shortener.services import LinkItem, links_shorten_for_messages
from tests import factories
from tests.shortener.conftest import buffered_clicks

IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 Safari/604.1"
ANDROID = "Mozilla/5.0 (Linux; Android 13; SM-S901B) AppleWebKit/537.36 Chrome/112.0 Mobile Safari/537.36"
IMESSAGE = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_1) AppleWebKit/601.2.4 (KHTML, like Gecko) Version/9.0.1 "
    "Safari/601.2.4 facebookexternalhit/1.1 Facebot Twitterbot/1.0"
)


@pytest.fixture
def link(org, on_commit):
    with on_commit():
        return services.link_create(organization_id=org.id, target_url="https://example.com/")


@pytest.mark.parametrize(
    ("method", "ua", "reason"),
    [
        ("GET", IPHONE, ""),
        ("GET", ANDROID, ""),
        ("HEAD", IPHONE, "head_request"),
        ("GET", "", "empty_user_agent"),
        ("GET", IMESSAGE, "crawler:facebookexternalhit"),
        ("GET", "WhatsApp/2.23.20.0 A", "crawler:WhatsApp"),
        ("GET", "Twitterbot/1.0", "crawler:Twitterbot"),
        ("GET", "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", "crawler:Slackbot"),
        ("GET", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "crawler:Googlebot"),
        ("GET", "Snapchat/12.0 (like Safari/604.1)", "preview:snapchat"),
        ("GET", "Mozilla/5.0 (X11; Linux x86_64) Chrome/51.0 Safari/537.36 Google-Messages", "preview:google-messages"),
    ],
)
def test_bot_flags_and_reasons(method, ua, reason):
    assert bot_reason(method, ua) == reason


def test_flush_writes_clicks_counts_people_and_flags_bots(short_client, link):
    # given two people (one clicking twice), a preview fetcher and a HEAD
    short_client.get(f"/{link.code}", HTTP_USER_AGENT=IPHONE, REMOTE_ADDR="198.51.100.7", HTTP_REFERER="sms")
    short_client.get(f"/{link.code}", HTTP_USER_AGENT=IPHONE, REMOTE_ADDR="198.51.100.7")
    short_client.get(f"/{link.code}", HTTP_USER_AGENT=ANDROID, REMOTE_ADDR="198.51.100.8")
    short_client.get(f"/{link.code}", HTTP_USER_AGENT=IMESSAGE, REMOTE_ADDR="17.0.0.1")
    short_client.head(f"/{link.code}", HTTP_USER_AGENT=IPHONE)
    short_client.get("/Unknown12", HTTP_USER_AGENT=IPHONE)
    assert buffered_clicks() == 6
    # when
    written = clicks_flush()
    # then the unknown code is dropped, the buffer is empty, the rest are rows
    assert written == 5 and buffered_clicks() == 0
    link.refresh_from_db()
    assert (link.click_count, link.unique_click_count, link.bot_click_count) == (3, 2, 2)
    assert link.last_clicked_at is not None
    rows = list(Click.objects.filter(link=link).order_by("id").values_list("is_bot", "is_unique", "ip_prefix"))
    assert rows == [
        (False, True, "198.51.100.0/24"),
        (False, False, "198.51.100.0/24"),
        (False, True, "198.51.100.0/24"),
        (True, False, "17.0.0.0/24"),
        (True, False, "127.0.0.0/24"),
    ]
    first = Click.objects.filter(link=link).order_by("id").first()
    assert first.referrer == "sms" and first.user_agent == IPHONE and len(first.visitor_hash) == 32


def test_unique_clicks_of_attributed_links_are_by_contact(org, short_client, on_commit):
    m = factories.MessageFactory(conversation__organization=org)
    with on_commit():
        links_shorten_for_messages(
            organization_id=org.id, items=[LinkItem(m.id, m.contact_id, None, "go https://example.com/x")]
        )
    link = Link.objects.get(message=m)
    # the contact clicks from two devices: still one unique clicker
    short_client.get(f"/{link.code}", HTTP_USER_AGENT=IPHONE, REMOTE_ADDR="198.51.100.7")
    short_client.get(f"/{link.code}", HTTP_USER_AGENT=ANDROID, REMOTE_ADDR="203.0.113.9")
    clicks_flush()
    link.refresh_from_db()
    assert (link.click_count, link.unique_click_count) == (2, 1)
    assert list(LinkVisitor.objects.filter(link=link).values_list("visitor", flat=True)) == [f"c{m.contact_id}"]


def test_flush_across_batches_keeps_uniques_and_replays_are_not_counted_twice(short_client, link):
    for _ in range(3):
        short_client.get(f"/{link.code}", HTTP_USER_AGENT=IPHONE, REMOTE_ADDR="198.51.100.7")
    entries = redis_client().lrange(conf.clicks_buffer_key(), 0, -1)
    assert clicks_flush(batch_size=2) == 3  # two batches
    # a crash between commit and LTRIM: the same entries come back
    redis_client().rpush(conf.clicks_buffer_key(), *entries)
    assert clicks_flush() == 0
    link.refresh_from_db()
    assert (link.click_count, link.unique_click_count) == (3, 1)
    assert Click.objects.filter(link=link).count() == 3


def test_a_second_runner_waits_for_the_lock(short_client, link):
    short_client.get(f"/{link.code}", HTTP_USER_AGENT=IPHONE)
    redis_client().set(f"{conf.redis_key_prefix()}:flush-lock", "someone-else", px=5000)
    assert clicks_flush() == 0 and buffered_clicks() == 1


def test_flush_is_set_based(short_client, link, org, on_commit, django_assert_num_queries):
    with on_commit():
        other = services.link_create(organization_id=org.id, target_url="https://example.com/2")
    for i in range(20):
        short_client.get(f"/{(link, other)[i % 2].code}", HTTP_USER_AGENT=IPHONE, REMOTE_ADDR=f"198.51.100.{i}")
    # links lookup, savepoint, visitors, clicks, counters, the click rollup's slots (links of no blast: no
    # blast target or clicker rows), one link.clicked event (one organization), release savepoint — whatever
    # the number of clicks
    with django_assert_num_queries(8):
        assert clicks_flush() == 20


def test_human_clicks_emit_link_clicked_events(org, short_client, link, on_commit):
    m = factories.MessageFactory(conversation__organization=org)
    with on_commit():
        links_shorten_for_messages(
            organization_id=org.id, items=[LinkItem(m.id, m.contact_id, None, "go https://example.com/x")]
        )
    attributed = Link.objects.get(message=m)
    short_client.get(f"/{attributed.code}", HTTP_USER_AGENT=IPHONE)
    short_client.get(f"/{attributed.code}", HTTP_USER_AGENT=IPHONE)
    short_client.get(f"/{attributed.code}", HTTP_USER_AGENT=IMESSAGE)  # a bot: no event
    short_client.get(f"/{link.code}", HTTP_USER_AGENT=ANDROID)
    clicks_flush()
    events = list(Event.objects.filter(type="link.clicked").order_by("id").values_list("message_id", "payload"))
    assert events == [
        (m.id, {"source": "shortener"}),
        (
            None,
            {
                "source": "shortener",
                "organization_id": org.id,
                "links": [{"link_id": link.id, "clicks": 1, "unique": 1}],
            },
        ),
    ]


def test_only_bot_clicks_emit_nothing(short_client, link):
    short_client.get(f"/{link.code}", HTTP_USER_AGENT="Twitterbot/1.0")
    short_client.head(f"/{link.code}")
    clicks_flush()
    assert not Event.objects.filter(type="link.clicked").exists()


def test_flush_task_is_registered_scheduled_and_writes(short_client, link):
    from config.beat import BEAT_SCHEDULE
    from config.queues import TASK_ROUTES
    from shortener.tasks import flush_clicks

    assert BEAT_SCHEDULE["shortener.flush_clicks"] == {"task": "shortener.flush_clicks", "schedule": 1.0}
    assert flush_clicks.name == "shortener.flush_clicks" and "shortener.*" in TASK_ROUTES
    short_client.get(f"/{link.code}", HTTP_USER_AGENT=IPHONE)
    assert flush_clicks.apply().get() == 1
    link.refresh_from_db()
    assert link.click_count == 1


def test_malformed_buffer_entries_are_dropped_not_retried(short_client, link):
    redis_client().rpush(conf.clicks_buffer_key(), b"not json", b'["a","b","late","GET","","","",""]', b"[1,2]")
    short_client.get(f"/{link.code}", HTTP_USER_AGENT=IPHONE)
    assert clicks_flush() == 1 and buffered_clicks() == 0
