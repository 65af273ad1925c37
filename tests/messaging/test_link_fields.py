"""Issue 14.1: merge fields inside links are percent-encoded for the URL part they land in, links are
found after rendering, the text around a link is untouched, and the preview's savings are right.

Through the real prepare step and the real shortener (links rows in PostgreSQL)."""

from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from messaging.models import BlastRecipient, Contact, Message
from messaging.services import prepare, sending
from messaging.services.templates import render_url
from shortener import conf
from shortener.models import Link
from shortener.services import short_url, urls_in
from tests import factories

# Every character the issue names, plus any printable letter or symbol (non-Latin scripts, emoji).
SPECIAL = list("&#+%?= '\"/;:@.,!()[]~*$") + ["é", "ß", "Ж", "中", "😀", "👩‍👩‍👧"]
values = (
    st.lists(st.one_of(st.sampled_from(SPECIAL), st.characters(exclude_categories=("Cs", "Cc"))), max_size=12)
    .map("".join)
    .filter(lambda v: "http" not in v.lower())  # a value that is itself a link is shortened too (by design)
)


def _no_quiet_hours(org):
    org.quiet_hours_enabled = False
    org.save()


def _prepare_one(org, body, **contact):
    line = factories.LineFactory(organization=org)
    c = Contact.objects.create(organization=org, phone_number=factories.next_number("512"), **contact)
    blast = factories.BlastFactory(organization=org, line=line, body=body)
    BlastRecipient.objects.create(blast=blast, contact=c)
    sending.blast_launch(organization=org, blast_id=blast.id)
    ((lo, hi),) = sending._chunk_ranges(blast.id)
    prepare.blast_prepare_chunk(blast_id=blast.id, first_recipient_id=lo, last_recipient_id=hi)
    message = Message.objects.get(blast=blast)
    return message, list(Link.objects.filter(message_id=message.id)), c


def test_the_issue_example_encodes_the_values_and_keeps_the_text(org, django_capture_on_commit_callbacks):
    _no_quiet_hours(org)
    with django_capture_on_commit_callbacks(execute=False):
        m, links, c = _prepare_one(
            org,
            "Hey {first_name}: https://x.example.com/p?n={first_name}&s={store}&c={phone_number}",
            first_name="Ann & Bo",
            custom_fields={"store": "San Antonio #2"},
        )
    (link,) = links
    assert link.target_url == (
        "https://x.example.com/p?n=Ann%20%26%20Bo&s=San%20Antonio%20%232&c=%2B" + c.phone_number[1:]
    )
    query = parse_qs(urlsplit(link.target_url).query)
    assert query == {"n": ["Ann & Bo"], "s": ["San Antonio #2"], "c": [c.phone_number]}
    assert m.rendered_body == f"Hey Ann & Bo: {short_url(link.code)}"
    assert m.send_params["f1"] == "Ann & Bo" and m.send_params["l1"] == short_url(link.code)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=values, last=values, store=values)
def test_any_field_values_in_every_url_part_round_trip(org, django_capture_on_commit_callbacks, first, last, store):
    _no_quiet_hours(org)
    body = "Hi {first_name}! https://x.example.com/s/{store}/go?n={first_name}&c={phone_number}#{last_name} {store}."
    with django_capture_on_commit_callbacks(execute=False):
        m, links, c = _prepare_one(org, body, first_name=first, last_name=last, custom_fields={"store": store})
    (link,) = links
    parts = urlsplit(link.target_url)
    assert parts.netloc == "x.example.com"
    assert [unquote(p) for p in parts.path.split("/")] == ["", "s", store, "go"]
    assert parse_qs(parts.query, keep_blank_values=True) == {"n": [first], "c": [c.phone_number]}
    assert unquote(parts.fragment) == last
    # the text around the link is exactly the values as they are
    assert m.rendered_body == f"Hi {first}! {short_url(link.code)} {store}."


@settings(max_examples=300, deadline=None)
@given(a=values, b=values, c=values, d=values)
def test_render_url_keeps_each_value_inside_its_part(a, b, c, d):
    url = render_url("https://h.example/{a}/x?k={b}&j=1;{c}#f={d}", {"a": a, "b": b, "c": c, "d": d})
    # one link, and all of it: no value ends or splits it
    assert [u for _, _, u in urls_in(url + " tail")] == [url]
    parts = urlsplit(url)
    assert [unquote(p) for p in parts.path.split("/")] == ["", a, "x"]
    pairs = [p.split("=", 1) for p in parts.query.split("&")]
    assert [(k, unquote(v)) for k, v in pairs] == [("k", b), ("j", "1;" + c)]
    assert unquote(parts.fragment) == "f=" + d


def test_a_link_in_a_field_value_is_found_after_rendering_and_shortened(org, django_capture_on_commit_callbacks):
    _no_quiet_hours(org)
    with django_capture_on_commit_callbacks(execute=False):
        m, links, _ = _prepare_one(
            org, "Your order: {tracking} thanks", custom_fields={"tracking": "see https://track.example.com/a?b=1 now"}
        )
    (link,) = links
    assert link.target_url == "https://track.example.com/a?b=1"
    assert m.rendered_body == f"Your order: see {short_url(link.code)} now thanks"


def test_preview_counts_the_savings_on_the_rendered_text(api_client_for, org):
    _no_quiet_hours(org)
    line = factories.LineFactory(organization=org)
    c = Contact.objects.create(
        organization=org, phone_number=factories.next_number(), first_name="Ann & Bo", custom_fields={"store": "SA #2"}
    )
    blast = factories.BlastFactory(
        organization=org, line=line, body="Hey {first_name}: https://x.example.com/products/p?n={first_name}&s={store}"
    )
    BlastRecipient.objects.create(blast=blast, contact=c)
    r = api_client_for(org).get(f"/api/v1/blasts/{blast.id}/preview")
    assert r.status_code == 200, r.content
    data = r.json()
    url = "https://x.example.com/products/p?n=Ann%20%26%20Bo&s=SA%20%232"
    assert data["sample"] == f"Hey Ann & Bo: {url}"
    expected = len(url) - len(short_url("x" * conf.code_length()))
    assert data["links"]["chars_saved"] == expected > 0


@pytest.fixture
def api_client_for():
    from django.core.cache import cache
    from rest_framework.test import APIClient

    from organizations.services import api_key_create

    def make(org):
        cache.clear()
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_create(organization=org, name='t').raw_key}")
        return client

    return make
