from datetime import timedelta

import pytest
from django.utils import timezone

from shortener import conf, services
from shortener.cache import redis_client
from shortener.models import Link
from tests.shortener.conftest import buffered_clicks


@pytest.fixture
def link(org, on_commit):
    with on_commit():
        return services.link_create(organization_id=org.id, target_url="https://example.com/landing?a=1")


def test_redirect_is_a_302_to_the_target_and_buffers_a_click(short_client, link):
    response = short_client.get(f"/{link.code}", HTTP_USER_AGENT="Mozilla/5.0 (iPhone)")
    assert response.status_code == 302
    assert response["Location"] == "https://example.com/landing?a=1"
    assert "no-store" in response["Cache-Control"]
    assert buffered_clicks() == 1


def test_cache_hit_asks_the_database_nothing(short_client, link, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert short_client.get(f"/{link.code}").status_code == 302


def test_cache_miss_reads_once_then_caches(short_client, link, django_assert_num_queries):
    redis_client().delete(conf.link_cache_key(link.code))
    with django_assert_num_queries(1):
        assert short_client.get(f"/{link.code}").status_code == 302
    with django_assert_num_queries(0):
        assert short_client.get(f"/{link.code}").status_code == 302


def test_head_answers_the_same(short_client, link):
    response = short_client.head(f"/{link.code}")
    assert response.status_code == 302 and response["Location"] == link.target_url


def test_unknown_code_is_a_small_404_and_cached_as_unknown(short_client, db, django_assert_num_queries):
    with django_assert_num_queries(1):
        assert short_client.get("/Nope1234").status_code == 404
    with django_assert_num_queries(0):
        response = short_client.get("/Nope1234")
    assert response.status_code == 404 and b"does not exist" in response.content


def test_unknown_code_goes_to_the_default_fallback_when_configured(short_client, db, settings):
    settings.SHORT_LINK_FALLBACK_URL = "https://parley.example/"
    response = short_client.get("/Nope1234")
    assert response.status_code == 302 and response["Location"] == "https://parley.example/"


def test_expired_link_goes_to_its_fallback(short_client, link, on_commit):
    with on_commit():
        services.link_update(
            link=link, expires_at=timezone.now() + timedelta(seconds=60), fallback_url="https://example.com/over"
        )
    Link.objects.filter(pk=link.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    redis_client().delete(conf.link_cache_key(link.code))
    response = short_client.get(f"/{link.code}")
    assert response.status_code == 302 and response["Location"] == "https://example.com/over"


def test_expired_link_without_fallback_is_404(short_client, org):
    expired = Link.objects.create(
        organization=org, code="Expired1", target_url="https://x.example/", expires_at=timezone.now() - timedelta(1)
    )
    assert short_client.get(f"/{expired.code}").status_code == 404


def test_short_host_serves_nothing_else(short_client, db):
    assert short_client.get("/admin/").status_code == 404
    assert short_client.get("/api/v1/links/").status_code == 404
    assert short_client.get("/").status_code == 404
    assert short_client.post("/Abcdefgh1").status_code == 405
    robots = short_client.get("/robots.txt")
    assert robots.status_code == 200 and b"Disallow: /" in robots.content


def test_codes_are_not_served_on_the_main_host(client, link):
    assert client.get(f"/{link.code}").status_code == 404


def test_the_full_ip_is_never_buffered(short_client, link):
    short_client.get(f"/{link.code}", REMOTE_ADDR="203.0.113.77", HTTP_USER_AGENT="UA")
    short_client.get(f"/{link.code}", REMOTE_ADDR="2001:db8:1234:5678::1", HTTP_USER_AGENT="UA")
    entries = redis_client().lrange(conf.clicks_buffer_key(), 0, -1)
    joined = b"".join(entries)
    assert b"203.0.113.77" not in joined and b"2001:db8:1234:5678::1" not in joined
    assert b"203.0.113.0/24" in joined and b"2001:db8:1234::/48" in joined


def test_redis_down_still_redirects_from_the_database(short_client, link, settings, django_assert_num_queries):
    from shortener import cache

    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there: connection refused at once
    cache._client[0] = None
    try:
        with django_assert_num_queries(1):
            response = short_client.get(f"/{link.code}")
    finally:
        cache._client[0] = None  # the next call builds a client for the real server again
    assert response.status_code == 302 and response["Location"] == link.target_url


def test_an_organizations_own_short_domain_is_served_when_deployed(link, settings):
    from django.test import Client

    settings.SHORT_LINK_EXTRA_DOMAINS = ["go.acme.test"]
    response = Client(HTTP_HOST="go.acme.test").get(f"/{link.code}")
    assert response.status_code == 302 and response["Location"] == link.target_url
    settings.SHORT_LINK_EXTRA_DOMAINS = []
    # no longer one of our hosts at all: refused by the ALLOWED_HOSTS check (docs/security.md)
    assert Client(HTTP_HOST="go.acme.test").get(f"/{link.code}").status_code == 400


def test_a_broken_redis_connection_is_rebuilt(short_client, link, django_assert_num_queries):
    from shortener import cache

    assert short_client.get(f"/{link.code}").status_code == 302
    # the server side of this thread's connection goes away (restart, idle timeout)
    cache._hot.conn._sock.shutdown(2)
    response = short_client.get(f"/{link.code}")
    assert response.status_code == 302 and response["Location"] == link.target_url
    with django_assert_num_queries(0):  # reconnected: served from the cache again
        assert short_client.get(f"/{link.code}").status_code == 302


@pytest.mark.parametrize(
    ("target", "location"),
    [
        ("https://bücher.example/straße?q=ü#teil", "https://xn--bcher-kva.example/stra%C3%9Fe?q=%C3%BC#teil"),
        # a right-to-left override would show "exe.live" as "evil.exe"-looking text in a header reader
        ("https://example.com/\u202eexe.live", "https://example.com/%E2%80%AEexe.live"),
        ("https://例え.テスト/パス", "https://xn--r8jz45g.xn--zckzah/%E3%83%91%E3%82%B9"),
        ("https://example.com/a%20b/ü", "https://example.com/a%20b/%C3%BC"),
    ],
)
def test_location_is_ascii_idna_and_percent_encoded(short_client, org, on_commit, target, location):
    # given: a target with non-ASCII characters (as stored: the link keeps what the customer wrote)
    with on_commit():
        link = services.link_create(organization_id=org.id, target_url=target)
    # when
    response = short_client.get(f"/{link.code}")
    # then
    assert response.status_code == 302
    assert response["Location"] == location
    assert response["Location"].isascii()
