"""The pages as sent (api/prerender.py, ui/previews.py), on the FastAPI app composed the way
Reflex mounts it: the bookable page's HTML carries the bookable's content before any script
runs (in the visitor's language, escaped), the app's scripts start after the first paint, and
the security headers (script hashes) and caching (ETag, 304, no-cache) hold for the rewritten
page. The built app over HTTP and in the browser: tests/browser/test_prerender.py."""
from __future__ import annotations

import base64
import gzip
import hashlib
import html
import os
import re
import threading
from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.routing import Mount

from booking_app.api import prerender
from booking_app.api.prerender import (PrerenderMiddleware, RewriteCache, defer_scripts, etag_of, fill_slots,
                                       is_page_path)
from booking_app.i18n import translate
from booking_app.services import auth, catalog
from booking_app.ui import previews
from booking_app.ui.state.booking_common import bookable_dict, bookable_summary
from tests.factories import DEFAULT_PASSWORD, actor_for, make_bookable, make_customer, make_provider

#: the shape of a page of Reflex's build (React Router): preload hints, the start-up module
#: script, and the bookable page's empty preview slot as React renders it
PAGE = (
    '<!DOCTYPE html><html lang="en"><head><meta charSet="utf-8"/>'
    '<link rel="modulepreload" href="/assets/manifest-ac313719.js"/>'
    '<link rel="modulepreload" href="/assets/entry.client-BcBPaK_9.js"/>'
    '<link rel="modulepreload" href="/assets/root-BrqjldWq.js"/>'
    '<link rel="modulepreload" href="/assets/_service_._index-BfGCawze.js"/>'
    '<link href="/assets/__reflex_global_styles-CHh6nM92.css" rel="stylesheet" type="text/css"/></head>'
    '<body><div id="app-root"><main><div class="rt-Box"><div class="rx-Html prerender-slot css-8atqhb" '
    'data-prerender="bookable"></div><div class="bars"></div></div></main></div>'
    '<script>window.__reactRouterContext = {"ssr":false};</script>'
    '<script type="module" async="">import "/assets/manifest-ac313719.js";\n'
    'import * as route0 from "/assets/root-BrqjldWq.js";\n'
    'import * as route1 from "/assets/_service_._index-BfGCawze.js";\n  \n'
    '  window.__reactRouterRouteModules = {"root":route0,"routes/[service]._index":route1};\n\n'
    'import("/assets/entry.client-BcBPaK_9.js");</script></body></html>'
)
EVIL_NAME = '<script>alert("name")</script>'
EVIL_TEXT = '"><img src=x onerror=alert(1)> & <b>bold</b>'


class Tree(HTMLParser):
    """Tags and texts of a page, and the text inside the preview slot."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.slot_depth = 0
        self.slot_tags: list[str] = []
        self.slot_text: list[str] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if self.slot_depth:
            self.slot_tags.append(tag)
            if tag not in ("path", "circle", "svg"):
                self.slot_depth += 1
        elif attrs.get("data-prerender"):
            self.slot_depth = 1
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        if self.slot_depth and tag not in ("path", "circle", "svg"):
            self.slot_depth -= 1
        self._in_script = False

    def handle_data(self, data):
        if self.slot_depth and data.strip():
            self.slot_text.append(data.strip())
        if self._in_script:
            self.scripts.append(data)


def parse(page: str) -> Tree:
    tree = Tree()
    tree.feed(page)
    return tree


@pytest.fixture
def site(tmp_path):
    (tmp_path / "assets").mkdir()
    for name, slot in (("service", "bookable"), ("search", "search"), ("embed", "none")):
        page = PAGE.replace('data-prerender="bookable"', f'data-prerender="{slot}"')
        (tmp_path / name).mkdir()
        (tmp_path / name / "index.html").write_text(page)
        (tmp_path / name / "index.html.gz").write_bytes(gzip.compress(page.encode()))
    (tmp_path / "index.html").write_text(PAGE)
    (tmp_path / "assets" / "root-BrqjldWq.js").write_text("export default 1;\n")
    return tmp_path


def composed(site, fillers, **options):
    from reflex.utils.precompressed_staticfiles import PrecompressedStaticFiles

    from booking_app.api import create_api

    reflex_app = Starlette(routes=[Mount("/", PrecompressedStaticFiles(directory=site, html=True,
                                                                       encodings=["gzip"]))])
    api = create_api()
    api.mount("", PrerenderMiddleware(reflex_app, fillers=fillers, **options))  # as booking_app.py composes it
    return api


@pytest.fixture
def client(site, sqlite_db):
    with TestClient(composed(site, previews.FILLERS), base_url="http://booking.test") as c:
        yield c


def test_scripts_start_after_the_first_paint():
    out = defer_scripts(PAGE)
    assert 'rel="modulepreload"' not in out.split("<body>")[0]  # no early downloads in <head>
    script = re.search(r'<script type="module" async="">(.*?)</script>', out, re.DOTALL).group(1)
    # first a frame is painted, then the same modules are loaded and the app started
    assert script.startswith("await new Promise((r) => { requestAnimationFrame(() => setTimeout(r, 0)); "
                             "setTimeout(r, 1000); });")
    for src in ("/assets/manifest-ac313719.js", "/assets/root-BrqjldWq.js", "/assets/_service_._index-BfGCawze.js",
                "/assets/entry.client-BcBPaK_9.js"):
        assert f'"{src}"' in script
    assert 'window.__reactRouterRouteModules = {"root":route0,"routes/[service]._index":route1};' in script
    assert script.index("__reactRouterRouteModules") < script.index('import("/assets/entry.client')
    assert script.rstrip().endswith('import("/assets/entry.client-BcBPaK_9.js");')
    # a page it doesn't recognise is left alone
    other = "<html><body><script type=\"module\">console.log(1)</script></body></html>"
    assert defer_scripts(other) == other


def test_slots_and_page_paths():
    assert fill_slots(PAGE, {"bookable": "<p>x</p>"}).count('data-prerender="bookable"><p>x</p></div>') == 1
    assert fill_slots(PAGE, {}) == PAGE
    assert is_page_path("/") and is_page_path("/service") and is_page_path("/provider/bookable")
    for path in ("/assets/root-BrqjldWq.js", "/styles.css", "/api/services", "/_event", "/favicon.ico"):
        assert not is_page_path(path), path


def test_bookable_page_html_carries_its_content_before_any_script(client):
    b = make_bookable(name="Studio Nord", description="Quiet room with a piano.", location="Harbour 3",
                      price_cents=4200, currency="EUR", cancel_cutoff_hours=24, refund_percent=50)
    response = client.get(f"/service?id={b.id}", headers={"Accept-Encoding": "identity"})
    assert response.status_code == 200
    tree = parse(response.text)
    assert tree.slot_text[:3] == ["Back to search", "Room", "Studio Nord"]
    for text in ("Quiet room with a piano.", "Harbour 3", "€42.00", "Full? Join the waitlist"):
        assert text in tree.slot_text, (text, tree.slot_text)
    assert ("h1", {"dir": "auto", "class": "rt-Heading rt-r-size-7"}) in tree.tags
    assert any(t == "a" and a.get("href") == f"/waitlist?service={b.id}" for t, a in tree.tags)
    # the policy the page states, in the same words
    info = bookable_summary(bookable_dict(catalog.get_bookable(bookable_id=b.id)), "en")
    assert info["policy"] in tree.slot_text


def test_the_rewritten_page_keeps_its_script_hashes_and_caching(client):
    b = make_bookable()
    response = client.get(f"/service?id={b.id}", headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200 and response.headers["content-encoding"] == "gzip"
    assert response.headers["cache-control"] == "no-cache"
    # every inline script of the page as sent is allowed by its CSP (hash of the final text)
    csp = response.headers["content-security-policy"]
    for script in re.findall(r"<script(?![^>]*\ssrc=)[^>]*>(.*?)</script>", response.text, re.DOTALL):
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in csp
    assert "requestAnimationFrame" in response.text
    etag = response.headers["etag"]
    again = client.get(f"/service?id={b.id}", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    # another bookable is another page (another ETag)
    other = client.get(f"/service?id={make_bookable(name='Other room').id}")
    assert other.headers["etag"] != etag
    # a page without a preview is rewritten too (scripts after paint) and revalidated
    # the booking widget's pages start their app at once (framed below another site's fold, a
    # frame may paint no frame for a long time)
    embed = client.get("/embed?id=1")
    assert embed.status_code == 200 and "requestAnimationFrame" not in embed.text
    assert 'import("/assets/entry.client-BcBPaK_9.js")' in embed.text
    search = client.get("/search")
    assert search.status_code == 200 and "requestAnimationFrame" in search.text
    assert search.headers["cache-control"] == "no-cache"
    assert client.get("/search", headers={"If-None-Match": search.headers["etag"]}).status_code == 304


def test_user_content_is_escaped(client):
    b = make_bookable(name=EVIL_NAME, description=EVIL_TEXT, location=EVIL_TEXT)
    response = client.get(f"/service?id={b.id}")
    tree = parse(response.text)
    # no element from the user's text: only the preview's own markup inside the slot
    assert set(tree.slot_tags) <= {"div", "a", "svg", "path", "circle", "span", "h1", "p"}
    assert "img" not in [t for t, _ in tree.tags] and "b" not in tree.slot_tags
    assert EVIL_NAME in tree.slot_text and EVIL_TEXT in tree.slot_text  # shown as text
    assert all('alert("name")' not in s for s in tree.scripts)
    assert "&lt;script&gt;alert(&quot;name&quot;)&lt;/script&gt;" in response.text


def test_the_preview_speaks_the_pages_language(client):
    b = make_bookable(name="Sala Sur")
    german = parse(client.get(f"/service?id={b.id}", headers={"Accept-Language": "de-DE,de;q=0.9"}).text)
    assert german.slot_text[0] == translate("Back to search", "de") != "Back to search"
    # the language the visitor chose (cookie) wins over the browser's
    french = parse(client.get(f"/service?id={b.id}", headers={"Accept-Language": "de",
                                                               "Cookie": "booking_locale=fr"}).text)
    assert french.slot_text[0] == translate("Back to search", "fr")
    # a signed-in user's own setting comes before Accept-Language
    user = make_customer(locale="es")
    token = auth.login(identifier=user.username, password=DEFAULT_PASSWORD).access_token
    spanish = parse(client.get(f"/service?id={b.id}", headers={"Accept-Language": "de",
                                                                "Cookie": f"booking_session={token}"}).text)
    assert spanish.slot_text[0] == translate("Back to search", "es")
    arabic = client.get(f"/service?id={b.id}", headers={"Accept-Language": "ar"}).text
    assert 'lang="ar" dir="rtl"' in arabic


def test_no_preview_where_the_page_shows_not_found(client):
    provider = make_provider()
    hidden = make_bookable(provider, name="Closed room")
    catalog.update_bookable(actor=actor_for(provider), bookable_id=hidden.id, is_active=False)
    for query in (f"id={hidden.id}", "id=999999", "id=abc", "id=-1", "", "id=1%00"):
        response = client.get(f"/service?{query}")
        assert response.status_code == 200, query
        assert parse(response.text).slot_text == [], query
        assert 'data-prerender="bookable"></div>' in response.text
    # its provider sees it (the page would show it to them)
    token = auth.login(identifier=provider.username, password=DEFAULT_PASSWORD).access_token
    own = client.get(f"/service?id={hidden.id}", headers={"Cookie": f"booking_session={token}"})
    assert "Closed room" in parse(own.text).slot_text


def test_search_page_html_carries_the_first_results(client):
    provider = make_provider()
    make_bookable(provider, name="Zebra studio", description="Loft with north light.", location="Dock 7",
                  price_cents=1500)
    make_bookable(provider, name=f"Zebra {EVIL_NAME}", description=EVIL_TEXT)
    make_bookable(provider, name="Zebra closed", weekly=[])  # nothing bookable: not listed
    tree = parse(client.get("/search?q=Zebra", headers={"Accept-Language": "fr"}).text)
    for text in ("Zebra studio", "Loft with north light.", "Dock 7", f"Zebra {EVIL_NAME}", EVIL_TEXT):
        assert text in tree.slot_text, (text, tree.slot_text)
    assert "Zebra closed" not in tree.slot_text
    assert translate("Room", "fr") in tree.slot_text  # the kind, in the page's language
    assert "img" not in [t for t, _ in tree.tags] and "b" not in tree.slot_tags
    assert tree.slot_tags.count("h2") == 2 and tree.slot_tags.count("a") == 2
    # at most a first screen of cards
    for n in range(previews.SEARCH_PREVIEW_CARDS + 2):
        make_bookable(provider, name=f"Yak {n}")
    assert parse(client.get("/search?q=Yak").text).slot_tags.count("h2") == previews.SEARCH_PREVIEW_CARDS
    # no preview where the page shows no results or says the search is wrong
    for query in ("q=nothing-like-this", "date=2020-99-99", "date=yesterday"):
        response = client.get(f"/search?{query}")
        assert response.status_code == 200 and parse(response.text).slot_text == [], query


def test_a_failing_filler_leaves_the_page_working(site, sqlite_db):
    def broken(request):
        raise RuntimeError("database down")

    with TestClient(composed(site, {"/service": broken}), base_url="http://booking.test") as c:
        response = c.get("/service?id=1")
    assert response.status_code == 200
    assert 'data-prerender="bookable"></div>' in response.text and "requestAnimationFrame" in response.text


def test_files_and_the_api_pass_untouched(client):
    asset = client.get("/assets/root-BrqjldWq.js")
    assert asset.status_code == 200 and asset.text == "export default 1;\n"
    assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
    api = client.get("/api/services")
    assert api.status_code == 200 and api.headers["content-type"].startswith("application/json")


@pytest.fixture
def rewrites(monkeypatch):
    """How often the scripts of a page were moved, and a page gzipped, by the middleware."""
    counts = {"defer": 0, "gzip": 0}
    defer, compress = prerender.defer_scripts, gzip.compress

    def counting_defer(page):
        counts["defer"] += 1
        return defer(page)

    def counting_compress(data, *args, **kwargs):
        counts["gzip"] += b"__reactRouterRouteModules" in data
        return compress(data, *args, **kwargs)

    monkeypatch.setattr(prerender, "defer_scripts", counting_defer)
    monkeypatch.setattr(gzip, "compress", counting_compress)
    return counts


def test_a_page_for_everyone_is_rewritten_once_per_build(site, sqlite_db, rewrites):
    with TestClient(composed(site, previews.FILLERS), base_url="http://booking.test") as c:
        first = c.get("/", headers={"Accept-Encoding": "gzip"})
        expected = defer_scripts(PAGE).encode()
        assert first.content == expected and first.headers["content-encoding"] == "gzip"
        assert first.headers["etag"] == etag_of(expected).decode()
        vary = [v.strip() for v in first.headers["vary"].split(",")]
        assert "Accept-Encoding" in vary and "Cookie" not in vary
        assert rewrites == {"defer": 1, "gzip": 1}
        for _ in range(3):  # the same page again: the same answer, nothing made again
            again = c.get("/", headers={"Accept-Encoding": "gzip"})
            assert again.content == expected and again.headers["etag"] == first.headers["etag"]
            assert again.headers["content-length"] == first.headers["content-length"]
        plain = c.get("/", headers={"Accept-Encoding": "identity"})
        assert plain.content == expected and "content-encoding" not in plain.headers
        assert int(plain.headers["content-length"]) == len(expected)
        assert c.get("/", headers={"If-None-Match": first.headers["etag"]}).status_code == 304
        assert rewrites == {"defer": 1, "gzip": 1}
        # a rebuild: the same size and time stamp, other bytes → the new page, a new ETag
        stat = (site / "index.html").stat()
        (site / "index.html").write_text(PAGE.replace('lang="en"', 'lang="fr"'))
        os.utime(site / "index.html", ns=(stat.st_atime_ns, stat.st_mtime_ns))
        rebuilt = c.get("/", headers={"If-None-Match": first.headers["etag"], "Accept-Encoding": "gzip"})
        assert rebuilt.status_code == 200 and '<html lang="fr">' in rebuilt.text
        assert rebuilt.headers["etag"] != first.headers["etag"]
        assert rebuilt.content == defer_scripts(PAGE.replace('lang="en"', 'lang="fr"')).encode()
        assert rewrites == {"defer": 2, "gzip": 2}


def test_a_filled_page_still_follows_its_request(site, sqlite_db, rewrites):
    calls = []

    def echo(request):
        calls.append(request.query)
        return {"bookable": f"<p>{html.escape(request.query.get('id', ''))}</p>"}

    with TestClient(composed(site, {"/service": echo}), base_url="http://booking.test") as c:
        one = c.get("/service?id=1", headers={"Accept-Encoding": "gzip"})
        two = c.get("/service?id=2", headers={"Accept-Encoding": "gzip"})
        again = c.get("/service?id=1", headers={"Accept-Encoding": "gzip"})
    assert 'data-prerender="bookable"><p>1</p></div>' in one.text
    assert 'data-prerender="bookable"><p>2</p></div>' in two.text
    assert one.content != two.content and one.headers["etag"] != two.headers["etag"]
    assert again.content == one.content and again.headers["etag"] == one.headers["etag"]
    assert {"Accept-Encoding", "Cookie", "Accept-Language"} <= {v.strip() for v in one.headers["vary"].split(",")}
    assert "requestAnimationFrame" in one.text and 'rel="modulepreload"' not in one.text.split("<body>")[0]
    assert len(calls) == 3  # filled for every request, gzipped for every request ...
    assert rewrites == {"defer": 1, "gzip": 3}  # ... its scripts moved once


def test_the_cache_changes_no_answer(site, sqlite_db):
    """Every page, encoding and revalidation answered alike with and without the cache."""
    (site / "404.html").write_text(PAGE.replace('data-prerender="bookable"', 'data-prerender="missing"'))
    b = make_bookable(name="Studio Nord")
    requests = [(path, headers) for path in ("/", "/search", "/search?q=Studio", f"/service?id={b.id}",
                                             "/service?id=999", "/embed?id=1", "/no-such-page")
                for headers in ({"Accept-Encoding": "identity"}, {"Accept-Encoding": "gzip, br"},
                                {"Accept-Encoding": "gzip;q=0"}, {"Accept-Language": "de"})]
    answers = {}
    for pages in (0, prerender.CACHE_PAGES):
        with TestClient(composed(site, previews.FILLERS, cache_pages=pages), base_url="http://booking.test") as c:
            for _ in range(2):  # the second time from the cache
                for path, headers in requests:
                    r = c.get(path, headers=headers)
                    revalidated = c.get(path, headers={**headers, "If-None-Match": r.headers["etag"]})
                    answer = (r.status_code, r.content, revalidated.status_code,
                              *(r.headers.get(h) for h in ("etag", "content-encoding", "vary", "content-length",
                                                           "content-security-policy", "cache-control")))
                    assert answers.setdefault((path, tuple(headers.items())), answer) == answer, (pages, path, headers)
    assert answers[("/no-such-page", (("Accept-Encoding", "identity"),))][0] == 404
    assert answers[("/", (("Accept-Encoding", "identity"),))][2] == 304


def test_the_cache_keeps_the_pages_used_last_within_its_bounds():
    pages = [PAGE.replace("app-root", f"app-{n:04d}").encode() for n in range(5)]
    cache = RewriteCache(pages=3, max_bytes=10 * len(PAGE))
    kept = [cache.get(p, True) for p in pages[:3]]
    assert cache.get(pages[0], True) is kept[0]  # a hit; now the one used last
    cache.get(pages[3], True)  # over three: out goes the one used longest ago (pages[1])
    assert len(cache) == 3
    assert cache.get(pages[0], True) is kept[0] and cache.get(pages[2], True) is kept[2]
    assert cache.get(pages[1], True) is not kept[1]
    # the same bytes for an embedded path (scripts left alone) are another page
    assert cache.get(pages[0], False).body == pages[0] != cache.get(pages[0], True).body
    # a byte budget: at most two pages' worth
    small = RewriteCache(pages=10, max_bytes=2 * len(defer_scripts(PAGE)) + 10)
    for p in pages:
        small.get(p, True)
    assert len(small) == 2
    assert len(RewriteCache(pages=0)) == 0 and RewriteCache(pages=0).get(pages[0], True).body == kept[0].body


def test_the_cache_holds_under_threads():
    pages = [PAGE.replace("app-root", f"app-{n:04d}").encode() for n in range(12)]
    cache = RewriteCache(pages=4)
    errors = []

    def work(offset):
        try:
            for i in range(200):
                p = pages[(i + offset) % len(pages)]
                assert cache.get(p, True).body == defer_scripts(p.decode()).encode()
        except AssertionError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(cache) == 4
    assert cache._bytes == sum(len(page.body) for page in cache._entries.values())
