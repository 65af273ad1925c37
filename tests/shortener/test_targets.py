"""Issue 12 item 16: short-link targets that point inside a network, look-alikes and our own short domain
are refused with the reason in the 400; an organization's allow-list opens a host (shortener/targets.py)."""

import pytest
from rest_framework.test import APIClient

from organizations.services import api_key_create
from shortener.models import AllowedTargetHost, Link
from shortener.services import links_shorten_for_messages
from shortener.services.bodies import LinkItem
from tests import factories
from tests.api.conftest import error_of

REFUSED = {
    # loopback in every literal form a browser reads
    "http://127.0.0.1/admin": "loopback",
    "http://127.1/": "loopback",
    "http://2130706433/": "loopback",  # decimal
    "http://0177.0.0.1/": "loopback",  # octal
    "http://0x7f.0.0.1/": "loopback",  # hexadecimal
    "http://0x7f000001/": "loopback",
    "http://[::1]/": "loopback",
    "http://[::ffff:127.0.0.1]/": "127.0.0.1",  # IPv4-mapped IPv6
    "http://[::ffff:7f00:1]/": "127.0.0.1",
    "http://[64:ff9b::a9fe:a9fe]/": "169.254.169.254",  # NAT64 of the metadata address
    "http://localhost:8080/": "private network",
    "http://LOCALHOST./": "private network",
    "http://app.localhost/": "private network",
    # private, link-local, metadata
    "http://10.0.0.5/": "private-network",
    "http://192.168.1.1/": "private-network",
    "http://172.16.0.1/": "private-network",
    "http://[fd00:ec2::254]/latest/meta-data/": "private-network",
    "http://169.254.169.254/latest/meta-data/": "link-local",
    "http://[fe80::1]/": "link-local",
    "http://100.100.100.200/latest/meta-data/": "not a public internet address",  # Alibaba's metadata (100.64/10)
    "http://0.0.0.0/": "loopback",
    "http://0/": "loopback",
    "http://metadata.google.internal/computeMetadata/v1/": "private network",
    "http://metadata/": "private network",
    "http://printer.local/": "private network",
    # look-alikes
    "https://bank.example@evil.example/login": "before '@'",
    "https://bank.example:pw@evil.example/": "before '@'",
    "https://evil.example\\@bank.example/": "Backslashes",
    # our own short domain
    "http://prly.localhost:8000/abcdefgh": "short-link domain",
}
ACCEPTED = [
    "https://example.com/path?q=1",
    "http://93.184.215.14/",
    "https://[2606:4700::1111]/",
    "https://sub.example.co.uk/",
    "https://10.example.com/",
]


@pytest.fixture
def api(org):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_create(organization=org, name='t').raw_key}")
    return client


@pytest.mark.django_db
@pytest.mark.parametrize(("url", "reason"), REFUSED.items())
def test_refused_targets_answer_400_with_the_reason(api, url, reason):
    response = api.post("/api/v1/links", {"target_url": url}, format="json")
    assert response.status_code == 400
    messages = error_of(response)["fields"]["target_url"]
    assert reason in messages[0]
    assert not Link.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("url", ACCEPTED)
def test_public_targets_are_accepted(api, url):
    assert api.post("/api/v1/links", {"target_url": url}, format="json").status_code == 201


@pytest.mark.django_db
def test_fallback_urls_are_checked_too(api):
    response = api.post(
        "/api/v1/links", {"target_url": "https://example.com/", "fallback_url": "http://10.0.0.1/"}, format="json"
    )
    assert response.status_code == 400 and "fallback_url" in error_of(response)["fields"]


@pytest.mark.django_db
def test_an_organizations_allow_list_opens_a_host_for_it_only(api, org, other_org):
    AllowedTargetHost.objects.create(organization=org, host="10.0.0.5", note="our intranet")
    AllowedTargetHost.objects.create(organization=org, host="prly.localhost")
    AllowedTargetHost.objects.create(organization=org, host="evil.example")
    assert api.post("/api/v1/links", {"target_url": "http://10.0.0.5/wiki"}, format="json").status_code == 201
    assert api.post("/api/v1/links", {"target_url": "http://prly.localhost:8000/x"}, format="json").status_code == 201
    # a look-alike stays refused whatever the list says
    look_alike = api.post("/api/v1/links", {"target_url": "https://bank.example@evil.example/"}, format="json")
    assert look_alike.status_code == 400
    # another organization's list opens nothing here
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_create(organization=other_org, name='o').raw_key}")
    assert other.post("/api/v1/links", {"target_url": "http://10.0.0.5/wiki"}, format="json").status_code == 400


@pytest.mark.django_db
def test_message_bodies_leave_refused_urls_unshortened(org):
    body = "See http://169.254.169.254/latest and https://example.com/ok"
    message = factories.MessageFactory(organization=org, body=body)
    item = LinkItem(message_id=message.pk, contact_id=message.contact_id, blast_id=None, body=body)
    out = links_shorten_for_messages(organization_id=org.pk, items=[item])[message.pk]
    assert "http://169.254.169.254/latest" in out and "https://example.com/ok" not in out
    assert list(Link.objects.values_list("target_url", flat=True)) == ["https://example.com/ok"]
