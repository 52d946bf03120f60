"""The app shell: header (product name, navigation, language switcher, sign-in area),
the page content, and the footer. On a phone the navigation collapses into a menu. After a
client-side page change focus goes to the page's h1, announced in a live region
(ui/browser_bridge.jsx)."""
from __future__ import annotations

import datetime as dt
from typing import Callable

import reflex as rx

from booking_app.config import get_settings
from booking_app.i18n import N_, language_tag
from booking_app.ui import paths
from booking_app.ui.browser_bridge import browser_bridge
from booking_app.ui.components import T
from booking_app.ui.state.base import LANGUAGES, AppState

# Navigation entries: (msgid, route, who sees it: "all" | "user" | "staff")
NAV_ITEMS: list[tuple[str, str, str]] = [
    (N_("Find & book"), paths.SEARCH, "all"),
    (N_("My bookings"), paths.MY_BOOKINGS, "user"),
    (N_("Provider"), paths.PROVIDER, "provider"),
    (N_("Admin"), paths.ADMIN_DASHBOARD, "admin"),
]

# the full header (brand, up to four sections, language, account) needs ~800 px: below
# 992 px (Reflex's "md", 62em) the menu button takes over
PHONE = rx.breakpoints(initial="flex", md="none")
DESKTOP = rx.breakpoints(initial="none", md="flex")


def _visible(who: str, component: rx.Component) -> rx.Component:
    if who == "user":
        return rx.cond(AppState.signed_in, component)
    if who == "staff":
        return rx.cond(AppState.is_staff, component)
    if who in ("provider", "admin"):
        return rx.cond(AppState.role == who, component)
    return component


def nav_link(msgid: str, href: str, **props) -> rx.Component:
    return rx.link(T(msgid), href=href, class_name="nav-link", underline="none", **props)


def language_switcher(testid: str = "language-switcher") -> rx.Component:
    return rx.el.select(
        *[rx.el.option(name, value=code, lang=language_tag(code)) for code, name in LANGUAGES],  # BCP 47: pt-BR
        value=AppState.locale,
        on_change=AppState.set_language,
        aria_label=T("Language"),
        title=T("Language"),
        class_name="lang-select",
        custom_attrs={"data-testid": testid},
    )


def _auth_area() -> rx.Component:
    return rx.cond(
        AppState.signed_in,
        rx.hstack(
            rx.link(rx.hstack(rx.icon("circle_user", size=18), rx.text(AppState.display_name, class_name="user-name"),
                              spacing="1", align="center"),
                    href=paths.ACCOUNT, underline="none", custom_attrs={"data-testid": "user-menu"}),
            rx.button(T("Sign out"), on_click=AppState.sign_out, variant="soft", size="2",
                      custom_attrs={"data-testid": "sign-out"}),
            spacing="3", align="center",
        ),
        rx.hstack(
            rx.link(T("Sign in"), href=paths.SIGN_IN, class_name="nav-link", underline="none",
                    custom_attrs={"data-testid": "sign-in-link"}),
            rx.link(rx.button(T("Sign up"), size="2"), href=paths.SIGN_UP),
            spacing="3", align="center",
        ),
    )


def _phone_menu() -> rx.Component:
    links = [_visible(who, rx.link(T(msgid), href=href, class_name="menu-link", underline="none"))
             for msgid, href, who in NAV_ITEMS]
    return rx.cond(
        AppState.nav_open,
        rx.box(
            rx.vstack(
                *links,
                rx.divider(),
                rx.cond(
                    AppState.signed_in,
                    rx.vstack(
                        rx.link(T("My account"), href=paths.ACCOUNT, class_name="menu-link", underline="none"),
                        rx.button(T("Sign out"), on_click=AppState.sign_out, variant="soft", width="100%"),
                        width="100%", spacing="2",
                    ),
                    rx.vstack(
                        rx.link(T("Sign in"), href=paths.SIGN_IN, class_name="menu-link", underline="none"),
                        rx.link(rx.button(T("Sign up"), width="100%"), href=paths.SIGN_UP, width="100%"),
                        width="100%", spacing="2",
                    ),
                ),
                spacing="2", width="100%", align="stretch",
            ),
            id="phone-menu",
            class_name="phone-menu",
            display=PHONE,
            # while open, Tab stays in the menu and its button; Esc closes it and focuses the
            # button (ui/browser_bridge.jsx)
            custom_attrs={"data-focus-trap": "menu-button"},
        ),
    )


def header() -> rx.Component:
    return rx.el.header(
        rx.hstack(
            rx.link(
                rx.hstack(rx.icon("calendar_check", size=24, color=rx.color("accent", 9)),
                          rx.text(get_settings().app_name, weight="bold", size="5"),
                          spacing="2", align="center"),
                href=paths.HOME, underline="none", color="inherit", custom_attrs={"data-testid": "brand"},
            ),
            rx.el.nav(
                rx.hstack(*[_visible(who, nav_link(msgid, href)) for msgid, href, who in NAV_ITEMS],
                          spacing="5", align="center"),
                display=DESKTOP, aria_label=T("Main"),
            ),
            rx.spacer(),
            language_switcher(),
            rx.box(_auth_area(), display=DESKTOP),
            rx.icon_button(
                # two static icons, not one named by a var: that would load lucide's whole icon index
                rx.cond(AppState.nav_open, rx.icon("x"), rx.icon("menu")),
                on_click=AppState.toggle_nav,
                variant="ghost", size="3",
                display=PHONE,
                aria_label=T("Menu"),
                aria_expanded=rx.cond(AppState.nav_open, "true", "false"),
                aria_controls="phone-menu",
                id="menu-button",
                custom_attrs={"data-testid": "menu-button"},
            ),
            align="center", spacing="4", width="100%", max_width="1100px", margin_x="auto",
            padding_x="1rem", padding_y="0.75rem",
        ),
        _phone_menu(),
        class_name="site-header",
    )


def footer() -> rx.Component:
    return rx.el.footer(
        rx.flex(
            rx.text(get_settings().app_name, " © ", str(dt.date.today().year), size="2", weight="medium"),
            rx.text(T("Open-source booking for rooms, services and events."), size="2", color_scheme="gray"),
            rx.spacer(display=DESKTOP),
            rx.hstack(
                rx.link(T("Find & book"), href=paths.SEARCH, size="2"),
                rx.link(T("API"), href="/api/docs", size="2", is_external=False),
                spacing="4",
            ),
            direction=rx.breakpoints(initial="column", sm="row"),
            spacing="3", align=rx.breakpoints(initial="start", sm="center"),
            width="100%", max_width="1100px", margin_x="auto", padding="1.25rem 1rem",
        ),
        class_name="site-footer",
    )


def shell(content: rx.Component) -> rx.Component:
    """Wrap page content in the app shell; `dir`/`lang` flip with the language."""
    return rx.box(
        browser_bridge(page_lang=AppState.html_lang, page_dir=AppState.dir, page_title=AppState.page_title,
                       command=AppState.browser_command, on_timezone=AppState.set_browser_tz,
                       on_command_done=AppState.browser_command_done),
        rx.el.a(T("Skip to content"), href="#main", class_name="skip-link"),
        # after a client-side page change the bridge moves focus to the page's h1 and puts
        # its text here, so screen readers hear where they are
        rx.el.div(id="route-announcer", role="status", aria_live="polite", aria_atomic="true",
                  class_name="sr-only", custom_attrs={"data-testid": "route-announcer"}),
        header(),
        rx.el.main(
            rx.box(content, width="100%", max_width="1100px", margin_x="auto", padding_x="1rem", padding_y="1.5rem"),
            id="main",
            class_name="site-main",
        ),
        footer(),
        id="app-root",
        dir=AppState.dir,
        lang=AppState.html_lang,
        class_name="app-root",
        custom_attrs={"data-testid": "app-root", "data-ready": rx.cond(AppState.ready, "true", "false")},
    )


def embed_shell(content: rx.Component, *extra: rx.Component, style: rx.Var | dict | None = None) -> rx.Component:
    """The booking widget's shell (issue 25, ui/pages/embed.py): the page alone, without the
    site's header and footer, shown in a frame of another website; `style`: its accent colour."""
    return rx.box(
        browser_bridge(page_lang=AppState.html_lang, page_dir=AppState.dir, page_title=AppState.page_title,
                       command=AppState.browser_command, on_timezone=AppState.set_browser_tz,
                       on_command_done=AppState.browser_command_done),
        *extra,
        rx.el.main(rx.box(content, width="100%", max_width="720px", margin_x="auto", padding="1rem"), id="main"),
        id="embed-root",
        dir=AppState.dir,
        lang=AppState.html_lang,
        style=style if style is not None else {},
        custom_attrs={"data-testid": "embed-root", "data-ready": rx.cond(AppState.ready, "true", "false")},
    )


def page(content_fn: Callable[[], rx.Component]) -> Callable[[], rx.Component]:
    """Decorator-style helper: `app.add_page(layout.page(home.content), ...)`."""

    def _page() -> rx.Component:
        return shell(content_fn())

    _page.__name__ = getattr(content_fn, "__name__", "page")
    return _page
