"""The booking widget's snippet box (issue 25): the HTML to paste into another website, shown
as code with a Copy button (embed_snippet.jsx: bundled, no script sent to the page to eval)."""
from __future__ import annotations

import reflex as rx

from booking_app.ui.components import T

_SOURCE = rx.asset("embed_snippet.jsx", shared=True)


class CopyOnClick(rx.Component):
    """Copies `text` when its content is clicked (see embed_snippet.jsx)."""

    library = _SOURCE.importable_path
    tag = "CopyOnClick"

    text: rx.Var[str]


def snippet_box(title_msgid: str, code: rx.Var, testid: str) -> rx.Component:
    return rx.vstack(
        rx.hstack(rx.text(T(title_msgid), weight="medium", size="2"), rx.spacer(),
                  CopyOnClick.create(rx.button(rx.icon("copy", size=14), T("Copy"), size="1", variant="soft",
                                               type="button", custom_attrs={"data-testid": f"{testid}-copy"}),
                                     text=code),
                  width="100%", align="center"),
        rx.el.pre(rx.el.code(code), class_name="snippet", white_space="pre-wrap", word_break="break-all",
                  padding="0.75rem", border_radius="var(--radius-3)", background=rx.color("gray", 3),
                  font_size="0.8rem", width="100%", margin="0", custom_attrs={"data-testid": testid}),
        spacing="2", width="100%",
    )
