"""The Reflex app: the API mounted through api_transformer, and the pages."""
import functools
import logging

import reflex as rx

from booking_app.api import api
from booking_app.api.loadshed import lifespan_watch, on_drain_end
from booking_app.api.prerender import PrerenderMiddleware
from booking_app.jobs.scheduler import jobs_lifespan
from booking_app.ui import previews
from booking_app.ui.routes import register_pages

log = logging.getLogger(__name__)


def _backend_exception(exception: Exception) -> None:
    """An event handler's unexpected error: logged, and no toast sent to the page (Reflex's
    default toast is JavaScript the page would have to eval, which the CSP forbids)."""
    log.error("UI event failed", exc_info=(type(exception), exception, exception.__traceback__))


app = rx.App(
    # Reflex's own app (pages, event socket) first gets the page rewriting (content in the HTML,
    # scripts after the first paint: api/prerender.py), then is mounted into the API, whose
    # security and caching middlewares see the final pages
    api_transformer=[functools.partial(PrerenderMiddleware, fillers=previews.FILLERS), api],
    stylesheets=["/styles.css"],
    # first in <head>: web storage where the browser denies it (the booking widget in a frame
    # of another website; assets/storage_fallback.js, docs/embed.md)
    head_components=[rx.el.script(src="/storage_fallback.js")],
    backend_exception_handler=_backend_exception,
)
register_pages(app)

# The mounted API's own lifespan does not run under Reflex: start the jobs (JOBS_ENABLED)
# and the readiness/drain watch from the Reflex app's lifespan instead.
app.register_lifespan_task(jobs_lifespan)
app.register_lifespan_task(lifespan_watch)


@on_drain_end
async def _hand_over_open_tabs() -> None:
    """On SIGTERM, before the server shuts down: forget this process's claims on the open
    browser tabs (Reflex's socket records in Redis). The next process a tab reconnects to then
    keeps its token and the state this one saved, instead of taking the tab for a duplicate and
    starting it afresh. Reflex does this in its own shutdown, which the server sometimes cuts
    short (a panic while stopping a worker with open WebSockets); done here, it always runs."""
    namespace = app.event_namespace
    if namespace is not None:
        await namespace._token_manager.disconnect_all()  # Reflex's own shutdown step, run earlier
