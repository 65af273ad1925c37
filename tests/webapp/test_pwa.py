"""PWA basics (issue 16): a web manifest with icons and display standalone, a service worker at the site
root that caches the app shell, and an offline page. The browser side is in tests/browser/test_pwa_browser.py."""

from __future__ import annotations

import json
import re

import pytest

pytestmark = pytest.mark.django_db


def test_manifest_is_installable_with_icons_that_are_served(client):
    response = client.get("/manifest.webmanifest")
    manifest = json.loads(response.content)
    assert response.status_code == 200 and response["Content-Type"] == "application/manifest+json"
    assert manifest["display"] == "standalone" and manifest["start_url"] == "/inbox/" and manifest["name"]
    sizes = {icon["sizes"] for icon in manifest["icons"] if icon["type"] == "image/png"}
    assert {"192x192", "512x512"} <= sizes
    for icon in manifest["icons"]:
        served = client.get(icon["src"])
        assert served.status_code == 200, icon["src"]


def test_every_page_links_the_manifest_and_registers_the_worker(client):
    html = client.get("/login/").content.decode()
    assert '<link rel="manifest" href="/manifest.webmanifest">' in html
    assert re.search(r'<script src="/static/webapp/app\.js[^"]*" defer>', html)
    assert 'register("/sw.js"' in b"".join(client.get("/static/webapp/app.js").streaming_content).decode()


def test_service_worker_caches_the_shell_from_the_site_root(client):
    response = client.get("/sw.js")
    script = response.content.decode()
    assert response.status_code == 200 and response["Content-Type"].startswith("application/javascript")
    shell = json.loads(re.search(r"const SHELL = (\[.*?\]);", script).group(1))
    assert "/offline/" in shell and any(u.endswith(".css") for u in shell)
    for url in shell:  # every file of the shell exists, or the worker's install would fail
        assert client.get(url).status_code == 200, url


def test_offline_page_needs_no_login(client):
    response = client.get("/offline/")
    assert response.status_code == 200 and "You are offline" in response.content.decode()
