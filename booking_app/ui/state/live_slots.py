"""Live slots on the bookable page (and the embedded widget, which reuses its state): a
mixin of BookableState whose background task keeps the shown days' free times fresh.

`load` ends with `self._live_start()`, which starts `live_watch` for this tab. The task
waits on this process's change feed (services/live_slots.py: one subscriber per process,
Redis pub/sub across processes) — no database polling per viewer — and, when a change
touches a shown day, takes that day's slots from the feed's per-process cache and swaps
them in (`async with self:`; a delta only when they differ). Screen readers hear what
changed through a polite live region (`live_note`); if the time the user had picked is
gone, it is unselected and the page says so (`live_lost`). The task ends when the tab
disconnects, leaves the page, loads it again (a newer run) or after LIVE_MAX_SECONDS.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import sys
import time
from typing import Any

import reflex as rx

from booking_app.i18n import translate
from booking_app.services import live_slots
from booking_app.ui.state import fmt

log = logging.getLogger(__name__)

#: how often an idle task checks that its tab is still connected (no state access)
LIVE_TICK_SECONDS = 5.0
#: how often an idle task checks (under the state lock) that its page is still open
LIVE_PAGE_CHECK_SECONDS = 30.0
#: a page left open longer than this stops updating (reloading it starts again)
LIVE_MAX_SECONDS = 4 * 3600


def tab_connected(token: str) -> bool:
    """Is the browser tab of this token still connected to this process? (True when it
    can't be told.)"""
    module = sys.modules.get("booking_app.booking_app")  # the running app (never imported from here)
    if module is None:
        return True
    try:
        namespace = module.app.event_namespace
        if namespace is None or not token:
            return True
        return token in namespace.token_to_sid
    except Exception:  # noqa: BLE001 - unknown: keep going; the other checks still end the task
        return True


class LiveSlots(rx.State, mixin=True):
    """Mixed into BookableState (which holds `svc`, `slots_by_day`, `day`, `selected`,
    `quantity`): the live updates of its slot list."""

    live_note: str = ""  # what just changed, for the polite live region
    live_lost: str = ""  # the picked time was taken: shown where the selection was
    live_lost_day: str = ""
    _live_run: int = 0

    def _live_start(self) -> Any:
        """Called at the end of the page's load: a new run (an older task of this tab ends)
        and the event starting it."""
        self._live_run += 1
        self.live_note = self.live_lost = self.live_lost_day = ""
        return type(self).live_watch

    @rx.event(background=True)
    async def live_watch(self):
        async with self:
            run = self._live_run
            token = self.router.session.client_token
            path = str(self.router.page.path)
            bookable_id = int(self.svc.get("id") or 0)  # type: ignore[attr-defined]
        if not bookable_id:
            return
        watch = await asyncio.to_thread(live_slots.open_watch, bookable_id=bookable_id,
                                        loop=asyncio.get_running_loop())
        if watch is None:
            return
        started = last_check = time.monotonic()
        try:
            while True:
                changes = await watch.wait(LIVE_TICK_SECONDS)
                now = time.monotonic()
                if now - started > LIVE_MAX_SECONDS or not tab_connected(token):
                    return
                if not changes and now - last_check < LIVE_PAGE_CHECK_SECONDS:
                    continue
                last_check = now
                async with self:
                    if (self._live_run != run or str(self.router.page.path) != path
                            or int(self.svc.get("id") or 0) != bookable_id):  # type: ignore[attr-defined]
                        return
                    shown = list(self.slots_by_day)  # type: ignore[attr-defined]
                days = live_slots.days_touched(changes, watch.timezone, shown)
                if not days:
                    continue
                fresh = await asyncio.to_thread(live_slots.free_slots, bookable_id, watch.timezone, days)
                if fresh is None:
                    continue
                async with self:
                    if self._live_run != run:
                        return
                    self._live_apply(fresh)
        finally:
            watch.close()

    def _live_apply(self, fresh: dict[str, list[Any]]) -> None:
        """Swap in the fresh slots of the days in `fresh`; tell what changed on the shown day."""
        by_day: dict[str, list[dict]] = dict(self.slots_by_day)  # type: ignore[attr-defined]
        current: str = self.day  # type: ignore[attr-defined]
        changed = False
        taken: list[str] = []
        back: list[str] = []
        for day, found in fresh.items():
            if day not in by_day:
                continue
            new = [{"start": s.start.isoformat(), "remaining": s.remaining} for s in found]
            old = by_day[day]
            if new == old:
                continue
            changed = True
            by_day[day] = new
            if day == current:
                old_starts, new_starts = [x["start"] for x in old], {x["start"] for x in new}
                taken = [s for s in old_starts if s not in new_starts]
                back = [x["start"] for x in new if x["start"] not in set(old_starts)]
        if not changed:
            return
        self.slots_by_day = by_day  # type: ignore[attr-defined]
        tz, locale = self._view_tz(), self.locale  # type: ignore[attr-defined]

        def times(starts: list[str]) -> str:
            return ", ".join(fmt.time_(dt.datetime.fromisoformat(s), tz, locale) for s in starts[:6])

        selected: str = self.selected  # type: ignore[attr-defined]
        if selected and selected in taken:
            self.selected = ""  # type: ignore[attr-defined]
            self.live_lost = translate("The time you picked, {time}, has just been taken. Please pick another time.",
                                       locale, time=times([selected]))
            self.live_lost_day = current
            self.live_note = self.live_lost
            return
        if selected:  # (an event's seats: never more than are left)
            self.quantity = max(1, min(self.quantity, self.max_quantity or 1))  # type: ignore[attr-defined]
        parts = []
        if taken:
            parts.append(translate("Just taken: {times}.", locale, times=times(taken)))
        if back:
            parts.append(translate("Free again: {times}.", locale, times=times(back)))
        if parts:
            self.live_note = " ".join(parts)
