"""The installable app in Chromium (issue 16): the manifest is found and valid, the service worker is
registered and controls the page, and with the network gone a page shows the offline page."""

from __future__ import annotations

import pytest

from .conftest import screenshot, sign_in

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_service_worker_and_manifest_then_the_offline_page(page, context, app_url, agent_user, tmp_path):
    sign_in(page, app_url, agent_user)
    # the install criteria Chromium checks: a manifest with a 192 and a 512 icon, standalone; a worker
    manifest = page.evaluate("fetch(document.querySelector('link[rel=manifest]').href).then(r => r.json())")
    assert manifest["display"] == "standalone"
    assert {"192x192", "512x512"} <= {i["sizes"] for i in manifest["icons"]}
    scope = page.evaluate("navigator.serviceWorker.ready.then(r => r.scope)")
    assert scope == f"{app_url}/"
    page.reload()  # now under the worker's control
    assert page.evaluate("navigator.serviceWorker.controller !== null")
    # when: the network goes away
    context.set_offline(True)
    page.goto(f"{app_url}/inbox/")
    # then: the cached offline page, styled from the cached shell
    assert page.locator("#offline h2").inner_text() == "You are offline"
    assert page.evaluate("getComputedStyle(document.querySelector('header.top')).backgroundColor") == "rgb(22, 50, 79)"
    screenshot(page, "offline", tmp_path)
    context.set_offline(False)


def test_the_offline_page_asks_for_nothing_that_is_missing(page, app_url, agent_user):
    """It names its icon, as every other page does: without one Chromium asks for /favicon.ico, a 404 and a
    console error on the page an agent sees when the network is gone."""
    sign_in(page, app_url, agent_user)
    errors: list[str] = []  # the favicon request is the browser's own: only the console reports it
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    # when
    page.goto(f"{app_url}/offline/")
    page.wait_for_load_state("networkidle")
    # then
    assert page.locator("#offline h2").inner_text() == "You are offline"
    assert errors == []
