"""What the built app (`reflex run --env prod`) sends before any script runs, over plain HTTP:
Cache-Control (api/caching.py) — the content-hashed /assets files a page loads are immutable
for a year, pages and un-hashed files are revalidated — and each page's meta description
(ui/routes.py), both of which Lighthouse checks."""
from __future__ import annotations

import html
import re
import urllib.request

import pytest

from booking_app.i18n import translate
from booking_app.ui.routes import DEFAULT_DESCRIPTION, PAGE_DESCRIPTIONS

pytestmark = pytest.mark.browser

IMMUTABLE = "public, max-age=31536000, immutable"


def fetch(url: str, method: str = "GET") -> tuple[int, dict[str, str], str]:
    request = urllib.request.Request(url, method=method, headers={"Accept-Encoding": "gzip"})
    with urllib.request.urlopen(request, timeout=30) as resp:
        body = resp.read()
        if resp.headers.get("content-encoding") == "gzip":
            import gzip

            body = gzip.decompress(body)
        return resp.status, {k.lower(): v for k, v in resp.headers.items()}, body.decode("utf-8", "replace")


def test_hashed_assets_are_immutable_and_pages_revalidated(live_server):
    status, headers, page = fetch(live_server + "/")
    assert status == 200 and headers["cache-control"] == "no-cache"
    # the stylesheet's <link>, and the scripts the page starts after its first paint (api/prerender.py)
    assets = sorted(set(re.findall(r'(?:src|href)="(/assets/[^"]+)"', page) + re.findall(r'"(/assets/[^"]+\.js)"', page)))
    assert any(a.endswith(".js") for a in assets) and any(a.endswith(".css") for a in assets), assets
    for asset in assets:
        for method in ("GET", "HEAD"):
            status, headers, _ = fetch(live_server + asset, method)
            assert status == 200 and headers["cache-control"] == IMMUTABLE, (asset, method, headers)
            assert headers["x-content-type-options"] == "nosniff"  # the security headers stay
    for path in ("/search", "/service?id=1", "/favicon.ico", "/styles.css"):
        status, headers, _ = fetch(live_server + path)
        assert status == 200 and headers["cache-control"] == "no-cache", (path, headers)
    _, headers, _ = fetch(live_server + "/api/health")
    assert headers.get("cache-control") != IMMUTABLE


def test_every_page_has_a_meta_description(live_server):
    for path, expected in [("/", PAGE_DESCRIPTIONS["/"]), ("/search", PAGE_DESCRIPTIONS["/search"]),
                           ("/service?id=1", PAGE_DESCRIPTIONS["/service"]), ("/sign-in", DEFAULT_DESCRIPTION),
                           ("/my-bookings", DEFAULT_DESCRIPTION)]:
        _, _, page = fetch(live_server + path)
        found = re.findall(r'<meta[^>]*name="description"[^>]*content="([^"]*)"', page) or re.findall(
            r'<meta[^>]*content="([^"]*)"[^>]*name="description"', page)
        assert [html.unescape(f) for f in found] == [translate(expected, "en")], (path, found)
