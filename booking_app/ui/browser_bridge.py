"""`browser_bridge()`: what the server asks of the browser (page language and title, the
browser's time zone, the session hand-off and sign-out requests, scrolling), done by a small React
component bundled with the app (browser_bridge.jsx) and driven by state vars.

Why not Reflex's call_script event: it sends JavaScript as a string that the page evals, and the
Content-Security-Policy (api/security.py) has no 'unsafe-eval'. Commands are data: a dict
with a random `id` (run once per id) and a `kind` the component knows."""
from __future__ import annotations

import secrets

import reflex as rx
from reflex.event import passthrough_event_spec

_SOURCE = rx.asset("browser_bridge.jsx", shared=True)


class BrowserBridge(rx.Component):
    """Renders nothing; see browser_bridge.jsx for what each prop does."""

    library = _SOURCE.importable_path
    tag = "BrowserBridge"

    page_lang: rx.Var[str]
    page_dir: rx.Var[str]
    page_title: rx.Var[str]
    command: rx.Var[dict[str, str]]

    on_timezone: rx.EventHandler[passthrough_event_spec(str)]
    on_command_done: rx.EventHandler[passthrough_event_spec(str, bool)]


def command(kind: str, **args: str) -> dict[str, str]:
    """A command for the bridge: `hand_off` (url, code, next), `end_session` (url, next) or
    `scroll_to` (target: an element id)."""
    return {"id": secrets.token_hex(8), "kind": kind, **args}


browser_bridge = BrowserBridge.create
