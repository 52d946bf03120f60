"""The booking widget's rules (services/embed.py) and its framing headers (api/security.py):
what an allowed origin is, who may change a provider's list, and which paths may be framed by
whom (only the /embed pages, by their bookable's provider's list + EMBED_ALLOWED_ORIGINS +
FRAME_ANCESTORS; everything else keeps 'none' and X-Frame-Options: DENY)."""
from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from tests.api.conftest import set_env
from tests.factories import make_bookable, make_provider

PAGE = "<!DOCTYPE html><html><head><script>window.x = 1;</script></head><body></body></html>"


@pytest.fixture(autouse=True)
def _fresh_cache():
    """The per-process cache is keyed by ids, which repeat from one test database to the next."""
    from booking_app.services import embed

    embed.clear_cache()
    yield
    embed.clear_cache()


@pytest.mark.parametrize("value, expected", [
    ("https://shop.example.com", "https://shop.example.com"),
    ("  HTTPS://Shop.Example.COM:443/ ", "https://shop.example.com"),
    ("https://shop.example.com:8443", "https://shop.example.com:8443"),
    ("https://xn--bcher-kva.example", "https://xn--bcher-kva.example"),
    ("https://[2001:db8::1]", "https://[2001:db8::1]"),
    ("http://localhost:5173", "http://localhost:5173"),
    ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
    ("http://[::1]:3000", "http://[::1]:3000"),
])
def test_origins_are_normalised(value, expected):
    from booking_app.services import embed

    assert embed.normalise_origin(value) == expected


@pytest.mark.parametrize("value", [
    "", "   ", None, 42, "shop.example.com", "http://shop.example.com", "https://*.example.com", "*",
    "https://shop.example.com/path", "https://shop.example.com/?q=1", "https://shop.example.com#x",
    "https://user:pw@shop.example.com", "ftp://shop.example.com", "javascript:alert(1)", "'self'", "'none'",
    "https://shop.example.com; script-src *", "https://shop.example.com https://evil.example",
    "https://bücher.example", "https://a_b.example", "https://shop.example.com\x00", "https://x.example\r\n",
    "https://" + "a" * 300 + ".example", "data:text/html,hi", "https://shop.example.com:99999",
])
def test_anything_but_an_origin_is_refused(value):
    from booking_app.services import embed
    from booking_app.services.errors import InvalidInput

    with pytest.raises(InvalidInput) as info:
        embed.normalise_origin(value)
    assert info.value.field == "origins"


def test_plain_http_for_localhost_only_outside_production(monkeypatch):
    from booking_app.services import embed
    from booking_app.services.errors import InvalidInput

    set_env(monkeypatch, ENVIRONMENT="production", SECRET_KEY="x" * 64, PUBLIC_URL="https://booking.example.com")
    with pytest.raises(InvalidInput):
        embed.normalise_origin("http://localhost:5173")
    assert embed.normalise_origin("https://localhost:5173") == "https://localhost:5173"


def test_list_rules_dedupe_and_cap():
    from booking_app.services import embed
    from booking_app.services.errors import InvalidInput

    assert embed.normalise_origins(["https://a.example", "https://A.example/", "https://b.example"]) == [
        "https://a.example", "https://b.example"]
    assert embed.normalise_origins([]) == []
    with pytest.raises(InvalidInput):
        embed.normalise_origins([f"https://s{i}.example" for i in range(embed.MAX_ORIGINS + 1)])
    with pytest.raises(InvalidInput):
        embed.normalise_origins("https://a.example")  # a list, not a string


@pytest.mark.parametrize("value, expected", [("", ""), (None, ""), ("#1A73E8", "#1a73e8"), (" #00ff00 ", "#00ff00")])
def test_accent_colour(value, expected):
    from booking_app.services import embed

    assert embed.parse_accent(value) == expected


@pytest.mark.parametrize("value", ["red", "#fff", "#12345g", "1a73e8", "#1a73e8;color:red", "url(x)", 7])
def test_accent_colour_refused(value):
    from booking_app.services import embed
    from booking_app.services.errors import InvalidInput

    with pytest.raises(InvalidInput):
        embed.parse_accent(value)


def test_language_one_of_ours():
    from booking_app.config import SUPPORTED_LOCALES
    from booking_app.services import embed
    from booking_app.services.errors import InvalidInput

    assert [embed.parse_lang(x) for x in SUPPORTED_LOCALES] == list(SUPPORTED_LOCALES)
    assert embed.parse_lang("pt-BR") == "pt_BR" and embed.parse_lang("") == ""
    for bad in ("xx", "en;", "english", "../en"):
        with pytest.raises(InvalidInput):
            embed.parse_lang(bad)


def test_snippet_and_plain_iframe():
    from booking_app.services import embed
    from booking_app.services.errors import InvalidInput

    code = embed.snippet(service_id=12, accent="#AA3300", lang="fr", base="https://booking.example.com")
    assert 'data-service="12"' in code and 'data-accent="#aa3300"' in code and 'data-lang="fr"' in code
    assert '<script src="https://booking.example.com/embed.js" async></script>' in code
    frame = embed.snippet(kind="iframe", provider_id=5, base="https://booking.example.com")
    assert 'src="https://booking.example.com/embed?provider=5"' in frame
    assert embed.widget_url(service_id=3, base="https://b.example") == "https://b.example/embed?id=3"
    for bad in ({"service_id": 1, "provider_id": 2}, {}, {"service_id": "x"}, {"service_id": 1, "accent": "red"},
                {"service_id": 1, "lang": "xx"}):
        with pytest.raises(InvalidInput):
            embed.snippet(base="https://b.example", **bad)


def test_who_may_change_which_list(db_url):
    from sqlmodel import select

    from booking_app import db
    from booking_app.models import AuditEvent
    from booking_app.services import embed
    from booking_app.services.actors import Actor
    from booking_app.services.errors import Forbidden, InvalidInput
    from tests.factories import actor_for, make_customer

    provider, other = make_provider(), make_provider()
    me = actor_for(provider)
    assert embed.set_origins(actor=me, origins=["https://Shop.example.com", "https://shop.example.com/"]) == [
        "https://shop.example.com"]
    assert embed.origins_of(actor=me) == ["https://shop.example.com"]
    with pytest.raises(InvalidInput):  # one bad entry: nothing written
        embed.set_origins(actor=me, origins=["https://ok.example", "http://bad.example"])
    assert embed.origins_of(actor=me) == ["https://shop.example.com"]
    with pytest.raises(Forbidden):
        embed.set_origins(actor=actor_for(other), origins=[], provider_id=provider.id)
    with pytest.raises(Forbidden):
        embed.origins_of(actor=actor_for(make_customer()))
    with pytest.raises(Forbidden):
        embed.origins_of(actor=Actor.guest())
    admin = Actor(id=None, role="admin")
    with pytest.raises(Forbidden):  # a job's admin actor has no user: not here
        embed.origins_of(actor=admin)
    with db.read_session() as s:
        changes = s.exec(select(AuditEvent).where(AuditEvent.action == "embed.origins_changed")).all()
    assert len(changes) == 1 and changes[0].data["after"] == ["https://shop.example.com"]


def test_admin_edits_any_providers_list_and_the_middleware_sees_it_at_once(db_url):
    from booking_app.services import accounts, embed
    from tests.factories import actor_for, make_customer

    provider = make_provider()
    room = make_bookable(provider)
    admin = accounts.create_user(username="embedadmin", email="embedadmin@example.com", password="Pw-embed-admin-1",
                                 role="admin")
    assert embed.frame_ancestors(bookable_id=room.id) == ()
    embed.set_origins(actor=actor_for(admin), origins=["https://partner.example"], provider_id=provider.id)
    assert embed.frame_ancestors(bookable_id=room.id) == ("https://partner.example",)
    assert embed.frame_ancestors(provider_id=provider.id) == ("https://partner.example",)
    from booking_app.services.errors import NotFound
    with pytest.raises(NotFound):
        embed.set_origins(actor=actor_for(admin), origins=[], provider_id=make_customer().id)
    assert embed.frame_ancestors(bookable_id=10**9) == ()


# ---- headers per path ----------------------------------------------------------------------

def _client() -> TestClient:
    from booking_app.api.security import SecurityMiddleware

    app = Starlette(routes=[Route("/{path:path}", lambda request: HTMLResponse(PAGE))])
    app.add_middleware(SecurityMiddleware)
    return TestClient(app, base_url="http://booking.test")


def _frame(response) -> tuple[str, str | None]:
    csp = dict(part.strip().split(" ", 1) for part in response.headers["content-security-policy"].split(";"))
    return csp["frame-ancestors"], response.headers.get("x-frame-options")


@pytest.fixture
def framed(sqlite_db, monkeypatch):
    from booking_app.services import embed
    from tests.factories import actor_for

    for var in ("FRAME_ANCESTORS", "EMBED_ALLOWED_ORIGINS"):
        monkeypatch.delenv(var, raising=False)
    set_env(monkeypatch)
    embed.clear_cache()
    listed, unlisted = make_provider(), make_provider()
    room, other_room = make_bookable(listed), make_bookable(unlisted)
    embed.set_origins(actor=actor_for(listed), origins=["https://partner.example", "http://localhost:8000"])
    yield {"room": room.id, "other_room": other_room.id, "provider": listed.id, "unlisted": unlisted.id}
    embed.clear_cache()


def test_only_the_widget_pages_of_a_listed_provider_may_be_framed(framed):
    client = _client()
    allowed = ("https://partner.example http://localhost:8000", None)
    closed = ("'none'", "DENY")
    room = framed["room"]
    for path in (f"/embed?id={room}", f"/embed/service?id={room}&accent=%23aa0000",
                 f"/embed/book?id={room}&start=2030-01-01T10:00:00Z", f"/embed/booking?id=77&token=t&service={room}",
                 f"/embed?provider={framed['provider']}", f"/embed/?id={room}"):
        assert _frame(client.get(path)) == allowed, path
    for path in ("/", f"/service?id={room}", f"/book?id={room}", "/sign-in", "/embed.js", "/embedded",
                 f"/embed?id={framed['other_room']}", f"/embed?provider={framed['unlisted']}", "/embed",
                 "/embed?id=abc", "/embed?id=%00", "/embed?id=99999999999999", "/embed?id=\u0661",
                 f"/embed/booking?id={room}", f"/provider/embed?id={room}"):
        assert _frame(client.get(path)) == closed, path
    head = client.head(f"/embed?id={room}")
    assert _frame(head) == allowed


def test_global_settings_add_to_the_widget_pages_only(framed, monkeypatch):
    from booking_app.services import embed

    set_env(monkeypatch, EMBED_ALLOWED_ORIGINS="https://everyone.example")
    embed.clear_cache()
    client = _client()
    assert _frame(client.get(f"/embed?id={framed['other_room']}")) == ("https://everyone.example", None)
    assert _frame(client.get(f"/embed?id={framed['room']}"))[0] == (
        "https://everyone.example https://partner.example http://localhost:8000")
    assert _frame(client.get("/")) == ("'none'", "DENY")
    # FRAME_ANCESTORS keeps its meaning: every page, the widget's too
    set_env(monkeypatch, FRAME_ANCESTORS="https://*.intranet.example", EMBED_ALLOWED_ORIGINS="")
    client = _client()
    assert _frame(client.get("/")) == ("https://*.intranet.example", None)
    assert _frame(client.get(f"/embed?id={framed['room']}"))[0] == (
        "https://*.intranet.example https://partner.example http://localhost:8000")


def test_embed_allowed_origins_setting_is_validated(monkeypatch):
    from pydantic import ValidationError

    from booking_app.config import Settings

    for bad in ("https://*.example.com", "partner.example", "https://x.example; script-src *", "'self'"):
        monkeypatch.setenv("EMBED_ALLOWED_ORIGINS", bad)
        with pytest.raises(ValidationError):
            Settings()
    monkeypatch.setenv("EMBED_ALLOWED_ORIGINS", "https://A.example/, https://b.example:8443")
    assert Settings().embed_origins == ("https://a.example", "https://b.example:8443")
