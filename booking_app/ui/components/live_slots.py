"""Live slots' notes on a page with a slot list (ui/state/live_slots.py): what changed, said
politely to screen readers (a status region that takes no space and never takes the focus),
and a note where the selection was when the picked time was just taken."""
from __future__ import annotations

from typing import Any

import reflex as rx


def live_slot_notes(state: Any) -> rx.Component:
    """For BookableState or a state derived from it (the booking widget's)."""
    return rx.fragment(
        rx.el.div(state.live_note, role="status", aria_live="polite", aria_atomic="true",
                  class_name="sr-only", custom_attrs={"data-testid": "live-note"}),
        rx.cond((state.live_lost != "") & (state.selected == "") & (state.live_lost_day == state.day),
                rx.callout(state.live_lost, icon="info", color_scheme="amber", width="100%",
                           custom_attrs={"data-testid": "slot-lost"})),
    )
