from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from organizations.models import ApiKeyScope
from organizations.services import api_key_create
from shortener import services
from shortener.cache import redis_client
from shortener.clicks import clicks_flush
from shortener.models import Link
from shortener.services import LinkItem, links_shorten_for_messages
from tests import factories

IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148 Safari/604.1"


@pytest.fixture(autouse=True)
def _fresh_throttle_buckets(db):
    # Throttle counters live in Redis and key ids repeat across test databases: start each test clean.
    # Only those keys: cache.clear() would FLUSHDB the Redis database a benchmark may be using.
    client = redis_client()
    keys = list(client.scan_iter("*throttle_*", count=1000))
    if keys:
        client.delete(*keys)


def client_for(org, scope=ApiKeyScope.SHORTENER):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_create(organization=org, name='t', scope=scope).raw_key}")
    return client


@pytest.fixture
def api(org):
    return client_for(org)


def error_of(response):
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "fields"}, body
    return body["error"]


def test_create_returns_the_short_url_and_the_link_redirects(api, org, short_client):
    response = api.post("/api/v1/links", {"target_url": "https://example.com/promo"}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["short_url"] == f"http://prly.localhost:8000/{body['code']}"
    assert body["click_count"] == 0 and body["target_url"] == "https://example.com/promo"
    assert short_client.get(f"/{body['code']}")["Location"] == "https://example.com/promo"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"target_url": "javascript:alert(1)"}, "target_url"),
        ({"target_url": "https://prly.localhost:8000/abcdefgh"}, "target_url"),
        ({}, "target_url"),
        ({"target_url": "https://ok.example/", "fallback_url": "ftp://x"}, "fallback_url"),
        ({"target_url": "https://ok.example/", "expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
        ({"target_url": "https://ok.example/", "message_id": 987654321}, "message_id"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(api, payload, field):
    response = api.post("/api/v1/links", payload, format="json")
    assert response.status_code == 400
    assert field in error_of(response)["fields"]


def test_attribution_to_another_organizations_blast_is_refused(api, other_org):
    blast = factories.BlastFactory(organization=other_org)
    response = api.post("/api/v1/links", {"target_url": "https://ok.example/", "blast_id": blast.id}, format="json")
    assert response.status_code == 400 and "blast_id" in error_of(response)["fields"]


def test_message_attribution_fills_contact_and_blast(api, org):
    blast = factories.BlastFactory(organization=org)
    m = factories.MessageFactory(conversation__organization=org, blast=blast)
    response = api.post("/api/v1/links", {"target_url": "https://ok.example/", "message_id": m.id}, format="json")
    assert response.status_code == 201
    assert (response.json()["contact_id"], response.json()["blast_id"]) == (m.contact_id, blast.id)


def test_bulk_creates_the_valid_ones_and_reports_the_rest_by_index(api, org, django_assert_max_num_queries):
    items = [{"target_url": f"https://ok.example/{i}"} for i in range(300)]
    items[5] = {"target_url": "javascript:void(0)"}
    items[7] = {"target_url": "https://ok.example/", "contact_id": 123456789}
    # one INSERT for the 298 links, whatever their number (auth, checks, insert, read-back)
    with django_assert_max_num_queries(10):
        response = api.post("/api/v1/links/bulk", {"links": items}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["created"], body["failed"]) == (298, 2)
    assert [r["index"] for r in body["results"]] == list(range(300))
    assert "target_url" in body["results"][5]["error"]["fields"]
    assert "contact_id" in body["results"][7]["error"]["fields"]
    assert body["results"][0]["link"]["target_url"] == "https://ok.example/0"
    assert Link.objects.filter(organization=org).count() == 298


def test_bulk_is_limited_to_1000(api):
    response = api.post("/api/v1/links/bulk", {"links": [{"target_url": "https://a.example/"}] * 1001}, format="json")
    assert response.status_code == 400 and "links" in error_of(response)["fields"]


def test_list_detail_and_clicks_with_counts(api, org, short_client, on_commit, django_assert_max_num_queries):
    with on_commit():
        link = services.link_create(organization_id=org.id, target_url="https://example.com/")
        services.link_create(organization_id=org.id, target_url="https://example.com/2")
    short_client.get(f"/{link.code}", HTTP_USER_AGENT=IPHONE)
    short_client.get(f"/{link.code}", HTTP_USER_AGENT="Twitterbot/1.0")
    clicks_flush()
    with django_assert_max_num_queries(3):  # key lookup, (last_used_at), the page
        listed = api.get("/api/v1/links?limit=1")
    assert listed.status_code == 200
    assert [r["id"] for r in listed.json()["results"]] != [link.id] and listed.json()["next"]
    second = api.get(listed.json()["next"]).json()["results"]
    assert [r["id"] for r in second] == [link.id]
    detail = api.get(f"/api/v1/links/{link.id}").json()
    assert (detail["click_count"], detail["unique_click_count"], detail["bot_click_count"]) == (1, 1, 1)
    clicks = api.get(f"/api/v1/links/{link.id}/clicks").json()["results"]
    assert [(c["is_bot"], c["bot_reason"]) for c in clicks] == [(True, "crawler:Twitterbot"), (False, "")]
    assert "visitor_hash" not in clicks[0]


def test_patch_expires_a_link(api, org, short_client, on_commit):
    with on_commit():
        link = services.link_create(organization_id=org.id, target_url="https://example.com/")
    with on_commit():
        response = api.patch(
            f"/api/v1/links/{link.id}",
            {"expires_at": timezone.now().isoformat(), "fallback_url": "https://example.com/over"},
            format="json",
        )
    assert response.status_code == 200
    # the cached copy was replaced after commit: the redirect sees the expiry at once
    assert short_client.get(f"/{link.code}")["Location"] == "https://example.com/over"


def test_another_organizations_links_are_404(api, other_org, on_commit):
    with on_commit():
        theirs = services.link_create(organization_id=other_org.id, target_url="https://example.com/")
    blast = factories.BlastFactory(organization=other_org)
    assert api.get(f"/api/v1/links/{theirs.id}").status_code == 404
    assert api.get(f"/api/v1/links/{theirs.id}/clicks").status_code == 404
    assert api.patch(f"/api/v1/links/{theirs.id}", {"expires_at": None}, format="json").status_code == 404
    assert api.get(f"/api/v1/blasts/{blast.id}/clicks").status_code == 404
    assert api.get("/api/v1/links").json()["results"] == []


def test_shortener_keys_reach_only_the_shortener(api, org):
    assert api.get("/api/v1/links").status_code == 200
    assert api.get("/api/v1/contacts").status_code == 403
    full = client_for(org, scope=ApiKeyScope.ALL)
    assert full.get("/api/v1/links").status_code == 200
    assert APIClient().get("/api/v1/links").status_code == 401


def test_throttled_per_key(api, monkeypatch):
    from organizations.auth import ApiKeyRateThrottle

    # monkeypatch restores the class attribute after the test, so no other test inherits 2/min.
    monkeypatch.setattr(ApiKeyRateThrottle, "THROTTLE_RATES", {"api_key": "2/min"})
    codes = [api.get("/api/v1/links").status_code for _ in range(3)]
    assert codes == [200, 200, 429]


def test_blast_click_report(api, org, short_client, on_commit):
    # given a delivered blast of 4 messages with links; 2 contacts click (one twice), a bot previews one
    blast = factories.BlastFactory(organization=org, delivered_count=4)
    messages = [factories.MessageFactory(conversation__organization=org, blast=blast) for _ in range(4)]
    with on_commit():
        links_shorten_for_messages(
            organization_id=org.id,
            items=[LinkItem(m.id, m.contact_id, blast.id, "Sale https://shop.example/x") for m in messages],
        )
    links = {link.message_id: link for link in Link.objects.filter(blast=blast)}
    short_client.get(f"/{links[messages[0].id].code}", HTTP_USER_AGENT=IPHONE)
    short_client.get(f"/{links[messages[0].id].code}", HTTP_USER_AGENT=IPHONE)
    short_client.get(f"/{links[messages[1].id].code}", HTTP_USER_AGENT=IPHONE)
    short_client.get(f"/{links[messages[2].id].code}", HTTP_USER_AGENT="WhatsApp/2.2")
    clicks_flush()
    # when
    response = api.get(f"/api/v1/blasts/{blast.id}/clicks")
    # then
    assert response.status_code == 200
    assert response.json() == {
        "blast_id": blast.id,
        "links": 4,
        "messages_with_links": 4,
        "clicks": 3,
        "unique_clickers": 2,
        "bot_clicks": 1,
        "delivered": 4,
        "click_through_rate": 0.5,
    }


def test_openapi_schema_documents_the_endpoints(api, client):
    schema = client.get("/api/schema/").content.decode()
    for path in (
        "/api/v1/links:",
        "/api/v1/links/bulk:",
        "/api/v1/links/{id}/clicks:",
        "/api/v1/blasts/{blast_id}/clicks:",
    ):
        assert path in schema, path


def test_expired_links_are_listed_with_their_expiry(api, org):
    soon = timezone.now() + timedelta(days=1)
    response = api.post(
        "/api/v1/links", {"target_url": "https://ok.example/", "expires_at": soon.isoformat()}, format="json"
    )
    assert response.status_code == 201 and response.json()["expires_at"]


def test_admin_lists_and_searches_links_and_clicks(admin_client, org, short_client, on_commit):
    with on_commit():
        link = services.link_create(organization_id=org.id, target_url="https://example.com/admin-test")
    short_client.get(f"/{link.code}", HTTP_USER_AGENT=IPHONE)
    clicks_flush()
    links_page = admin_client.get("/admin/shortener/link/", {"q": link.code})
    assert links_page.status_code == 200 and link.code in links_page.content.decode()
    clicks_page = admin_client.get("/admin/shortener/click/", {"q": link.code})
    assert clicks_page.status_code == 200 and "198.51.100" not in clicks_page.content.decode()
    assert "127.0.0.0/24" in clicks_page.content.decode()


def test_patch_without_expiry_keeps_it(api, org, on_commit):
    soon = timezone.now() + timedelta(days=2)
    with on_commit():
        link = services.link_create(organization_id=org.id, target_url="https://example.com/", expires_at=soon)
    response = api.patch(f"/api/v1/links/{link.id}", {"fallback_url": "https://example.com/f"}, format="json")
    assert response.status_code == 200
    link.refresh_from_db()
    assert link.expires_at == soon and link.fallback_url == "https://example.com/f"
