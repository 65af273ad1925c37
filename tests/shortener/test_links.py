from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from shortener import conf, services
from shortener.cache import redis_client
from shortener.codes import ALPHABET, codes_generate
from shortener.models import BlastLinkRollup, Link
from shortener.services import LinkItem, links_preview_savings, links_shorten_for_messages
from tests import factories


def test_codes_are_random_url_safe_and_of_the_configured_length():
    codes = codes_generate(5000, 8)
    assert len(set(codes)) == 5000
    assert all(len(c) == 8 and set(c) <= set(ALPHABET) for c in codes)
    # every character of the alphabet shows up (rejection sampling keeps the distribution flat)
    assert set("".join(codes)) == set(ALPHABET)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("javascript:alert(1)", "Only http and https"),
        ("ftp://example.com/x", "Only http and https"),
        ("https://", "Not a valid URL"),
        ("https://exa mple.com/", "Not a valid URL"),
        ("http://prly.localhost:8000/abcdefgh", "short-link domain"),
        ("https://example.com/" + "a" * 2100, "At most 2048"),
        ("", "required"),
    ],
)
def test_bad_targets_are_refused_naming_the_reason(url, reason):
    with pytest.raises(ValidationError) as info:
        services.link_validate_target(url)
    assert reason in str(info.value.message_dict["target_url"])


def test_link_create_stores_and_caches_the_link(org, on_commit):
    with on_commit():
        link = services.link_create(organization_id=org.id, target_url="https://example.com/a?b=1")
    assert len(link.code) == conf.code_length()
    assert link.organization_id == org.id and link.created_at is not None
    assert redis_client().get(conf.link_cache_key(link.code)) is not None


def test_expiry_in_the_past_is_refused(org):
    with pytest.raises(ValidationError) as info:
        services.link_create(
            organization_id=org.id, target_url="https://example.com/", expires_at=timezone.now() - timedelta(1)
        )
    assert "expires_at" in info.value.message_dict


def test_colliding_codes_are_drawn_again(org, monkeypatch):
    # given a link that owns the code the generator will draw first
    taken = factories_link(org, code="AAAAAAAA")
    draws = iter([["AAAAAAAA", "BBBBBBBB"], ["CCCCCCCC"]])
    monkeypatch.setattr(services.links, "codes_generate", lambda n, length: next(draws))
    # when
    specs = services.links_create(
        organization_id=org.id,
        specs=[services.LinkSpec(target_url="https://a.example/"), services.LinkSpec(target_url="https://b.example/")],
    )
    # then the colliding one got a fresh code, the other kept its own
    assert [s.code for s in specs] == ["CCCCCCCC", "BBBBBBBB"]
    assert Link.objects.get(code="AAAAAAAA").pk == taken.pk
    assert Link.objects.get(code="CCCCCCCC").target_url == "https://a.example/"


def factories_link(org, **kwargs):
    return Link.objects.create(organization=org, target_url="https://taken.example/", **kwargs)


def test_shorten_for_messages_makes_one_link_per_message_and_url(org, django_assert_num_queries):
    # given
    blast = factories.BlastFactory(organization=org)
    messages = [factories.MessageFactory(conversation__organization=org, blast=blast) for _ in range(3)]
    body = "Hi! Sale: https://shop.example/sale?x=1. Also (https://shop.example/faq) and https://shop.example/sale?x=1"
    items = [LinkItem(m.id, m.contact_id, blast.id, body) for m in messages]
    items.append(LinkItem(999_999, None, None, "no links here"))
    # when: one INSERT for every link, one upsert of the blast's links per target (its report's top links),
    # one read of the organization's domain (+ the savepoint pair)
    with django_assert_num_queries(5):
        bodies = links_shorten_for_messages(organization_id=org.id, items=items)
    # then
    assert bodies[999_999] == "no links here"
    links = Link.objects.filter(message_id__in=[m.id for m in messages])
    assert links.count() == 6  # two distinct URLs per message
    for m in messages:
        mine = {link.target_url: link for link in links if link.message_id == m.id}
        assert set(mine) == {"https://shop.example/sale?x=1", "https://shop.example/faq"}
        sale, faq = mine["https://shop.example/sale?x=1"], mine["https://shop.example/faq"]
        assert (sale.contact_id, sale.blast_id) == (m.contact_id, blast.id)
        s, f = f"http://prly.localhost:8000/{sale.code}", f"http://prly.localhost:8000/{faq.code}"
        # sentence punctuation and the closing parenthesis stay outside the link
        assert bodies[m.id] == f"Hi! Sale: {s}. Also ({f}) and {s}"
    rollup = BlastLinkRollup.objects.filter(blast=blast).order_by("target_url")
    assert list(rollup.values_list("target_url", "links", "clicks")) == [
        ("https://shop.example/faq", 3, 0),
        ("https://shop.example/sale?x=1", 3, 0),
    ]


def test_shorten_uses_the_organizations_own_domain_and_leaves_unshortenable_urls(org, settings):
    settings.SHORT_LINK_EXTRA_DOMAINS = ["go.acme.test"]
    org.short_link_domain = "go.acme.test"
    org.save()
    m = factories.MessageFactory(conversation__organization=org)
    body = "a https://x.example/1 b http://prly.localhost:8000/abcdefgh"
    out = links_shorten_for_messages(organization_id=org.id, items=[LinkItem(m.id, m.contact_id, None, body)])
    link = Link.objects.get(message_id=m.id)
    assert out[m.id] == f"a http://go.acme.test/{link.code} b http://prly.localhost:8000/abcdefgh"


def test_preview_savings_counts_characters_and_segments():
    long_url = "https://www.example.com/" + "p" * 150 + "?utm_source=sms"
    saved, before, after = links_preview_savings(f"Sale today {long_url}")
    short_len = len("http://prly.localhost:8000/") + conf.code_length()
    assert saved == len(long_url) - short_len
    assert (before, after) == (2, 1)
    assert links_preview_savings("no link") == (0, 1, 1)


def test_items_without_a_contact_get_the_messages_own(org, django_assert_num_queries):
    # the conversation send path hands over contact_id=0 and no blast
    m = factories.MessageFactory(conversation__organization=org)
    with django_assert_num_queries(5):  # + one read of the messages' contacts
        links_shorten_for_messages(organization_id=org.id, items=[LinkItem(m.id, 0, None, "see https://example.com/x")])
    link = Link.objects.get(message=m)
    assert (link.contact_id, link.blast_id) == (m.contact_id, None)


def test_an_organization_domain_that_is_not_served_falls_back_to_the_default(org):
    # set on the organization but not deployed (not in SHORT_LINK_EXTRA_DOMAINS): links would be dead
    org.short_link_domain = "go.not-deployed.test"
    org.save()
    m = factories.MessageFactory(conversation__organization=org)
    out = links_shorten_for_messages(
        organization_id=org.id, items=[LinkItem(m.id, m.contact_id, None, "a https://x.example/1")]
    )
    assert out[m.id] == f"a http://prly.localhost:8000/{Link.objects.get(message_id=m.id).code}"


def test_the_shortener_fills_messagings_link_step():
    # messaging declares the port (messaging/links.py), ShortenerConfig.ready installs the implementation.
    from messaging.links import LinkItem as PortItem
    from messaging.links import link_step
    from shortener.services.links import org_short_domain

    step = link_step()
    assert step.shorten_for_messages is links_shorten_for_messages
    assert step.preview_savings is links_preview_savings
    assert step.short_domain is org_short_domain
    assert PortItem is LinkItem
