"""The page load's state updates carry the UI texts (`AppState.messages`, ~75 KB) only when the
page is not shown in the language its compiled HTML already holds (English): an English page
keeps the texts it was built with, so the browser re-renders no translated text at start-up
(Lighthouse's blocking time, docs/performance.md); a German one, a language switch and a
reload in the chosen language still get them."""
from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from booking_app.i18n import translate
from tests.browser.helpers import goto

pytestmark = pytest.mark.browser

APP_STATE = "booking_app___ui___state___base____app_state"
MESSAGES = "messages_rx_state_"


def _record_deltas(page) -> list[dict]:
    """Every state update the page receives over its websocket, as {state name: vars}."""
    deltas: list[dict] = []

    def on_frame(payload):
        text = payload if isinstance(payload, str) else payload.decode("utf-8", "replace")
        head, _, body = text.partition(",")
        if head == "42/_event" and body:
            message = json.loads(body)
            if message[0] == "event" and "delta" in message[1]:
                deltas.append(message[1]["delta"])

    page.on("websocket", lambda ws: ws.on("framereceived", on_frame))
    return deltas


def _messages_sent(deltas: list[dict]) -> list[dict[str, str]]:
    return [vars_[MESSAGES] for delta in deltas for name, vars_ in delta.items()
            if name.endswith(APP_STATE) and MESSAGES in vars_]


def _loaded(page, deltas: list[dict]) -> None:
    """Wait for the page load's on_load updates: they end with `is_hydrated` set."""
    for _ in range(200):
        if any(vars_.get("is_hydrated_rx_state_") is True for delta in deltas for vars_ in delta.values()):
            return
        page.wait_for_timeout(100)
    raise AssertionError("the page load's updates did not arrive")


@pytest.mark.parametrize("size", ["desktop"], indirect=True)
def test_english_page_gets_no_ui_texts_german_page_and_switch_do(open_page, size):
    page = open_page("en-US")
    deltas = _record_deltas(page)
    goto(page, "/")
    _loaded(page, deltas)
    assert deltas, "no state update recorded"
    assert _messages_sent(deltas) == []
    expect(page.get_by_test_id("search-submit")).to_have_text("Search")
    deltas.clear()
    goto(page, "/search")  # another page load in English: still none
    _loaded(page, deltas)
    assert _messages_sent(deltas) == []

    page.get_by_test_id("language-switcher").select_option("de")  # the switch delivers them
    expect(page.get_by_test_id("app-root")).to_have_attribute("lang", "de")
    sent = _messages_sent(deltas)
    assert len(sent) == 1 and sent[0]["Search"] == translate("Search", "de") != "Search"
    page.wait_for_timeout(300)  # (the cookie is written as the switch is handled)

    deltas.clear()  # a new page load in the chosen language gets them on hydrate
    goto(page, "/")
    _loaded(page, deltas)
    expect(page.get_by_test_id("search-submit")).to_have_text(translate("Search", "de"))
    sent = _messages_sent(deltas)
    assert len(sent) == 1 and sent[0]["Search"] == translate("Search", "de")

    german = open_page("de-DE")  # a German browser's first visit gets them too
    german_deltas = _record_deltas(german)
    goto(german, "/")
    _loaded(german, german_deltas)
    expect(german.get_by_test_id("search-submit")).to_have_text(translate("Search", "de"))
    sent = _messages_sent(german_deltas)
    assert len(sent) == 1 and sent[0]["Search"] == translate("Search", "de")
    assert page.console_errors == [] and german.console_errors == []
