"""The web UI's session cookie, set and cleared by HTTP responses (services/browser_sessions.py).

- `POST /api/browser-session` {"code": …}: trades the single-use code of a sign-in made in
  the UI for the HttpOnly cookie (204 + Set-Cookie).
- `DELETE /api/browser-session`: revokes the cookie's token and clears the cookie (204).

Both accept only same-origin requests of this site's own pages (`Sec-Fetch-Site` and
`Origin`): another site can neither sign a visitor into an account of its choosing (login
CSRF; the code is unguessable as well) nor sign them out. They belong to the web UI, not
to the REST API, so they are left out of the OpenAPI document; the REST API never reads
the cookie.
"""
from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from booking_app.config import get_settings
from booking_app.i18n import N_
from booking_app.services import browser_sessions
from booking_app.services.errors import Forbidden

router = APIRouter(prefix="/api")

CROSS_SITE = N_("This request must come from this site's own pages.")
PATH = "/browser-session"  # under the router's /api prefix


class HandoffIn(BaseModel):
    code: str = Field(min_length=1, max_length=browser_sessions.MAX_CODE_LENGTH)


def _require_same_origin(request: Request) -> None:
    """Forbidden unless the browser says the request comes from a page of this site."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site != "same-origin":
        raise Forbidden(CROSS_SITE)
    origin = (request.headers.get("origin") or "").strip().lower()
    if not origin or origin == "null":
        raise Forbidden(CROSS_SITE)
    public = urlsplit(str(get_settings().public_url).lower())
    if origin == f"{public.scheme}://{public.netloc}":
        return
    # the address the page was served from (a proxy in front keeps the Host header)
    host = (request.headers.get("host") or "").strip().lower()
    if not host or urlsplit(origin).netloc != host:
        raise Forbidden(CROSS_SITE)


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post(PATH, status_code=204, response_class=Response, include_in_schema=False)
def start_browser_session(body: HandoffIn, request: Request) -> Response:
    _require_same_origin(request)
    session = browser_sessions.exchange(code=body.code)
    response = Response(status_code=204)
    response.set_cookie(browser_sessions.SESSION_COOKIE, session.token, max_age=session.max_age, path="/",
                        secure=browser_sessions.cookie_secure(), httponly=True,
                        samesite=browser_sessions.SAME_SITE)
    return _no_store(response)


@router.delete(PATH, status_code=204, response_class=Response, include_in_schema=False)
def end_browser_session(request: Request) -> Response:
    _require_same_origin(request)
    browser_sessions.end(token=browser_sessions.token_from_cookie_header(request.headers.get("cookie")))
    response = Response(status_code=204)
    response.delete_cookie(browser_sessions.SESSION_COOKIE, path="/", secure=browser_sessions.cookie_secure(),
                           httponly=True, samesite=browser_sessions.SAME_SITE)
    return _no_store(response)
