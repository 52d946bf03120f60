"""Provider page "Booking widget" (/provider/embed; issue 25, docs/embed.md): choose what the
widget shows (one bookable, or all of a provider's), its colour and language, copy the
snippet (the loader script, or a plain iframe), and edit the websites allowed to show it."""
from __future__ import annotations

import reflex as rx

from booking_app.i18n import N_
from booking_app.ui import paths
from booking_app.ui.components import T, error_callout, ok_callout
from booking_app.ui.components.embed_snippet import snippet_box
from booking_app.ui.components.staff import PROVIDER_TABS, guarded, staff_header
from booking_app.ui.state.embed import EmbedSettingsState


def _options() -> rx.Component:
    state = EmbedSettingsState
    return rx.flex(
        rx.vstack(
            rx.el.label(T("Show"), html_for="embed-target", class_name="field-label"),
            rx.el.select(rx.foreach(state.choices, lambda c: rx.el.option(c[1], value=c[0])), id="embed-target",
                         value=state.target, on_change=state.set_target, class_name="lang-select",
                         custom_attrs={"data-testid": "embed-target"}),
            spacing="1",
        ),
        rx.vstack(
            rx.el.label(T("Accent colour"), html_for="embed-accent", class_name="field-label"),
            rx.input(id="embed-accent", value=state.accent, on_change=state.set_accent, placeholder="#1a73e8",
                     max_length=20, width="9rem", aria_invalid=rx.cond(state.accent_error != "", "true", "false"),
                     custom_attrs={"data-testid": "embed-accent"}),
            rx.cond(state.accent_error != "", rx.text(state.accent_error, size="1", color_scheme="red", role="alert",
                                                      custom_attrs={"data-testid": "accent-error"})),
            spacing="1",
        ),
        rx.vstack(
            rx.el.label(T("Language"), html_for="embed-lang", class_name="field-label"),
            rx.el.select(rx.foreach(state.lang_options, lambda c: rx.el.option(c[1], value=c[0])), id="embed-lang",
                         value=state.lang, on_change=state.set_lang, class_name="lang-select"),
            spacing="1",
        ),
        spacing="4", wrap="wrap", width="100%",
    )


def _origins() -> rx.Component:
    state = EmbedSettingsState
    return rx.form(
        rx.vstack(
            rx.el.label(T("Websites allowed to show the widget"), html_for="embed-origins", class_name="field-label"),
            rx.text(T("One address per line, like https://shop.example.com. Other websites cannot show it."),
                    size="2", color_scheme="gray"),
            rx.text_area(id="embed-origins", name="origins", default_value=state.origins_text, rows="4",
                         width="100%", key=state.form_key.to_string(),
                         custom_attrs={"data-testid": "embed-origins"}),
            error_callout(state.origins_error),
            rx.button(T("Save"), type="submit", loading=state.saving, disabled=state.saving,
                      custom_attrs={"data-testid": "embed-origins-save"}),
            spacing="2", width="100%", align="start",
        ),
        on_submit=state.save_origins, reset_on_submit=False, width="100%",
    )


def content() -> rx.Component:
    state = EmbedSettingsState
    return rx.vstack(
        staff_header(N_("Booking widget"), PROVIDER_TABS, paths.PROVIDER_EMBED),
        guarded(state, rx.vstack(
            ok_callout(state.message),
            error_callout(state.error),
            rx.text(T("Show your services on your own website: copy this snippet into its page."), size="2"),
            _options(),
            snippet_box(N_("Snippet (follows its content's height)"), state.snippet_script, "embed-snippet"),
            snippet_box(N_("Or a plain iframe"), state.snippet_iframe, "embed-iframe"),
            rx.divider(),
            _origins(),
            spacing="4", width="100%",
        )),
        spacing="4", width="100%", max_width="64rem", margin_x="auto",
    )


def register(add) -> None:
    add(content, paths.PROVIDER_EMBED, N_("Booking widget"), EmbedSettingsState.load)
