"""A page load's state update (AppState.init_page, the on_load of every page) carries the UI
texts (`messages`, the whole catalog, ~75 KB) only when the language changes: the compiled
page holds the English texts, so an English page load sends none of them and the browser
re-renders no translated text; a German visitor, or a switch, gets them
(tests/browser/test_hydrate_payload.py checks the same over the websocket)."""
from __future__ import annotations

import asyncio
import json

import pytest
from reflex.state import State

from booking_app.config import get_settings
from booking_app.i18n import translate
from booking_app.ui.state.base import AppState

MESSAGES = "messages"


def _fresh_app_state() -> tuple[State, AppState]:
    root = State(_reflex_internal_init=True)
    app = root.get_substate(AppState.get_full_name().split(".")[1:])
    _delta(root)  # what the first hydrate sends; clean from here on
    return root, app


def _delta(root: State) -> dict[str, dict]:
    """The next update sent to the browser, keyed by state class name, var names without
    Reflex's suffix; the state is clean afterwards."""
    delta = asyncio.run(root._get_resolved_delta())
    root._clean()
    return {name.rsplit(".", 1)[-1]: {var.removesuffix("_rx_state_"): value for var, value in vars_.items()}
            for name, vars_ in delta.items()}


def _app_vars(delta: dict[str, dict]) -> dict:
    return delta.get(AppState.get_name(), {})


def test_an_english_page_load_sends_no_ui_texts_and_the_next_one_nothing():
    root, app = _fresh_app_state()
    AppState.init_page.fn(app)
    delta = _delta(root)
    assert MESSAGES not in _app_vars(delta) and "locale" not in _app_vars(delta)
    assert _app_vars(delta)["ready"] is True
    assert len(json.dumps(delta)) < 2_000  # (75 KB when `locale` was assigned again)
    # the next page's load: nothing changed, nothing derived from the language or the
    # (signed-out) user is recomputed and sent (the catalog, the result cards)
    AppState.init_page.fn(app)
    assert _delta(root) == {}


@pytest.mark.parametrize("locale", ["de", "ar"])
def test_a_page_load_in_another_language_sends_its_texts(locale):
    root, app = _fresh_app_state()
    app.locale_choice = locale  # the visitor's choice (the cookie)
    _delta(root)
    AppState.init_page.fn(app)
    sent = _app_vars(_delta(root))
    assert sent["locale"] == locale
    assert sent[MESSAGES]["Search"] == translate("Search", locale) != "Search"
    AppState.init_page.fn(app)  # the next page's load: the browser has them already
    assert MESSAGES not in _app_vars(_delta(root))


def test_switching_language_sends_the_texts_and_switching_back_sends_english():
    root, app = _fresh_app_state()
    AppState.init_page.fn(app)
    _delta(root)
    asyncio.run(AppState.set_language.fn(app, "fr"))
    assert _app_vars(_delta(root))[MESSAGES]["Search"] == translate("Search", "fr")
    asyncio.run(AppState.set_language.fn(app, "en"))
    assert _app_vars(_delta(root))[MESSAGES]["Search"] == "Search"


def test_the_browser_time_zone_is_kept_without_an_update_of_the_app_state():
    """Every first visit reports the browser's time zone right after loading: an update of
    AppState would re-render every translated text a second time."""
    root, app = _fresh_app_state()
    AppState.set_browser_tz.fn(app, "Europe/Berlin")
    assert AppState.get_name() not in _delta(root)
    assert app._view_tz() == "Europe/Berlin"
    AppState.set_browser_tz.fn(app, "Not/AZone")  # kept, but never used
    assert app._view_tz() == get_settings().default_timezone
