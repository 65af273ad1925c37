import re
from datetime import timedelta

import pytest
from django.core import mail
from django.test import RequestFactory
from django.utils import timezone

from organizations.models import Role
from tests import factories

PASSWORD = "pw-for-tests-123"  # tests.factories.UserFactory's  # noqa: S105


def _back_to_login_link(html: str) -> bool:
    return re.search(r'<a href="/login/"[^>]*>\s*Back to Login\s*</a>', html) is not None


def test_login_page_and_sign_in(client, member):
    page = client.get("/login/")
    assert page.status_code == 200
    assert 'href="/forgot-password/"' in page.content.decode()
    response = client.post("/login/", {"username": member.user.username, "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/").status_code == 200


def test_wrong_password_shows_an_error(client, member):
    response = client.post("/login/", {"username": member.user.username, "password": "nope"})
    assert response.status_code == 200
    assert "did not match" in response.content.decode()


def test_home_requires_login(client, db):
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_logout(client, member):
    client.force_login(member.user)
    assert client.post("/logout/").status_code == 302
    assert client.get("/")["Location"].startswith("/login/")


def test_forgot_password_page_has_a_visible_back_to_login_link(client, db):
    # release item: the Forgot password page links back to the login page
    response = client.get("/forgot-password/")
    assert response.status_code == 200
    assert _back_to_login_link(response.content.decode())


def test_password_reset_flow_end_to_end(client, member):
    # when: asking for a reset
    response = client.post("/forgot-password/", {"email": member.user.email}, follow=True)
    # then: the "sent" page also leads back, and one email carries the link
    assert _back_to_login_link(response.content.decode())
    assert len(mail.outbox) == 1 and mail.outbox[0].to == [member.user.email]
    link = re.search(r"http://[^/]+(/reset/\S+/)", mail.outbox[0].body).group(1)
    # following it and choosing a new password works
    form_page = client.get(link, follow=True)
    assert form_page.status_code == 200 and _back_to_login_link(form_page.content.decode())
    done = client.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": "a-new-long-password-1", "new_password2": "a-new-long-password-1"},
        follow=True,
    )
    assert "Password changed" in done.content.decode() and _back_to_login_link(done.content.decode())
    new_password = "a-new-long-password-1"  # noqa: S105
    assert client.login(request=RequestFactory().post("/login/"), username=member.user.username, password=new_password)


def test_unknown_email_sends_nothing_and_does_not_tell(client, db):
    response = client.post("/forgot-password/", {"email": "nobody@example.com"}, follow=True)
    assert response.status_code == 200 and "Check your email" in response.content.decode()
    assert mail.outbox == []


def test_home_lists_my_conversations_newest_first(client, member, org, other_org):
    now = timezone.now()
    old = factories.ConversationFactory(organization=org, last_message_at=now - timedelta(days=1))
    new = factories.ConversationFactory(organization=org, last_message_at=now)
    empty = factories.ConversationFactory(organization=org, last_message_at=None)
    foreign = factories.ConversationFactory(organization=other_org, last_message_at=now)
    client.force_login(member.user)
    html = client.get("/").content.decode()
    ids = [int(i) for i in re.findall(r'class="conversation" data-id="(\d+)"', html)]
    assert ids == [new.pk, old.pk, empty.pk]
    assert foreign.pk not in ids
    assert 'href="/api/docs/"' in html
    # the Django admin only for staff: for anyone else it was a link to "not authorized, log in again"
    assert 'href="/admin/"' not in html
    member.user.is_staff = True
    member.user.save()
    assert 'href="/admin/"' in client.get("/").content.decode()


def test_home_switches_organization(client, member, org, other_org):
    factories.MembershipFactory(user=member.user, organization=other_org)
    theirs = factories.ConversationFactory(organization=other_org)
    client.force_login(member.user)
    html = client.get("/", {"org": other_org.pk}).content.decode()
    assert f'data-id="{theirs.pk}"' in html


def test_home_without_membership(client, db):
    user = factories.UserFactory()
    client.force_login(user)
    assert "not a member" in client.get("/").content.decode()


# --- issue 12 item 11: password-reset poisoning -------------------------------------------------------


@pytest.mark.parametrize("host", ["evil.example", "127.0.0.1:8000"])
def test_reset_link_uses_the_public_base_url_never_the_request_host(client, member, settings, host):
    # given: a deployment whose public address is configured, and (for evil.example) an attacker who gets
    # the Host header past ALLOWED_HOSTS (a misconfigured proxy, or a wildcard some deployer adds)
    settings.PUBLIC_BASE_URL = "https://app.parley.example"
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "evil.example"]
    # when
    response = client.post("/forgot-password/", {"email": member.user.email}, HTTP_HOST=host, follow=True)
    # then: the mailed link is on the configured origin only
    assert response.status_code == 200 and _back_to_login_link(response.content.decode())
    body = mail.outbox[0].body
    assert re.search(r"^https://app\.parley\.example/reset/\S+/\S+/$", body, re.M)
    assert "evil.example" not in body and "127.0.0.1" not in body


def test_forgot_password_with_a_foreign_host_header_is_refused(client, member):
    # ALLOWED_HOSTS holds no wildcard: a Host header we do not serve never reaches the view
    response = client.post("/forgot-password/", {"email": member.user.email}, HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert mail.outbox == []


def test_invalid_reset_link_page_keeps_back_to_login(client, db):
    page = client.get("/reset/MQ/not-a-token/", follow=True)
    assert page.status_code == 200 and "invalid" in page.content.decode()
    assert _back_to_login_link(page.content.decode())


# --- issue 12 item 12: login lockout (django-axes) ------------------------------------------------------


@pytest.mark.parametrize("login_path", ["/login/", "/admin/login/"])
def test_login_locks_out_after_the_failure_limit_and_reopens_after_the_cool_off(client, member, settings, login_path):
    member.user.is_staff = True
    member.user.save(update_fields=["is_staff"])
    username = member.user.username
    # when: AXES_FAILURE_LIMIT wrong passwords from one address (the last one is answered with the lockout)
    for attempt in range(1, settings.AXES_FAILURE_LIMIT + 1):
        wrong = client.post(login_path, {"username": username, "password": "wrong"}, REMOTE_ADDR="203.0.113.9")
        assert wrong.status_code == (429 if attempt == settings.AXES_FAILURE_LIMIT else 200)
    # then: even the right password is refused from there, with the lockout page
    locked = client.post(login_path, {"username": username, "password": PASSWORD}, REMOTE_ADDR="203.0.113.9")
    assert locked.status_code == 429
    assert "Too many failed sign-ins" in locked.content.decode() and _back_to_login_link(locked.content.decode())
    # the same user from another address is not locked out (username + IP: no lockout by strangers)
    elsewhere = client.post(login_path, {"username": username, "password": PASSWORD}, REMOTE_ADDR="198.51.100.7")
    assert elsewhere.status_code == 302
    # and once the cool-off has passed, the first address may try again
    from axes.models import AccessAttempt

    AccessAttempt.objects.update(attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(seconds=1))
    client.logout()
    again = client.post(login_path, {"username": username, "password": PASSWORD}, REMOTE_ADDR="203.0.113.9")
    assert again.status_code == 302


def test_a_refused_or_missing_page_keeps_the_app_around_it(client, org, settings):
    """A 403 (a settings URL for an agent) or a 404 (an old link) was Django's bare page: no header, no way
    back but the browser's. Now the app's page with the reason and the way back to the inbox."""
    settings.DEBUG = False  # the error pages a deployment shows
    client.force_login(factories.MembershipFactory(organization=org, role=Role.AGENT).user)
    # when
    refused = client.get("/settings/")
    missing = client.get("/inbox/987654/")
    # then
    assert refused.status_code == 403 and missing.status_code == 404
    for response in (refused, missing):
        html = response.content.decode()
        assert '<header class="top">' in html and '<a href="/inbox/">Back to the inbox</a>' in html
    assert "Only the organization&#x27;s admins manage its settings." in refused.content.decode()
