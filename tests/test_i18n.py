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
KEYWORDS = {"N_": None, "Np_": (1, 2), "translate": None, "T": None, "tr": None}
SHIPPED = [loc for loc in SUPPORTED_LOCALES if loc != "en"]
PLACEHOLDER = re.compile(r"\{[a-zA-Z_][a-zA-Z0-9_]*\}")


def _used_msgids() -> set[str | tuple[str, str]]:
    """Every msgid the code marks: a str, or (singular, plural) for an Np_ message."""
    found: set[str | tuple[str, str]] = set()
    for _filename, _lineno, message, _comments, _context in extract_from_dir(
        str(PACKAGE), method_map=[("**.py", "python")], keywords=KEYWORDS,
    ):
        if isinstance(message, tuple) and len(message) == 2 and all(message):
            found.add((message[0], message[1]))
            continue
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
    po = _po(locale)
    catalog = {(tuple(m.id) if isinstance(m.id, (list, tuple)) else m.id): m for m in po if m.id}

    def translated(msgid) -> bool:
        m = catalog.get(msgid)
        if m is None or m.fuzzy:
            return False
        if isinstance(msgid, tuple):  # every plural form of the language
            return len(m.string) == po.num_plurals and all(m.string)
        return bool(m.string)

    missing = sorted((m for m in used_msgids if not translated(m)), key=str)
    assert not missing, (
        f"{len(missing)} message(s) without a {locale} translation (run `make i18n-update` and translate):\n"
        + "\n".join(f"  {m!r}" for m in missing[:40])
    )


@pytest.mark.parametrize("locale", SHIPPED)
def test_translations_keep_placeholders(locale):
    for message in _po(locale):
        if not message.id or not message.string:
            continue
        if isinstance(message.id, tuple):
            # a plural form may say the number in words ("one seat"), leaving out its
            # placeholder; it uses no other, and the last form (the general one) keeps all
            wanted = set(PLACEHOLDER.findall(message.id[1]))
            for form in message.string:
                assert set(PLACEHOLDER.findall(form)) <= wanted, f"{locale}: {form!r}"
            assert set(PLACEHOLDER.findall(message.string[-1])) == wanted, f"{locale}: {message.string[-1]!r}"
            continue
        assert set(PLACEHOLDER.findall(message.id)) == set(PLACEHOLDER.findall(message.string)), (
            f"{locale}: placeholders differ in {message.id!r} → {message.string!r}"
        )


def test_english_catalog_and_template_exist():
    assert (i18n.LOCALES_DIR.parent / "messages.pot").exists()
    assert (i18n.LOCALES_DIR / "en" / "LC_MESSAGES" / "messages.po").exists()


def test_ten_languages_each_with_a_catalog_and_a_name_in_itself():
    """What the switcher lists: every supported locale has a catalog (and no catalog ships
    unsupported), named in its own language."""
    assert set(SUPPORTED_LOCALES) == {"en", "es", "fr", "de", "ar", "it", "pt_BR", "nl", "pl", "tr"}
    on_disk = {p.parent.parent.name for p in i18n.LOCALES_DIR.glob("*/LC_MESSAGES/messages.po")}
    assert on_disk == set(SUPPORTED_LOCALES)
    assert set(i18n.LANGUAGE_NAMES) == set(SUPPORTED_LOCALES)
    assert [i18n.LANGUAGE_NAMES[code] for code in ("it", "pt_BR", "nl", "pl", "tr")] == [
        "Italiano", "Português (Brasil)", "Nederlands", "Polski", "Türkçe"]


@pytest.mark.parametrize("locale", SHIPPED)
def test_plural_forms_header_is_babels_for_the_language(locale):
    """The header's Plural-Forms is the one Babel writes from CLDR (Polish 3 forms; Italian,
    Portuguese, Spanish and French 3 with the "many" form for millions; Turkish, Dutch and
    German 2; Arabic 6), so `translate` picks the right form."""
    from babel.messages.plurals import get_plural

    po = _po(locale)
    rule = get_plural(locale)
    assert (po.num_plurals, po.plural_expr) == (rule.num_plurals, rule.plural_expr)


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
    assert i18n.normalize_locale("ja") is None
    assert i18n.normalize_locale("") is None
    # Portuguese ships for Brazil: every Portuguese tag takes it
    assert [i18n.normalize_locale(v) for v in ("pt-BR", "pt_BR", "pt-br", "pt", "pt-PT", "PT")] == ["pt_BR"] * 6
    assert [i18n.normalize_locale(v) for v in ("nl-BE", "nl", "pl-PL", "tr-TR", "it-CH")] == [
        "nl", "nl", "pl", "tr", "it"]
    assert i18n.language_tag("pt_BR") == "pt-BR"
    assert i18n.language_tag("pl") == "pl"


def test_negotiate_the_new_languages_from_the_browser():
    assert i18n.negotiate_locale(None, "pt-BR,pt;q=0.9,en;q=0.5") == "pt_BR"
    assert i18n.negotiate_locale(None, "pt-PT") == "pt_BR"
    assert i18n.negotiate_locale(None, "ja, nl-BE;q=0.8") == "nl"
    assert i18n.negotiate_locale(None, "tr-TR,tr;q=0.9") == "tr"
    assert i18n.negotiate_locale(None, "pl") == "pl"
    assert i18n.negotiate_locale(None, "it-IT,it;q=0.9") == "it"
    assert i18n.negotiate_locale("pt_BR", "de") == "pt_BR"  # a stored user setting


def test_babel_locale_formats_dates_numbers_and_money_by_locale():
    """pt_BR is Babel's Brazilian locale (not Portugal's); each new language its own formats."""
    import datetime as dt
    from decimal import Decimal

    from babel.dates import format_date
    from babel.numbers import format_currency, format_decimal

    assert str(i18n.babel_locale("pt_BR")) == "pt_BR"
    assert str(i18n.babel_locale("pt-PT")) == "pt_BR"
    assert format_currency(Decimal("1234.5"), "BRL", locale=i18n.babel_locale("pt_BR")) == "R$\xa01.234,50"
    assert format_decimal(1234.5, locale=i18n.babel_locale("pl")) == "1\xa0234,5"
    assert format_decimal(1234.5, locale=i18n.babel_locale("tr")) == "1.234,5"
    assert format_decimal(1234.5, locale=i18n.babel_locale("nl")) == "1.234,5"
    assert format_currency(Decimal("12.5"), "EUR", locale=i18n.babel_locale("it")) == "12,50\xa0€"
    day = dt.date(2026, 3, 2)
    assert format_date(day, format="long", locale=i18n.babel_locale("pt_BR")) == "2 de março de 2026"
    assert format_date(day, format="long", locale=i18n.babel_locale("tr")) == "2 Mart 2026"
    assert format_date(day, format="long", locale=i18n.babel_locale("pl")) == "2 marca 2026"


def test_translate_with_params_and_fallbacks():
    assert i18n.translate("Sign in", "es") == "Iniciar sesión"
    assert i18n.translate("Password must be at least {min} characters.", "de", min=8) == \
        "Das Passwort muss mindestens 8 Zeichen lang sein."
    assert i18n.translate("{minutes} min", "fr", minutes=45) == "45 min"
    # unknown locale → default language; unknown msgid → the msgid itself, params filled
    assert i18n.translate("Sign in", "xx") == "Sign in"
    assert i18n.translate("Not a message {n}", "es", n=3) == "Not a message 3"


def test_plural_messages_take_the_languages_form_for_the_number():
    """"1 seat", "2 seats" — and Arabic's six forms (0, 1, 2, 3–10, 11–99, 100…); a number
    missing from the parameters gets the general form, an unknown language English."""
    from booking_app.services.capacity import AT_MOST_SEATS as _AT_MOST_SEATS

    left = i18n.Np_("Only {remaining} seat is left at that time.", "Only {remaining} seats are left at that time.",
                    "remaining")
    assert [i18n.translate(left, "en", remaining=n) for n in (1, 2)] == [
        "Only 1 seat is left at that time.", "Only 2 seats are left at that time."]
    assert [i18n.translate(left, "de", remaining=n) for n in (1, 3)] == [
        "Zu dieser Zeit ist nur noch 1 Platz frei.", "Zu dieser Zeit sind nur noch 3 Plätze frei."]
    assert [i18n.translate(left, "fr", remaining=n) for n in (1, 2)] == [
        "Il ne reste que 1 place à cet horaire.", "Il ne reste que 2 places à cet horaire."]
    assert [i18n.translate(_AT_MOST_SEATS, "ar", max=n) for n in (1, 2, 5, 11, 100)] == [
        "يمكن حجز مقعد واحد على الأكثر في المرة الواحدة.", "يمكن حجز مقعدين على الأكثر في المرة الواحدة.",
        "يمكن حجز 5 مقاعد على الأكثر في المرة الواحدة.", "يمكن حجز 11 مقعدًا على الأكثر في المرة الواحدة.",
        "يمكن حجز 100 مقعد على الأكثر في المرة الواحدة."]
    assert i18n.translate(_AT_MOST_SEATS, "es", max=1) == "Se puede reservar como máximo 1 plaza a la vez."
    assert i18n.translate(_AT_MOST_SEATS, "xx", max=1) == "At most 1 seat can be booked at once."
    assert i18n.translate(_AT_MOST_SEATS, "de") == "Es können höchstens {max} Plätze auf einmal gebucht werden."
    assert i18n.translate(_AT_MOST_SEATS, "en", max=True) == "At most True seats can be booked at once."


def test_plural_forms_of_the_new_languages():
    """Polish: 1 / 2–4 (not 12–14) / 5+ (0, 12, 25); Turkish, Dutch: singular for 1 only;
    Brazilian Portuguese: 0 and 1 singular (CLDR); Italian: 1 singular."""
    seats = i18n.Np_("{count} seat", "{count} seats", "count")
    assert [i18n.translate(seats, "pl", count=n) for n in (1, 2, 4, 5, 12, 22, 25, 0)] == [
        "1 miejsce", "2 miejsca", "4 miejsca", "5 miejsc", "12 miejsc", "22 miejsca", "25 miejsc", "0 miejsc"]
    results = i18n.Np_("{count} result", "{count} results", "count")
    assert [i18n.translate(results, "pt_BR", count=n) for n in (0, 1, 2)] == [
        "0 resultado", "1 resultado", "2 resultados"]
    assert [i18n.translate(results, "it", count=n) for n in (1, 2, 1_000_000)] == [
        "1 risultato", "2 risultati", "1000000 risultati"]
    assert [i18n.translate(results, "nl", count=n) for n in (1, 2)] == ["1 resultaat", "2 resultaten"]
    assert [i18n.translate(results, "tr", count=n) for n in (1, 2)] == ["1 sonuç", "2 sonuç"]
    at_most = i18n.Np_("At most {max} seat can be booked at once.", "At most {max} seats can be booked at once.",
                       "max")
    assert i18n.translate(at_most, "pl", max=3) == "Jednorazowo można zarezerwować najwyżej 3 miejsca."
    assert i18n.translate("Sign in", "tr") == "Giriş yap"
    assert i18n.translate("Password must be at least {min} characters.", "it", min=8) == \
        "La password deve contenere almeno 8 caratteri."


def test_rtl_only_for_arabic():
    assert i18n.text_direction("ar") == "rtl"
    assert all(i18n.text_direction(loc) == "ltr" for loc in SUPPORTED_LOCALES if loc != "ar")


def test_ui_catalog_covers_every_known_message():
    messages = i18n.messages_for("fr")
    assert messages["Sign in"] == "Se connecter"
    assert set(i18n.known_msgids()) <= set(messages)


def test_ui_texts_with_a_number_take_its_plural_form():
    """What the pages show: a cancellation policy of 1 hour, a search with one result, two
    places of a booking, the places left in a slot, a calendar day's "+1 more" — in the page's language (the Reflex state translates on the server)."""
    from booking_app.ui.state import fmt

    assert fmt.refund_policy(1, 0, "en") == "You can cancel up to 1 hour before the start; no refund is given."
    assert fmt.refund_policy(24, 50, "en") == "Cancel up to 24 hours before the start for a refund of 50%."
    assert fmt.refund_policy(1, 50, "de") == \
        "Stornieren Sie bis 1 Stunde vor Beginn und erhalten Sie 50 % des Preises zurück."
    assert fmt.refund_policy(2, 0, "ar") == "يمكنك الإلغاء قبل ساعتين من البدء على الأقل؛ دون استرداد."
    results = i18n.Np_("{count} result", "{count} results", "count")
    assert [i18n.translate(results, "en", count=n) for n in (0, 1, 2)] == ["0 results", "1 result", "2 results"]
    assert [i18n.translate(results, "ar", count=n) for n in (1, 2, 7)] == ["نتيجة واحدة", "نتيجتان", "7 نتائج"]
    assert [fmt.seats_left(n, "en") for n in (1, 3)] == ["1 left", "3 left"]
    assert [fmt.seats_left(n, "es") for n in (1, 3)] == ["queda 1", "quedan 3"]
    assert [fmt.seats_left(n, "fr") for n in (1, 3)] == ["1 restante", "3 restantes"]
    assert [fmt.seats_left(n, "ar") for n in (1, 2, 5, 40)] == [
        "مكان واحد متبقٍ", "مكانان متبقيان", "5 أماكن متبقية", "40 مكانًا متبقيًا"]
    assert [fmt.more_count(n, "fr") for n in (1, 2)] == ["+1 autre", "+2 autres"]
    assert [fmt.more_count(n, "en") for n in (1, 2)] == ["+1 more", "+2 more"]


def test_a_plural_message_survives_copies_and_pickles():
    """An error carrying a plural message may be copied or pickled (state stores, worker
    hand-offs): it keeps its plural, and still picks the form for the number."""
    import copy
    import pickle

    from booking_app.services.capacity import AT_MOST_SEATS as _AT_MOST_SEATS
    from booking_app.services.errors import InvalidInput

    for clone in (copy.deepcopy(_AT_MOST_SEATS), pickle.loads(pickle.dumps(_AT_MOST_SEATS))):
        assert isinstance(clone, i18n.Plural) and (clone.plural, clone.count) == (_AT_MOST_SEATS.plural, "max")
        assert i18n.translate(clone, "de", max=1) == "Es kann höchstens 1 Platz auf einmal gebucht werden."
    error = copy.deepcopy(InvalidInput(_AT_MOST_SEATS, field="quantity", max=2))
    assert error.translated("en") == "At most 2 seats can be booked at once."
