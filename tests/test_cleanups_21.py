"""Loose ends of the redesign (issue 21) and the UX issue (22): the one admin-only check
(services/actors.require_admin), the page's BCP 47 `lang` (AppState.html_lang), the audit
and webhooks states following a language switch, and the outbox view without webhook
events."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from sqlmodel import select

from booking_app import db
from booking_app.models import Notification
from booking_app.services import outbox, outbox_admin, webhooks
from booking_app.services.actors import Actor, require_admin
from booking_app.services.errors import Forbidden, NotFound, Unauthorized
from booking_app.ui import paths


def test_require_admin_lets_admins_and_jobs_through_and_stops_everybody_else():
    require_admin(Actor(id=1, role="admin"))
    require_admin(Actor.system())
    for actor in (Actor(id=2, role="provider"), Actor(id=3, role="customer"), Actor.guest(), None):
        with pytest.raises(Forbidden) as info:
            require_admin(actor)
        assert info.value.message == Forbidden.default_message
    with pytest.raises(Forbidden) as info:
        require_admin(Actor(id=2, role="provider"), "Only administrators can see reports.")
    assert info.value.message == "Only administrators can see reports."


def test_require_admin_signed_in_asks_guests_and_jobs_to_sign_in_first():
    require_admin(Actor(id=1, role="admin"), signed_in=True)
    for actor in (Actor.guest(), Actor.system(), None):
        with pytest.raises(Unauthorized):
            require_admin(actor, signed_in=True)
    with pytest.raises(Forbidden):
        require_admin(Actor(id=3, role="customer"), signed_in=True)


@pytest.mark.parametrize(("locale", "tag"), [("pt_BR", "pt-BR"), ("en", "en"), ("ar", "ar"), ("tr", "tr")])
def test_the_page_lang_is_a_bcp47_tag(locale, tag):
    from booking_app.ui.state.base import AppState

    html_lang = AppState.computed_vars["html_lang"].fget
    assert html_lang(SimpleNamespace(locale=locale)) == tag


def test_the_shell_uses_the_bcp47_lang():
    """<html lang> (through the browser bridge) and the app root both get html_lang."""
    import inspect

    from booking_app.ui import layout

    source = inspect.getsource(layout.shell)
    assert "page_lang=AppState.html_lang" in source and "\n        lang=AppState.html_lang," in source


def test_audit_and_webhooks_rows_follow_a_language_switch():
    from booking_app.ui.state.audit import AuditState
    from booking_app.ui.state.base import RELOCALIZED
    from booking_app.ui.state.webhooks import WebhooksState

    registered = {cls: page_paths for cls, page_paths in RELOCALIZED}
    assert paths.ADMIN_AUDIT in registered[AuditState]
    assert {paths.STAFF_WEBHOOKS, paths.ADMIN_WEBHOOKS} <= set(registered[WebhooksState])


def test_the_outbox_view_leaves_webhook_events_out(sqlite_db):
    admin = Actor.system()
    with db.unit_of_work() as s:
        outbox.enqueue(s, channel="email", to="a@example.com", template="booking_confirmed", locale="en",
                       context={}, dedupe_key="mail:1")
        outbox.enqueue(s, channel=webhooks.CHANNEL, to="endpoint:7", template="booking.created", locale="",
                       context={"endpoint_id": 7, "event": {"id": "evt_1", "type": "booking.created", "data": {}}},
                       dedupe_key="webhook:7:booking.created:1")
    page = outbox_admin.list_notifications(actor=admin)
    assert page.total == 1 and [n.channel for n in page.items] == ["email"]
    with db.read_session() as s:
        event_id = s.exec(select(Notification.id).where(Notification.channel == webhooks.CHANNEL)).one()
    with pytest.raises(NotFound):
        outbox_admin.get_notification(actor=admin, notification_id=event_id)
    with pytest.raises(NotFound):
        outbox_admin.retry_notification(actor=admin, notification_id=event_id)
    assert outbox_admin.get_notification(actor=admin, notification_id=page.items[0].id).channel == "email"
