"""Nothing the app's pages need comes from another host (issue 16): /api/docs/ once loaded Swagger UI from a
CDN and showed a blank page offline. Every URL a page references is on our origin and is served."""

from __future__ import annotations

import re

import pytest

URL_IN_PAGE = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|["'](https?:)?//[^"'\s]+["']""")
EXTERNAL = re.compile(r"""(?:https?:)?//(?!127\.0\.0\.1|localhost|testserver)[a-z0-9.-]+\.[a-z]{2,}""", re.I)


def _references(html: str) -> list[str]:
    return [m.group(1) for m in URL_IN_PAGE.finditer(html) if m.group(1)]


@pytest.mark.django_db
def test_api_docs_load_swagger_ui_from_the_app_itself(client, settings):
    settings.API_DOCS_REQUIRE_LOGIN = False
    # when
    page = client.get("/api/docs/")
    html = page.content.decode()
    # then: no other host anywhere in the page, and each script/style it references is served by the app
    assert page.status_code == 200
    assert EXTERNAL.findall(html) == [], "the docs page references another host"
    assets = [u for u in _references(html) if u.startswith("/static/")]
    assert any(u.endswith("swagger-ui-bundle.js") for u in assets)
    assert any(u.endswith("swagger-ui.css") for u in assets)
    for url in assets:
        response = client.get(url)
        assert response.status_code == 200, url
