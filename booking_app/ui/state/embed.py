"""The embeddable booking widget (issue 25, point 3; docs/embed.md) and its settings page.

The widget's pages reuse the booking pages' states: `EmbedBookableState`, `EmbedBookState` and
`EmbedConfirmationState` are those states with the widget's own next pages (they keep the
widget's options, `id`/`provider`, `accent`, `lang`, in every address) and Stripe Checkout
opened in a new tab (Checkout refuses to be framed). Every rule stays in the services the
parent states call; the widget's options are read by services/embed.py.

`EmbedSettingsState`: a provider's (an admin's: any provider's) snippet and allow-list.
"""
from __future__ import annotations

import asyncio
from urllib.parse import urlencode

import reflex as rx

from booking_app.config import get_settings, origin_of
from booking_app.i18n import N_, translate
from booking_app.services import catalog, embed
from booking_app.services.errors import InvalidInput, ServiceError
from booking_app.ui import paths
from booking_app.ui.state import fmt
from booking_app.ui.state.base import LANGUAGES, AppState
from booking_app.ui.state.booking import BookableState, BookState
from booking_app.ui.state.booking_common import bookable_dict, bookable_summary
from booking_app.ui.state.manage_booking import ConfirmationState
from booking_app.ui.state.staff import StaffState

MAX_LISTED = 50
SAVED = N_("The list of websites was saved.")
ALL_SERVICES_OF = N_("All services of {provider}")
VISITORS_LANGUAGE = N_("The visitor's language")


def carried(params: dict) -> dict[str, str]:
    """The widget's options from a page address, kept on every next page: `provider`, `accent`,
    `lang` (each only when valid; services/embed.py decides)."""
    out: dict[str, str] = {}
    provider = fmt.int_param(params.get("provider"))
    if provider:
        out["provider"] = str(provider)
    for name, parse in (("accent", embed.parse_accent), ("lang", embed.parse_lang)):
        try:
            value = parse(str(params.get(name, ""))[:20])
        except InvalidInput:
            value = ""
        if value:
            out[name] = value
    return out


def widget_href(path: str, params: dict, **query) -> str:
    """`path` with `query` and the widget's options of the current address."""
    return f"{path}?{urlencode({**query, **carried(params)})}"


class EmbedState(AppState):
    """The widget's frame: its options (accent colour, language) and, for a provider's widget,
    the list of their bookables."""

    accent: str = ""
    provider_id: int = 0
    items: list[dict[str, str]] = []
    not_found: str = ""

    @rx.event
    def load(self):
        """Every widget page: the options from the address (invalid ones are ignored: the
        widget shows the site's colour and the visitor's language)."""
        params = self.router.url.query_parameters
        options = carried(params)
        self.accent = options.get("accent", "")
        self.provider_id = int(options.get("provider", 0))
        if options.get("lang") and options["lang"] != self.locale:
            self.locale = options["lang"]

    @rx.event
    def load_start(self):
        """/embed: one bookable → its times; a provider → their bookables to pick from."""
        params = self.router.url.query_parameters
        self.items, self.not_found = [], ""
        bookable_id = fmt.int_param(params.get("id"))
        if bookable_id:
            return rx.redirect(widget_href(paths.EMBED_SERVICE, params, id=bookable_id), replace=True)
        if not self.provider_id:
            self.not_found = translate("This service does not exist.", self.locale)
            return None
        try:
            found, _ = catalog.search_bookables(actor=self._actor(), provider_id=self.provider_id,
                                                bookable_only=True, limit=MAX_LISTED)
        except ServiceError as exc:
            self.not_found = self._error_text(exc)
            return None
        if not found:
            self.not_found = translate("This service does not exist.", self.locale)
        self.items = [{**bookable_summary(bookable_dict(v), self.locale), "id": str(v.id),
                       "href": widget_href(paths.EMBED_SERVICE, params, id=v.id)} for v in found]
        return None

    @rx.var
    def all_href(self) -> str:
        """Back to the provider's list (a provider's widget only)."""
        if not self.provider_id:
            return ""
        return widget_href(paths.EMBED, self.router.url.query_parameters)

    @rx.var
    def accent_style(self) -> dict[str, str]:
        """The accent colour as the theme's accent variables (empty: the site's colour)."""
        if not self.accent:
            return {}
        mixed = f"color-mix(in srgb, {self.accent} 18%, transparent)"
        return {"--accent-9": self.accent, "--accent-10": self.accent, "--accent-11": self.accent,
                "--accent-a11": self.accent, "--accent-a8": self.accent, "--accent-a7": self.accent,
                "--accent-a3": mixed, "--accent-a4": mixed, "--focus-8": self.accent}


class EmbedBookableState(BookableState):
    """The bookable page's state; "Continue" goes to the widget's review page. A provider's
    widget shows only that provider's bookables."""

    def _review_url(self, query: str) -> str:
        return f"{paths.EMBED_BOOK}?{query}&{urlencode(carried(self.router.url.query_parameters))}".rstrip("&")

    # a substate inherits its parent's handlers bound to the parent (they would call the
    # parent's hooks): the ones that navigate run here, on this state, the same code
    @rx.event
    async def continue_booking(self):
        async for update in BookableState.continue_booking.fn(self):
            yield update

    @rx.event
    def check_scope(self):
        provider = fmt.int_param(self.router.url.query_parameters.get("provider"))
        if provider and self.svc and int(self.svc.get("provider_id", provider)) != provider:
            self.svc = {}
            self.not_found = translate("This service does not exist.", self.locale)


class EmbedBookState(BookState):
    """Review and confirm in the widget: the booking's page is the widget's; Stripe Checkout
    opens in a new tab while the widget shows the booking (which says when it is paid)."""

    def _booking_page(self, booking_id: int, token: str | None) -> str:
        query = {"id": booking_id, **({"token": token} if token else {}), "service": self.svc.get("id", "")}
        return widget_href(paths.EMBED_BOOKING, self.router.url.query_parameters, **query)

    def _to_checkout(self, checkout_url: str, booking_page: str):
        return [rx.redirect(checkout_url, is_external=True), rx.redirect(booking_page)]

    @rx.event
    async def confirm(self, form: dict):
        async for update in BookState.confirm.fn(self, form):
            yield update

    @rx.var
    def widget_back_url(self) -> str:
        if not self.svc:
            return paths.EMBED
        return widget_href(paths.EMBED_SERVICE, self.router.url.query_parameters, id=self.svc["id"])

    @rx.var
    def site_review_url(self) -> str:
        """This review on the site itself (a new tab): where a visitor signs in or up. In a
        frame of another site the session cookie (SameSite=Lax) is not sent (docs/embed.md)."""
        return f"{paths.BOOK}?{self.router.url.query}"


class EmbedConfirmationState(ConfirmationState):
    """The booking's page in the widget: paying opens Stripe Checkout in a new tab; "Refresh"
    shows the payment's outcome once the customer is back."""

    def _to_checkout(self, checkout_url: str):
        return rx.redirect(checkout_url, is_external=True)

    @rx.event
    async def pay(self, method: str):
        async for update in ConfirmationState.pay.fn(self, method):
            yield update

    @rx.event
    def refresh(self):
        return EmbedConfirmationState.load

    @rx.var
    def site_booking_url(self) -> str:
        b = self.booking
        if not b:
            return paths.CONFIRMATION
        query = {"id": b["id"], **({"token": b["token"]} if b.get("token") else {})}
        return f"{paths.CONFIRMATION}?{urlencode(query)}"


class EmbedSettingsState(StaffState):
    """/provider/embed: pick what the widget shows (one bookable, or all of a provider's),
    its colour and language, copy the snippet; edit the provider's allowed websites."""

    choices: list[list[str]] = []  # [value "s:<id>" | "p:<provider id>", label, provider id]
    target: str = ""
    accent: str = ""
    lang: str = ""
    accent_error: str = ""
    origins_text: str = ""
    origins_error: str = ""
    error: str = ""
    message: str = ""
    saving: bool = False
    form_key: int = 0
    _base: str = ""

    @rx.event
    def load(self):
        self.error = self.message = self.origins_error = self.accent_error = ""
        actor, redirect = self._staff_actor(self.router.page.path or paths.PROVIDER_EMBED)
        if redirect:
            return redirect
        if actor is None:
            return None
        host = origin_of(str(self.router.page.host or ""))
        settings = get_settings()
        self._base = settings.public_url if settings.public_url_is_set or host is None else host
        self._fetch(actor)
        return None

    def _fetch(self, actor) -> None:
        try:
            found, _ = catalog.search_bookables(actor=actor, provider_id=None if actor.is_admin else actor.id,
                                                limit=catalog.MAX_PAGE)
        except ServiceError as exc:
            self.error = self._error_text(exc)
            return
        providers: dict[int, str] = {}
        if not actor.is_admin:
            providers[int(actor.id)] = ""
        for v in found:
            providers.setdefault(v.provider_id, v.provider_name)
        choices = [[f"p:{pid}", translate(ALL_SERVICES_OF, self.locale, provider=name or "—"), str(pid)]
                   for pid, name in providers.items()]
        choices += [[f"s:{v.id}", v.name, str(v.provider_id)] for v in found]
        self.choices = choices
        if self.target not in {c[0] for c in choices}:
            self.target = choices[0][0] if choices else ""
        self._load_origins(actor)

    def _provider_of_target(self) -> int | None:
        for value, _label, provider in self.choices:
            if value == self.target:
                return int(provider)
        return None

    def _load_origins(self, actor) -> None:
        provider = self._provider_of_target()
        self.origins_error = ""
        if provider is None:
            self.origins_text = ""
            return
        try:
            self.origins_text = "\n".join(embed.origins_of(actor=actor, provider_id=provider))
        except ServiceError as exc:
            self.origins_text = ""
            self.origins_error = self._error_text(exc)
        self.form_key += 1

    @rx.event
    def set_target(self, value: str):
        if value in {c[0] for c in self.choices}:
            self.target = value
            self.message = ""
            actor = self._actor()
            if not actor.is_guest:
                self._load_origins(actor)

    @rx.event
    def set_accent(self, value: str):
        self.accent = str(value)[:20]
        try:
            embed.parse_accent(self.accent.strip())
            self.accent_error = ""
        except InvalidInput as exc:
            self.accent_error = self._error_text(exc)

    @rx.event
    def set_lang(self, value: str):
        self.lang = str(value)[:10]

    def _options(self) -> dict:
        kind, _, ident = self.target.partition(":")
        accent = "" if self.accent_error else self.accent.strip()
        return {("service_id" if kind == "s" else "provider_id"): ident, "accent": accent, "lang": self.lang}

    def _snippet(self, kind: str) -> str:
        if not self.target:
            return ""
        try:
            return embed.snippet(kind=kind, base=self._base or None, **self._options())
        except InvalidInput:
            return ""

    @rx.var
    def snippet_script(self) -> str:
        return self._snippet("script")

    @rx.var
    def snippet_iframe(self) -> str:
        return self._snippet("iframe")

    @rx.var
    def lang_options(self) -> list[list[str]]:
        return [["", translate(VISITORS_LANGUAGE, self.locale)]] + [[code, name] for code, name in LANGUAGES]

    @rx.event
    async def save_origins(self, form: dict):
        if self.saving:
            return
        actor, redirect = self._staff_actor(paths.PROVIDER_EMBED)
        if redirect:
            yield redirect
            return
        if actor is None:
            return
        lines = [line for line in str(form.get("origins", ""))[:20_000].splitlines() if line.strip()]
        self.saving = True
        self.message = self.origins_error = ""
        yield
        try:
            stored = await asyncio.to_thread(embed.set_origins, actor=actor, origins=lines,
                                             provider_id=self._provider_of_target())
        except ServiceError as exc:
            self.origins_error = self._error_text(exc)
            self.saving = False
            return
        self.origins_text = "\n".join(stored)
        self.form_key += 1
        self.message = translate(SAVED, self.locale)
        self.saving = False

