"""The OpenAPI document tells the truth (booking_app/api/openapi.py, api/errors.py): who must
sign in, which errors each operation can answer and in which format, and the HTTP details a
client relies on (422 for a body that isn't JSON, `Allow` on 405). The generated-request proof
over every operation and role is test_schemathesis.py."""
from __future__ import annotations

import pytest
from fastapi import APIRouter, Body, Depends

from booking_app.api import create_api
from booking_app.api.deps import get_actor, require_role, require_user
from tests.api.conftest import assert_problem

DOCUMENT = create_api().openapi()
OPERATIONS = [(method.upper(), path, op) for path, ops in DOCUMENT["paths"].items() for method, op in ops.items()]
PROBES = {"/api/health", "/api/ready", "/metrics"}


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/api/services"), ("GET", "/api/services/{id}"), ("GET", "/api/services/{id}/slots"),
    ("GET", "/api/services/{id}/availability"), ("GET", "/api/services/{id}/sessions"),
    ("POST", "/api/bookings"), ("POST", "/api/payments/process"),
])
def test_operations_anonymous_callers_may_use_declare_optional_auth(method, path):
    assert DOCUMENT["paths"][path][method.lower()]["security"] == [{}, {"HTTPBearer": []}]


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/api/bookings"), ("GET", "/api/users/profile"), ("POST", "/api/services"), ("GET", "/api/admin/users"),
])
def test_signed_in_operations_require_the_token(method, path):
    operation = DOCUMENT["paths"][path][method.lower()]
    assert operation["security"] == [{"HTTPBearer": []}]
    assert "401" in operation["responses"]


def test_every_error_response_is_a_documented_problem():
    assert DOCUMENT["components"]["schemas"]["Problem"]["required"] == ["type", "title", "status", "detail"]
    assert "HTTPValidationError" not in DOCUMENT["components"]["schemas"]
    for method, path, operation in OPERATIONS:
        if path in PROBES:
            continue
        responses = operation["responses"]
        assert "503" in responses, (method, path)
        for status, response in responses.items():
            if int(status) >= 400:
                assert response["content"] == {"application/problem+json": {
                    "schema": {"$ref": "#/components/schemas/Problem"}}}, (method, path, status)
                if status in ("429", "503"):
                    assert response["headers"]["Retry-After"]["required"] is True, (method, path, status)
        if "requestBody" in operation:
            assert {"413", "422"} <= set(responses), (method, path)
        if "{" in path:
            assert "404" in responses, (method, path)


def test_routes_added_later_are_documented_by_their_dependencies():
    """A router of tomorrow needs no documentation of its own: the dependencies say it all."""
    app = create_api()
    router = APIRouter(prefix="/api/later")

    @router.get("/public")
    def public_read(actor=Depends(get_actor)) -> dict:
        return {}

    @router.post("/mine")
    def my_change(body: dict = Body(), actor=Depends(require_user)) -> dict:
        return {}

    @router.delete("/{id}")
    def admin_removal(id: int, actor=Depends(require_role("admin"))) -> None:  # noqa: A002
        return None

    app.include_router(router)
    paths = app.openapi()["paths"]
    public, mine, admin = paths["/api/later/public"]["get"], paths["/api/later/mine"]["post"], paths["/api/later/{id}"]["delete"]
    assert public["security"] == [{}, {"HTTPBearer": []}] and {"401", "503"} <= set(public["responses"])
    assert mine["security"] == [{"HTTPBearer": []}] and {"401", "413", "422", "503"} <= set(mine["responses"])
    assert "429" not in mine["responses"] and "403" not in mine["responses"]
    assert admin["security"] == [{"HTTPBearer": []}] and {"401", "403", "404", "422", "503"} <= set(admin["responses"])


@pytest.mark.parametrize("body", [b'{"username": "a", "password":', b'{"username": "\xff", "password": "x"}', b"[" * 50_000],
                         ids=["truncated", "not-utf8", "too-deep"])
def test_a_body_that_is_not_json_is_a_422_problem(sqlite_db, body):
    from fastapi.testclient import TestClient

    with TestClient(create_api(), raise_server_exceptions=False) as client:
        response = client.post("/api/users/login", content=body, headers={"Content-Type": "application/json"})
        problem = assert_problem(response, 422)
        assert problem["errors"][0]["type"] == "json_invalid"
        response = client.post("/api/users/login", content=b"username=a&password=b",
                               headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert_problem(response, 422)


@pytest.mark.parametrize(("method", "path", "allow"), [
    ("PATCH", "/api/bookings/1", "DELETE, GET, PUT"),
    ("PATCH", "/api/bookings", "GET, POST"),
    ("OPTIONS", "/api/users/profile", "DELETE, GET, PUT"),
    ("POST", "/api/health", "GET"),
    # a fixed path beside a template (…/{booking_id}) that would take its text as an id
    ("GET", "/api/payments/process", "POST"),
    ("PUT", "/api/payments/methods", "GET"),
])
@pytest.mark.parametrize("mounted", [False, True], ids=["api-alone", "web-ui-mounted"])
def test_405_allows_every_method_of_the_path(sqlite_db, tmp_path, method, path, allow, mounted):
    """Alone (`uvicorn booking_app.api:api`) and as served, with the web UI's static files mounted
    behind the API at "" (which would otherwise answer a plain-text 405 `Allow: GET, HEAD`)."""
    from fastapi.testclient import TestClient
    from starlette.applications import Starlette
    from starlette.routing import Mount
    from starlette.staticfiles import StaticFiles

    app = create_api()
    if mounted:
        (tmp_path / "index.html").write_text("page")
        app.mount("", Starlette(routes=[Mount("/", StaticFiles(directory=tmp_path, html=True))]))
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.request(method, path)
        if mounted:
            assert client.get("/").text == "page"  # the web UI still gets every other request
    assert_problem(response, 405)
    assert response.headers["Allow"] == allow


def test_a_query_parameter_given_twice_is_a_422_problem(sqlite_db):
    """The document declares one value; FastAPI would silently keep the last (parameter pollution)."""
    from fastapi.testclient import TestClient

    with TestClient(create_api(), raise_server_exceptions=False) as client:
        problem = assert_problem(client.get("/api/services?kind=room&kind=event"), 422)
        assert problem["errors"] == [{"field": "kind", "message": problem["detail"], "type": "repeated"}]
        assert client.get("/api/services?kind=room&limit=5").status_code == 200
        # the web UI behind the API keeps its own query strings
        assert client.get("/somewhere?a=1&a=2").status_code == 404


def test_list_query_parameters_may_repeat():
    from booking_app.api.queryparams import repeated_parameter

    assert repeated_parameter(b"ids=1&ids=2&q=x", {"ids"}) is None
    assert repeated_parameter(b"ids=1&q=x&q=", {"ids"}) == "q"
    assert repeated_parameter(b"a%20b=1&a+b=2", set()) == "a b"
