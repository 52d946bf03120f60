"""Cache-Control of the compiled frontend (api/caching.py) on the FastAPI app composed the way
Reflex mounts it: content-hashed /assets files are immutable for a year, pages and un-hashed
files are revalidated, API answers keep their own. The same through HTTP against the built
app: tests/browser/test_caching.py."""
from __future__ import annotations

import gzip

import pytest
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.routing import Mount

from booking_app.api.caching import IMMUTABLE, REVALIDATE, cache_control_for, is_hashed_asset

PAGE = "<!DOCTYPE html><html><head><script src=\"/assets/root-B1x9_zQa.js\" type=\"module\"></script></head>" \
       "<body><div id=\"root\"></div></body></html>"


@pytest.fixture
def client(tmp_path, sqlite_db):
    from reflex.utils.precompressed_staticfiles import PrecompressedStaticFiles

    from booking_app.api import create_api

    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text(PAGE)
    (tmp_path / "index.html.gz").write_bytes(gzip.compress(PAGE.encode()))
    (tmp_path / "search").mkdir()
    (tmp_path / "search" / "index.html").write_text(PAGE)
    (tmp_path / "assets" / "root-B1x9_zQa.js").write_text("console.log('hi');\n")
    (tmp_path / "assets" / "root-B1x9_zQa.js.gz").write_bytes(gzip.compress(b"console.log('hi');\n"))
    (tmp_path / "styles.css").write_text("body{}\n")
    (tmp_path / "favicon.ico").write_bytes(b"\0\0\1\0")
    inner = Starlette(routes=[Mount("/", PrecompressedStaticFiles(directory=tmp_path, html=True, encodings=["gzip"]))])
    api = create_api()
    api.mount("", inner)
    with TestClient(api, base_url="http://booking.test") as c:
        yield c


def test_hashed_assets_are_immutable_in_both_encodings(client):
    for encoding in ("identity", "gzip"):
        response = client.get("/assets/root-B1x9_zQa.js", headers={"Accept-Encoding": encoding})
        assert response.status_code == 200
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    head = client.head("/assets/root-B1x9_zQa.js")
    assert head.headers["cache-control"] == IMMUTABLE.decode()
    # the security headers are still there
    assert head.headers["x-content-type-options"] == "nosniff"


def test_pages_and_unhashed_files_are_revalidated(client):
    for path in ("/", "/search", "/styles.css", "/favicon.ico"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers["cache-control"] == "no-cache", path
    page = client.get("/")
    again = client.get("/", headers={"If-None-Match": page.headers["etag"]})
    assert again.status_code == 304 and again.headers["cache-control"] == "no-cache"
    assert "content-security-policy" in page.headers


def test_api_answers_and_errors_keep_their_own(client):
    health = client.get("/api/health")
    assert health.status_code == 200
    assert health.headers.get("cache-control") != IMMUTABLE.decode()
    missing = client.get("/assets/root-missing1.js")
    assert missing.status_code == 404 and "immutable" not in missing.headers.get("cache-control", "")


@pytest.mark.parametrize("path, hashed", [
    ("/assets/root-B1x9_zQa.js", True),
    ("/assets/manifest-4c0f9a1e.js", True),
    ("/assets/chunk-Ab-c_12Z.css", True),
    ("/assets/root-B1x9_zQa.js.map", True),
    ("/assets/logo.svg", False),
    ("/styles.css", False),
    ("/root-B1x9_zQa.js", False),  # not under /assets: a project file keeps its name
])
def test_what_counts_as_a_hashed_asset(path, hashed):
    assert is_hashed_asset(path) is hashed


def test_policy_table():
    assert cache_control_for("/assets/root-B1x9_zQa.js", "text/javascript", True) == IMMUTABLE
    assert cache_control_for("/", "text/html; charset=utf-8", True) == REVALIDATE
    assert cache_control_for("/api/services", "application/json", False) is None
    assert cache_control_for("/_event/", "text/plain", False) is None
