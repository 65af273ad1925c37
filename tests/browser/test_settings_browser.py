"""Settings for admins in a real browser (issue 16): reach them from the header, create an API key and see it
exactly once, toggle a line's NICE start-polling flag; the pages at phone width (375 px) are no wider than
the screen. PARLEY_SCREENSHOTS=1 writes the README's pictures."""

from __future__ import annotations

import pytest

from organizations.models import ApiKey, Role
from tests import factories

from .conftest import screenshot, sign_in

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_admin_creates_an_api_key_sees_it_once_and_toggles_the_nice_flag(page, app_url, org, tmp_path):
    # given: an admin, a teammate, a line on a carrier account whose token must never show
    admin = factories.MembershipFactory(organization=org, role=Role.ADMIN)
    factories.MembershipFactory(
        organization=org, role=Role.AGENT, user=factories.UserFactory(username="sam@example.com")
    )
    line = factories.LineFactory(organization=org, name="Front desk")
    sign_in(page, app_url, admin.user)
    # when: Settings from the header, then API keys
    page.click("header >> text=Settings")
    page.wait_for_url(f"{app_url}/settings/lines/")
    page.click("nav.tabs >> text=API keys")
    page.fill("input[name=name]", "CRM sync")
    page.click("#create-key")
    # then: the key is shown, once, and it is the stored one
    raw_key = page.input_value("#raw-key")
    assert raw_key.startswith("pk_") and ApiKey.objects.get(organization=org).key_hash == ApiKey.hash(raw_key)
    assert "shown only this once" in page.inner_text("#new-key")
    screenshot(page, "settings-api-key", tmp_path)
    page.click("nav.tabs >> text=API keys")
    page.wait_for_url(f"{app_url}/settings/api-keys/")
    assert raw_key not in page.content() and page.locator("#new-key").count() == 0
    assert f"{raw_key[:8]}…" in page.inner_text("#keys")
    # when: the line's NICE flag is switched on
    page.click("nav.tabs >> text=Lines")
    page.click(f"li.line[data-id='{line.pk}'] a")
    page.check("input[name=nice_start_polling_on_chat_creation]")
    page.click("#save")
    page.wait_for_url(f"{app_url}/settings/lines/")
    # then: saved, and shown on the list
    line.refresh_from_db()
    assert line.nice_start_polling_on_chat_creation is True
    assert page.inner_text(f"li.line[data-id='{line.pk}'] .nice-flag") == "on"
    screenshot(page, "settings-lines", tmp_path)
    # and at phone width every settings page fits the screen, carrier secret nowhere
    page.set_viewport_size({"width": 375, "height": 812})
    for tab, name in (
        ("Members", "settings-members-phone"),
        ("Carrier accounts", "settings-carriers-phone"),
        ("Quiet hours", None),
        ("RingCentral", None),
    ):
        page.click(f"nav.tabs >> text={tab}")
        page.wait_for_load_state()
        assert page.evaluate("document.documentElement.scrollWidth") <= 375, tab
        assert "secret-token" not in page.content()
        if name:
            screenshot(page, name, tmp_path)
    page.goto(f"{app_url}/settings/lines/{line.pk}/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    screenshot(page, "settings-line-phone", tmp_path)
