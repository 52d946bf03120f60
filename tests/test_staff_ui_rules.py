"""Rules behind the staff pages (issue 22), without a browser: customer search leaves out
bookables with nothing bookable (no hours, no open special day, no session); stored keys read
as words; a zero revenue figure carries its currency; the zone label names the zone."""
from __future__ import annotations

import datetime as dt

from booking_app.services import catalog
from booking_app.ui.state.admin_reports import net_total
from booking_app.ui.state.fmt import zone_abbr
from booking_app.ui.state.provider_bookings import zone_name
from booking_app.ui.state.staff import PAYMENT_METHOD_LABELS, TEMPLATE_LABELS, label
from tests.factories import actor_for, make_bookable, make_event, make_provider


def test_customer_search_only_lists_bookables_with_something_bookable(db_url):
    p = make_provider()
    a = actor_for(p)
    tag = "Zq" + str(id(p))[-5:]
    hours = make_bookable(p, name=f"{tag} hours")
    none = make_bookable(p, name=f"{tag} none", weekly=[])
    special = make_bookable(p, name=f"{tag} special", weekly=[],
                            exceptions=[{"date": "2030-01-07", "start": "09:00", "end": "12:00"}])
    closed = make_bookable(p, name=f"{tag} closed", weekly=[], exceptions=[{"date": "2030-01-08", "closed": True}])
    event, _ = make_event(p, name=f"{tag} event", sessions=[dt.datetime(2030, 1, 9, 18, tzinfo=dt.timezone.utc)])
    empty_event, _ = make_event(p, name=f"{tag} empty event")

    found, total = catalog.search_bookables(q=tag, bookable_only=True)
    assert {v.id for v in found} == {hours.id, special.id, event.id} and total == 3
    # everyone else's listing (the provider's own page, the API) is as before
    everything, total = catalog.search_bookables(q=tag)
    assert {v.id for v in everything} == {hours.id, none.id, special.id, closed.id, event.id, empty_event.id}
    mine, _ = catalog.search_bookables(actor=a, provider_id=p.id, include_inactive=True)
    assert len(mine) == 6


def test_stored_keys_read_as_words_in_the_language():
    assert label(PAYMENT_METHOD_LABELS, "on_site", "en") == "On site"
    assert label(PAYMENT_METHOD_LABELS, "on_site", "es") == "En el sitio"
    assert label(TEMPLATE_LABELS, "booking_confirmed", "de") == "Buchung bestätigt"
    assert label(TEMPLATE_LABELS, "some_new_template", "fr") == "some new template"  # never a raw key


def test_zero_revenue_carries_a_currency():
    assert net_total([], "en") == "€0.00"
    assert net_total([{"currency": "USD", "net_cents": 0}], "en") == "$0.00"
    assert net_total([{"currency": "EUR", "net_cents": 1250}, {"currency": "USD", "net_cents": 0}], "de") \
        == "12,50\xa0€"


def test_zone_label_names_the_zone_and_its_abbreviation():
    winter = dt.datetime(2026, 1, 15, 12, tzinfo=dt.timezone.utc)
    summer = dt.datetime(2026, 7, 15, 12, tzinfo=dt.timezone.utc)
    assert zone_name("Europe/Madrid", winter) == "Europe/Madrid (CET)"
    assert zone_abbr("Europe/Madrid", summer) == "CEST"
    assert zone_name("UTC", winter) == "UTC"
