"""Translations: every message the code uses is translated in every shipped catalog, the
catalogs are well-formed (placeholders kept), and locale negotiation works."""
from __future__ import annotations

import pathlib
import re

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from booking_app import i18n
from booking_app.config import SUPPORTED_LOCALES

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "booking_app"
KEYWORDS = {"N_": None, "translate": None, "T": None, "tr": None}
SHIPPED = [loc for loc in SUPPORTED_LOCALES if loc != "en"]
PLACEHOLDER = re.compile(r"\{[a-zA-Z_][a-zA-Z0-9_]*\}")


def _used_msgids() -> set[str]:
    found: set[str] = set()
    for _filename, _lineno, message, _comments, _context in extract_from_dir(
        str(PACKAGE), method_map=[("**.py", "python")], keywords=KEYWORDS,
    ):
        msgid = message[0] if isinstance(message, tuple) else message
        if msgid:
            found.add(msgid)
    return found


@pytest.fixture(scope="module")
def used_msgids() -> set[str]:
    return _used_msgids()


def _po(locale: str):
    path = i18n.LOCALES_DIR / locale / "LC_MESSAGES" / "messages.po"
    assert path.exists(), f"missing catalog {path}"
    with path.open("rb") as fh:
        return read_po(fh, locale=locale)


def test_code_uses_messages(used_msgids):
    assert len(used_msgids) > 50
    assert "Sign in" in used_msgids  # UI text through T()
    assert "Wrong username or password." in used_msgids  # service errors through N_()


@pytest.mark.parametrize("locale", SHIPPED)
def test_every_used_message_is_translated(locale, used_msgids):
    catalog = {m.id: m for m in _po(locale) if m.id}
    missing = sorted(m for m in used_msgids if m not in catalog or not catalog[m].string or catalog[m].fuzzy)
    assert not missing, (
        f"{len(missing)} message(s) without a {locale} translation (run `make i18n-update` and translate):\n"
        + "\n".join(f"  {m!r}" for m in missing[:40])
    )


@pytest.mark.parametrize("locale", SHIPPED)
def test_translations_keep_placeholders(locale):
    for message in _po(locale):
        if not message.id or not message.string or isinstance(message.id, tuple):
            continue
        assert set(PLACEHOLDER.findall(message.id)) == set(PLACEHOLDER.findall(message.string)), (
            f"{locale}: placeholders differ in {message.id!r} → {message.string!r}"
        )


def test_english_catalog_and_template_exist():
    assert (i18n.LOCALES_DIR.parent / "messages.pot").exists()
    assert (i18n.LOCALES_DIR / "en" / "LC_MESSAGES" / "messages.po").exists()


# --- negotiation --------------------------------------------------------------------------

def test_parse_accept_language_orders_by_quality():
    assert i18n.parse_accept_language("fr-CH, fr;q=0.9, en;q=0.8, de;q=0.7, *;q=0.5") == [
        "fr-CH", "fr", "en", "de", "*"]
    assert i18n.parse_accept_language("de;q=0.5, es") == ["es", "de"]
    assert i18n.parse_accept_language("en;q=0, ar") == ["ar"]  # q=0 means "not acceptable"
    assert i18n.parse_accept_language("xx;q=abc") == []
    assert i18n.parse_accept_language("") == []
    assert i18n.parse_accept_language(None) == []


def test_negotiate_prefers_user_setting_then_browser_then_default(monkeypatch):
    assert i18n.negotiate_locale("de", "fr-FR,fr;q=0.9") == "de"
    assert i18n.negotiate_locale(None, "fr-FR,fr;q=0.9") == "fr"
    assert i18n.negotiate_locale("xx", "ja, es-MX;q=0.8") == "es"  # unknown setting is ignored
    assert i18n.negotiate_locale(None, "ja, zh") == "en"
    monkeypatch.setenv("DEFAULT_LOCALE", "es")
    from booking_app.config import reset_settings_cache

    reset_settings_cache()
    assert i18n.negotiate_locale(None, None) == "es"


def test_normalize_locale():
    assert i18n.normalize_locale("es-MX") == "es"
    assert i18n.normalize_locale("AR_eg") == "ar"
    assert i18n.normalize_locale("pt") is None
    assert i18n.normalize_locale("") is None


def test_translate_with_params_and_fallbacks():
    assert i18n.translate("Sign in", "es") == "Iniciar sesión"
    assert i18n.translate("Password must be at least {min} characters.", "de", min=8) == \
        "Das Passwort muss mindestens 8 Zeichen lang sein."
    assert i18n.translate("{minutes} min", "fr", minutes=45) == "45 min"
    # unknown locale → default language; unknown msgid → the msgid itself, params filled
    assert i18n.translate("Sign in", "xx") == "Sign in"
    assert i18n.translate("Not a message {n}", "es", n=3) == "Not a message 3"


def test_rtl_only_for_arabic():
    assert i18n.text_direction("ar") == "rtl"
    assert all(i18n.text_direction(loc) == "ltr" for loc in SUPPORTED_LOCALES if loc != "ar")


def test_ui_catalog_covers_every_known_message():
    messages = i18n.messages_for("fr")
    assert messages["Sign in"] == "Se connecter"
    assert set(i18n.known_msgids()) <= set(messages)
