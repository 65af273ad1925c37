"""Settings for admins (issue 16): roles (agents and support 403, non-members 404), the organization wall
on every id, CSRF on every form, carrier/partner secrets on no page, the API key shown once, bad input
re-shown with its field and nothing changed, pinned query counts for the list pages."""

from __future__ import annotations

import re
import threading
from datetime import time

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client

from integrations.models import NiceConnection, RingCentralConnection
from messaging.models import Line
from organizations.models import ApiKey, Membership, Role
from tests import factories
from tests.sandbox import sandbox_carrier  # noqa: F401  (fixture: the line-number check asks it)

from .conftest import signed_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def line(org):
    return factories.LineFactory(organization=org)


NICE_TOKEN, RC_TOKEN = "nice-token-abcdef", "rc-bot-token-zyxw"
LIST_PAGES = [
    "/settings/lines/",
    "/settings/carriers/",
    "/settings/quiet-hours/",
    "/settings/api-keys/",
    "/settings/members/",
    "/settings/ringcentral/",
]


def _every_post(line, key, member) -> list[tuple[str, dict]]:
    return [
        ("/settings/lines/new/", {"phone_number": "+15125550777", "rate_per_second": "1", "is_active": "on"}),
        (
            f"/settings/lines/{line.pk}/",
            {"name": "x", "rate_per_second": "2", "nice_start_polling_on_chat_creation": "on"},
        ),
        ("/settings/quiet-hours/", {"time_zone": "UTC", "quiet_hours_start": "20:00", "quiet_hours_end": "07:00"}),
        ("/settings/api-keys/", {"name": "k", "scope": "all"}),
        (f"/settings/api-keys/{key.pk}/revoke/", {}),
        ("/settings/members/", {"email": "someone@example.com", "role": "agent"}),
        (f"/settings/members/{member.pk}/role/", {"role": "support"}),
        (f"/settings/members/{member.pk}/remove/", {}),
        ("/settings/ringcentral/", {"base_url": "https://rc.example", "bot_creator_id": "9", "bot_token": "t"}),
        ("/settings/ringcentral/disconnect/", {}),
    ]


def _state(org) -> tuple:
    org.refresh_from_db()
    return (
        org.time_zone,
        org.quiet_hours_start,
        sorted(ApiKey.objects.filter(organization=org).values_list("id", "revoked_at")),
        sorted(Membership.objects.filter(organization=org).values_list("id", "role")),
        list(RingCentralConnection.objects.filter(organization=org).values_list("id", "is_active")),
        list(
            Line.objects.filter(organization=org).values_list(
                "id", "name", "rate_per_second", "nice_start_polling_on_chat_creation"
            )
        ),
    )


@pytest.mark.parametrize("role", [Role.AGENT, Role.SUPPORT])
def test_only_admins_reach_settings_others_get_403_and_change_nothing(org, admin, line, role):
    # given: a key, another member, and someone of `role`
    key = _key(org)
    other = factories.MembershipFactory(organization=org, role=Role.AGENT)
    client = signed_in(factories.MembershipFactory(organization=org, role=role))
    before = _state(org)
    # then: every page and every action is refused
    for url in ["/settings/", *LIST_PAGES, f"/settings/lines/{line.pk}/"]:
        assert client.get(url).status_code == 403, url
    for url, data in _every_post(line, key, other):
        assert client.post(url, data).status_code == 403, url
    assert _state(org) == before
    # and the header offers no Settings link to them, but does to an admin
    assert 'href="/settings/"' not in client.get("/inbox/").content.decode()
    assert 'href="/settings/"' in signed_in(admin).get("/inbox/").content.decode()


def test_a_signed_in_user_of_no_organization_gets_404(db):
    client = Client()
    client.force_login(factories.UserFactory())
    for url in LIST_PAGES:
        assert client.get(url).status_code == 404, url


def _key(org, name="CRM"):
    from organizations.services import api_key_create

    return api_key_create(organization=org, name=name).api_key


def test_another_organizations_line_key_and_member_are_404_and_untouched(org, other_org, admin, line):
    foreign_line = factories.LineFactory(organization=other_org, name="Theirs")
    foreign_key = _key(other_org)
    foreign_member = factories.MembershipFactory(organization=other_org, role=Role.AGENT)
    factories.MembershipFactory(organization=other_org, role=Role.ADMIN)
    client = signed_in(admin)
    before = _state(other_org)
    assert client.get(f"/settings/lines/{foreign_line.pk}/").status_code == 404
    for url, data in _every_post(foreign_line, foreign_key, foreign_member):
        if str(foreign_line.pk) in url or str(foreign_key.pk) in url or str(foreign_member.pk) in url:
            assert client.post(url, data).status_code == 404, url
    assert _state(other_org) == before
    # and nothing of theirs is listed
    for url in LIST_PAGES:
        html = client.get(url).content.decode()
        assert "Theirs" not in html and foreign_key.prefix not in html and foreign_member.user.email not in html, url


def test_every_settings_form_needs_the_csrf_token(org, admin, line):
    key = _key(org)
    other = factories.MembershipFactory(organization=org, role=Role.AGENT)
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(admin.user)
    before = _state(org)
    for url, data in _every_post(line, key, other):
        assert strict.post(url, data).status_code == 403, url
    assert _state(org) == before
    for url in [*LIST_PAGES, f"/settings/lines/{line.pk}/"]:
        html = strict.get(url).content.decode()
        # every form on the page (the header's log-out included) carries the token
        assert html.count("<form") == html.count('name="csrfmiddlewaretoken"') >= 1, url


def test_no_secret_appears_on_any_settings_page(org, admin, line):
    # given: every kind of secret the organization has
    account = line.carrier_account
    account.config = {
        "service_plan_id": "plan-visible",
        "api_token": "sk-carrier-token-0123456789",
        "key_secret": "numbers-key-secret-98765",
        "key_id": "key-id-visible",
    }
    account.webhook_username, account.webhook_password = "carrier-user", "webhook-basic-pass-4242"
    account.save()
    nice = NiceConnection.objects.create(
        organization=org,
        line=line,
        base_url="https://nice.example",
        access_token=NICE_TOKEN,
        point_of_contact="poc",
    )
    rc = RingCentralConnection.objects.create(organization=org, bot_token=RC_TOKEN, bot_creator_id="bot-1")
    client = signed_in(admin)
    created = client.post("/settings/api-keys/", {"name": "CRM", "scope": "all"})
    raw_key = re.search(r'value="(pk_[^"]+)"', created.content.decode()).group(1)
    secrets = [
        "sk-carrier-token-0123456789",
        "numbers-key-secret-98765",
        "webhook-basic-pass-4242",
        account.webhook_secret,
        NICE_TOKEN,
        nice.webhook_secret,
        RC_TOKEN,
        rc.webhook_secret,
        raw_key,
        ApiKey.objects.get().key_hash,
    ]
    # when: every settings page is read
    pages = {
        url: client.get(url, follow=True).content.decode()
        for url in ["/settings/", *LIST_PAGES, f"/settings/lines/{line.pk}/"]
    }
    # then: none of them carries a secret, and the masked configuration is there
    for url, html in pages.items():
        for secret in secrets:
            assert secret not in html, (url, secret[:6])
    carriers = pages["/settings/carriers/"]
    assert "plan-visible" in carriers and "key-id-visible" in carriers and "••••" in carriers
    # a refused RingCentral form does not echo the token typed either
    refused = client.post(
        "/settings/ringcentral/", {"base_url": "not a url", "bot_creator_id": "b", "bot_token": "typed-token-777"}
    )
    assert refused.status_code == 400 and "typed-token-777" not in refused.content.decode()


def test_an_api_key_is_shown_once_then_listed_by_prefix_and_revoked(org, admin, client):
    admin_client = signed_in(admin)
    # when: created
    response = admin_client.post("/settings/api-keys/", {"name": "CRM sync", "scope": "shortener"})
    # then: the raw key is in this answer only, not cached, and it is the key that is stored (hashed)
    html = response.content.decode()
    assert response.status_code == 201 and "no-store" in response["Cache-Control"]
    raw_key = re.search(r'value="(pk_[^"]+)"', html).group(1)
    key = ApiKey.objects.get(organization=org)
    assert key.key_hash == ApiKey.hash(raw_key) and key.scope == "shortener" and key.created_by == admin.user
    listing = admin_client.get("/settings/api-keys/").content.decode()
    assert (
        raw_key not in listing
        and f"{key.prefix}…" in listing
        and "Link shortener only" in listing
        and "never" in listing
    )
    # the key works against the API until revoked
    assert client.get("/api/v1/links", HTTP_AUTHORIZATION=f"Bearer {raw_key}").status_code == 200
    assert admin_client.post(f"/settings/api-keys/{key.pk}/revoke/").status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert client.get("/api/v1/links", HTTP_AUTHORIZATION=f"Bearer {raw_key}").status_code == 401
    assert "Revoked" in admin_client.get("/settings/api-keys/").content.decode()


def test_api_key_without_a_name_is_refused_naming_the_field(org, admin):
    response = signed_in(admin).post("/settings/api-keys/", {"name": "", "scope": "all"})
    assert response.status_code == 400 and 'data-field="name"' in response.content.decode()
    assert not ApiKey.objects.exists()


def test_line_settings_toggle_the_nice_flag_and_refuse_a_bad_rate(org, admin, line):
    client = signed_in(admin)
    form = {
        "name": "Front desk",
        "carrier_account": line.carrier_account_id,
        "rate_per_second": "5",
        "is_active": "on",
        "nice_start_polling_on_chat_creation": "on",
    }
    assert client.post(f"/settings/lines/{line.pk}/", form).status_code == 302
    line.refresh_from_db()
    assert (line.name, line.rate_per_second, line.nice_start_polling_on_chat_creation) == ("Front desk", 5.0, True)
    assert (
        'NICE start polling on chat creation: <strong class="nice-flag">on'
        in client.get("/settings/lines/").content.decode()
    )
    # bad input: re-shown with the field and the reason, nothing saved
    response = client.post(f"/settings/lines/{line.pk}/", {**form, "rate_per_second": "5000", "name": "Changed"})
    html = response.content.decode()
    assert response.status_code == 400 and 'data-field="rate_per_second"' in html and "1000" in html
    assert 'value="Changed"' in html
    line.refresh_from_db()
    assert (line.name, line.rate_per_second) == ("Front desk", 5.0)
    # another organization's carrier account is not a choice
    foreign = factories.CarrierAccountFactory(organization=factories.OrganizationFactory())
    response = client.post(f"/settings/lines/{line.pk}/", {**form, "carrier_account": foreign.pk})
    assert response.status_code == 400 and 'data-field="carrier_account"' in response.content.decode()
    line.refresh_from_db()
    assert line.carrier_account_id != foreign.pk


def test_switching_a_lines_carrier_account_asks_the_carrier_first(org, admin, sandbox_carrier):  # noqa: F811
    holder = sandbox_carrier.account(org, name="Holder")
    stranger = sandbox_carrier.account(org, name="Stranger", config={"service_plan_id": "plan-stranger"})
    line = factories.LineFactory(organization=org, carrier_account=None, phone_number="+15125551234")
    sandbox_carrier.hold_numbers(line.phone_number)
    client = signed_in(admin)
    form = {"name": "Desk", "rate_per_second": "1", "is_active": "on"}
    # an account whose carrier does not hold the number: refused under the account field, nothing saved
    response = client.post(f"/settings/lines/{line.pk}/", {**form, "carrier_account": stranger.pk})
    html = response.content.decode()
    assert (
        response.status_code == 400 and 'data-field="carrier_account"' in html and "does not hold this number" in html
    )
    line.refresh_from_db()
    assert (line.carrier_account_id, line.name) == (None, line.name)
    # the one that holds it: saved
    assert client.post(f"/settings/lines/{line.pk}/", {**form, "carrier_account": holder.pk}).status_code == 302
    line.refresh_from_db()
    assert (line.carrier_account_id, line.name) == (holder.pk, "Desk")


def test_a_line_is_added_with_its_number_read_in_any_form_and_checked_with_the_carrier(
    org,
    admin,
    sandbox_carrier,  # noqa: F811
):
    holder = sandbox_carrier.account(org, name="Holder")
    sandbox_carrier.hold_numbers("+15125550199")
    client = signed_in(admin)
    form = {"name": "Support", "carrier_account": holder.pk, "rate_per_second": "2", "is_active": "on"}
    # a number that is no number, one the account does not hold: refused under phone_number, nothing added
    for number, reason in (("12ab", "is not a valid phone number"), ("(512) 555-0198", "does not hold this number")):
        response = client.post("/settings/lines/new/", {**form, "phone_number": number})
        html = response.content.decode()
        assert response.status_code == 400 and 'data-field="phone_number"' in html and reason in html, number
        assert f'value="{number}"' in html  # the input is kept
    assert not Line.objects.filter(organization=org).exists()
    # a national number the account holds: stored as E.164
    assert client.post("/settings/lines/new/", {**form, "phone_number": "(512) 555-0199"}).status_code == 302
    line = Line.objects.get(organization=org)
    assert (line.phone_number, line.name, line.carrier_account_id, line.rate_per_second) == (
        "+15125550199",
        "Support",
        holder.pk,
        2.0,
    )


def test_the_api_sets_the_nice_flag_through_the_same_service(org, admin, line):
    client = signed_in(admin)
    response = client.patch(
        f"/api/v1/lines/{line.pk}", {"nice_start_polling_on_chat_creation": True}, content_type="application/json"
    )
    assert response.status_code == 200 and response.json()["nice_start_polling_on_chat_creation"] is True
    line.refresh_from_db()
    assert line.nice_start_polling_on_chat_creation is True


def test_quiet_hours_are_changed_or_refused_naming_the_field(org, admin):
    client = signed_in(admin)
    ok = {
        "time_zone": "Europe/Paris",
        "quiet_hours_enabled": "on",
        "quiet_hours_start": "22:30",
        "quiet_hours_end": "07:00",
    }
    assert client.post("/settings/quiet-hours/", ok).status_code == 302
    org.refresh_from_db()
    assert (org.time_zone, org.quiet_hours_start, org.quiet_hours_end) == ("Europe/Paris", time(22, 30), time(7, 0))
    page = client.get("/settings/quiet-hours/").content.decode()
    assert 'value="22:30"' in page and '<option value="Europe/Paris" selected>' in page
    for bad, field in (
        ({**ok, "time_zone": "Mars/Olympus"}, "time_zone"),
        ({**ok, "quiet_hours_end": "22:30"}, "quiet_hours_end"),
        ({**ok, "quiet_hours_start": "25:00"}, "quiet_hours_start"),
    ):
        response = client.post("/settings/quiet-hours/", bad)
        assert response.status_code == 400 and f'data-field="{field}"' in response.content.decode(), field
    org.refresh_from_db()
    assert (org.time_zone, org.quiet_hours_start, org.quiet_hours_end) == ("Europe/Paris", time(22, 30), time(7, 0))
    # off: start = end is then allowed
    assert (
        client.post("/settings/quiet-hours/", {**ok, "quiet_hours_enabled": "", "quiet_hours_end": "22:30"}).status_code
        == 302
    )
    org.refresh_from_db()
    assert org.quiet_hours_enabled is False


def test_members_are_added_by_email_changed_and_removed_never_the_last_admin(org, admin):
    client = signed_in(admin)
    newcomer = factories.UserFactory(username="ada@example.com")
    # add an existing user by email, any case
    assert client.post("/settings/members/", {"email": "ADA@example.com", "role": "agent"}).status_code == 302
    added = Membership.objects.get(organization=org, user=newcomer)
    assert added.role == Role.AGENT
    # already a member, or not an email: 400 naming the field, nothing added
    for email, reason in (("ada@example.com", "already a member"), ("ada@", "valid email")):
        response = client.post("/settings/members/", {"email": email, "role": "agent"})
        html = response.content.decode()
        assert response.status_code == 400 and 'data-field="email"' in html and reason in html, email
    assert Membership.objects.filter(organization=org).count() == 2
    assert mail.outbox == []  # an existing account is added, not invited
    # change a role; an unknown role is refused
    assert client.post(f"/settings/members/{added.pk}/role/", {"role": "support"}).status_code == 302
    assert client.post(f"/settings/members/{added.pk}/role/", {"role": "owner"}).status_code == 400
    added.refresh_from_db()
    assert added.role == Role.SUPPORT
    # the last admin can be neither demoted nor removed
    for url, data in (
        (f"/settings/members/{admin.pk}/role/", {"role": "agent"}),
        (f"/settings/members/{admin.pk}/remove/", {}),
    ):
        response = client.post(url, data)
        assert response.status_code == 400 and "at least one admin" in response.content.decode(), url
    admin.refresh_from_db()
    assert admin.role == Role.ADMIN
    # remove a member: their account stays
    assert client.post(f"/settings/members/{added.pk}/remove/").status_code == 302
    assert (
        not Membership.objects.filter(pk=added.pk).exists()
        and newcomer.__class__.objects.filter(pk=newcomer.pk).exists()
    )
    # with a second admin, the first may step down
    second = factories.MembershipFactory(organization=org, role=Role.ADMIN)
    stepped_down = client.post(f"/settings/members/{admin.pk}/role/", {"role": "agent"})
    assert stepped_down.status_code == 302 and stepped_down["Location"] == "/"
    assert client.get("/settings/members/").status_code == 403
    assert signed_in(second).get("/settings/members/").status_code == 200


def test_ringcentral_connect_and_disconnect(org, admin):
    client = signed_in(admin)
    assert "Not connected" in client.get("/settings/ringcentral/").content.decode()
    # refused: no token, a bad URL — each named, nothing saved
    response = client.post(
        "/settings/ringcentral/", {"base_url": "ftp://x", "bot_creator_id": "bot-7", "bot_token": ""}
    )
    html = response.content.decode()
    assert response.status_code == 400 and 'data-field="bot_token"' in html and 'data-field="base_url"' in html
    assert not RingCentralConnection.objects.exists()
    # connect
    form = {"base_url": "https://platform.ringcentral.com", "bot_creator_id": "bot-7", "bot_token": "tok-1"}
    assert client.post("/settings/ringcentral/", form).status_code == 302
    conn = RingCentralConnection.objects.get(organization=org, line__isnull=True)
    assert (conn.bot_token, conn.bot_creator_id, conn.is_active) == ("tok-1", "bot-7", True)
    assert "Connected" in client.get("/settings/ringcentral/").content.decode()
    # disconnect, then connect again keeping the stored token (empty field)
    assert client.post("/settings/ringcentral/disconnect/").status_code == 302
    conn.refresh_from_db()
    assert conn.is_active is False
    assert "Disconnected" in client.get("/settings/ringcentral/").content.decode()
    assert client.post("/settings/ringcentral/", {**form, "bot_token": ""}).status_code == 302
    conn.refresh_from_db()
    assert (conn.is_active, conn.bot_token) == (True, "tok-1")
    assert RingCentralConnection.objects.count() == 1


@pytest.mark.parametrize(
    "url", ["/settings/lines/", "/settings/carriers/", "/settings/api-keys/", "/settings/members/"]
)
def test_list_pages_query_counts_are_pinned_and_do_not_grow_with_rows(org, admin, url, django_assert_num_queries):
    client = signed_in(admin)
    expected = {"/settings/lines/": 4, "/settings/carriers/": 8, "/settings/api-keys/": 4, "/settings/members/": 4}[url]

    def add_rows():
        account = factories.CarrierAccountFactory(organization=org)
        factories.LineFactory(organization=org, carrier_account=account)
        _key(org)
        factories.MembershipFactory(organization=org, role=Role.AGENT)

    add_rows()
    client.get(url)  # the session's first write is not the page's cost
    with django_assert_num_queries(expected):
        assert client.get(url).status_code == 200
    for _ in range(4):
        add_rows()
    with django_assert_num_queries(expected):
        assert client.get(url).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_two_admins_demoting_each_other_at_once_leave_one_admin(org):
    # given: two admins, each demoting the other in their own transaction at the same moment
    from django.core.exceptions import ValidationError
    from django.db import connection

    from organizations.services import membership_change_role

    first, second = (factories.MembershipFactory(organization=org, role=Role.ADMIN) for _ in range(2))
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def demote(membership_id: int) -> None:
        try:
            barrier.wait(timeout=10)
            membership_change_role(organization=org, membership_id=membership_id, role=Role.AGENT)
            outcomes.append("demoted")
        except ValidationError as exc:
            outcomes.append(exc.message_dict["role"][0])
        finally:
            connection.close()

    threads = [threading.Thread(target=demote, args=(m.pk,)) for m in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    # then: one demotion went through, the other was refused, and one admin is left
    assert sorted(outcomes) == sorted(
        ["demoted", "The organization needs at least one admin: make someone else an admin first."]
    )
    assert Membership.objects.filter(organization=org, role=Role.ADMIN).count() == 1


# --- invitations: an admin adds someone who has no account yet ----------------------------------------


def _invitation_link(message) -> str:
    return re.search(r"^https://app\.parley\.example(/reset/\S+/\S+/)$", message.body, re.M).group(1)


def test_a_person_without_an_account_is_invited_chooses_a_password_and_signs_in(org, admin, settings):
    settings.PUBLIC_BASE_URL = "https://app.parley.example"
    client = signed_in(admin)
    # when: the admin adds an email no account has
    response = client.post("/settings/members/", {"email": " Grace@Example.com ", "role": "agent"}, follow=True)
    # then: an account that cannot sign in yet, a membership with the role, one mail, and the page says so
    user = get_user_model().objects.get(email="grace@example.com")
    assert user.username == "grace@example.com" and not user.has_usable_password()
    invited = Membership.objects.get(organization=org, user=user)
    assert invited.role == Role.AGENT
    html = response.content.decode()
    assert response.status_code == 200 and "Invitation sent to grace@example.com" in html
    assert re.search(rf'data-id="{invited.pk}".*?Invited.*?Resend invitation', html, re.S)
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["grace@example.com"]
    assert org.name in mail.outbox[0].subject and "sign in with grace@example.com" in mail.outbox[0].body
    # when: the invitee follows the link (built on PUBLIC_BASE_URL) and chooses a password
    newcomer = Client()
    form_page = newcomer.get(_invitation_link(mail.outbox[0]), follow=True)
    assert form_page.status_code == 200 and "new_password1" in form_page.content.decode()
    password = "a-long-invited-password-7"  # noqa: S105
    newcomer.post(form_page.redirect_chain[-1][0], {"new_password1": password, "new_password2": password})
    # then: they sign in on the login page, land in the organization, and are no longer "invited"
    signed = newcomer.post("/login/", {"username": "grace@example.com", "password": password})
    assert signed.status_code == 302 and newcomer.get("/").status_code == 200
    members_page = client.get("/settings/members/").content.decode()
    assert ">Invited<" not in members_page and "Resend invitation" not in members_page
    # and the link was good once: a second use is refused
    assert (
        "invalid or has already been used"
        in Client().get(_invitation_link(mail.outbox[0]), follow=True).content.decode()
    )


def test_an_invitation_is_resent_only_to_an_invited_member_of_this_organization(org, other_org, admin, settings):
    settings.PUBLIC_BASE_URL = "https://app.parley.example"
    client = signed_in(admin)
    client.post("/settings/members/", {"email": "lin@example.com", "role": "support"})
    invited = Membership.objects.get(organization=org, user__email="lin@example.com")
    # resend: a second mail with a working link
    assert client.post(f"/settings/members/{invited.pk}/invite/").status_code == 302
    assert len(mail.outbox) == 2 and mail.outbox[1].to == ["lin@example.com"]
    assert Client().get(_invitation_link(mail.outbox[1]), follow=True).status_code == 200
    # a member who has a password: 400 with the reason, no mail
    response = client.post(f"/settings/members/{admin.pk}/invite/")
    assert response.status_code == 400 and "already chosen a password" in response.content.decode()
    # another organization's invited member: 404, no mail
    foreign = factories.MembershipFactory(organization=other_org, role=Role.AGENT)
    foreign.user.set_unusable_password()
    foreign.user.save()
    assert client.post(f"/settings/members/{foreign.pk}/invite/").status_code == 404
    # an agent cannot resend
    assert (
        signed_in(factories.MembershipFactory(organization=org, role=Role.AGENT))
        .post(f"/settings/members/{invited.pk}/invite/")
        .status_code
        == 403
    )
    assert len(mail.outbox) == 2


def test_a_mail_that_fails_leaves_the_member_invited_and_says_so_without_the_servers_words(org, admin, settings):
    # given: an SMTP server that is not there (a real connection, refused on a closed loopback port)
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 1, 2
    settings.EMAIL_HOST_PASSWORD = "smtp-secret-pw"  # noqa: S105
    client = signed_in(admin)
    # when
    response = client.post("/settings/members/", {"email": "max@example.com", "role": "agent"}, follow=True)
    # then: the member is added and invited, and the admin reads what happened and what to do
    html = response.content.decode()
    assert Membership.objects.filter(organization=org, user__email="max@example.com").exists()
    assert "could not be mailed (ConnectionRefusedError)" in html and "resend it from the list" in html
    assert "smtp-secret-pw" not in html
    # and once mail works again, the resend delivers
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    invited = Membership.objects.get(organization=org, user__email="max@example.com")
    assert "Invitation sent" in client.post(f"/settings/members/{invited.pk}/invite/", follow=True).content.decode()
    assert len(mail.outbox) == 1


def test_an_email_that_is_another_accounts_sign_in_name_is_refused(org, admin):
    # an account signs in as this email but has another address on file: no second account, no guess
    factories.UserFactory(username="sam@example.com", email="sam.other@example.com")
    response = signed_in(admin).post("/settings/members/", {"email": "SAM@example.com", "role": "agent"})
    assert response.status_code == 400 and "ask support" in response.content.decode()
    assert not Membership.objects.filter(organization=org, user__username="sam@example.com").exists()
    assert mail.outbox == []


def test_an_invited_member_who_lost_the_mail_gets_a_link_from_forgot_password(org, admin, settings):
    settings.PUBLIC_BASE_URL = "https://app.parley.example"
    signed_in(admin).post("/settings/members/", {"email": "ida@example.com", "role": "agent"})
    mail.outbox.clear()
    # when: the invitee asks "Forgot password" instead
    Client().post("/forgot-password/", {"email": "IDA@example.com"})
    # then: a reset link that chooses their first password
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["ida@example.com"]
    newcomer = Client()
    form_page = newcomer.get(_invitation_link(mail.outbox[0]), follow=True)
    password = "ida-first-password-42"  # noqa: S105
    newcomer.post(form_page.redirect_chain[-1][0], {"new_password1": password, "new_password2": password})
    assert newcomer.post("/login/", {"username": "ida@example.com", "password": password}).status_code == 302


def test_each_saved_setting_says_so(org, admin, line):
    """A save redirected back to the same page and said nothing: an admin could not tell a saved line or
    quiet-hours window from a form that did not go through."""
    client = signed_in(admin)
    key = _key(org)
    existing = factories.UserFactory(email="sam@example.com")
    line_form = {"name": "Front desk", "carrier_account": line.carrier_account_id, "rate_per_second": "5"}
    quiet = {"time_zone": "UTC", "quiet_hours_enabled": "on", "quiet_hours_start": "21:00", "quiet_hours_end": "08:00"}

    def notice(url, data) -> str:
        response = client.post(url, data, follow=True)
        assert response.status_code == 200, url
        found = re.search(r'<p class="notice" role="status">([^<]*)</p>', response.content.decode())
        return found.group(1) if found else ""

    # when / then
    assert notice(f"/settings/lines/{line.pk}/", line_form) == f"Line {line.phone_number} saved."
    assert notice("/settings/quiet-hours/", quiet) == "Quiet hours saved."
    assert notice(f"/settings/api-keys/{key.pk}/revoke/", {}) == "Key revoked: it no longer opens the API."
    assert notice("/settings/members/", {"email": existing.email, "role": "agent"}) == (
        f"{existing.username} added as Agent."
    )
    added = Membership.objects.get(organization=org, user=existing)
    assert notice(f"/settings/members/{added.pk}/role/", {"role": "support"}) == f"{existing.username} is now Support."
