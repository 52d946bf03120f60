"""UI events while Redis is away (REDIS_URL set).

With Redis, every browser tab's UI state lives there: while Redis is unreachable no event of
any tab can be served (a click would be dropped silently, and the live dashboard's refresh
loop would end for good). So an event that fails because Redis is away closes its tab's
event socket instead. The page then shows Reflex's "cannot connect" notice and keeps
reconnecting on its own; reconnecting is refused while Redis is still away, and once it is
back the page hydrates again — its load events run, the signed-in user comes back from the
session cookie (which never lived in Redis), the dashboard's refresh loop starts again.
Nothing else depends on Redis: the REST API keeps serving throughout.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger(__name__)


def is_redis_outage(exc: BaseException | None) -> bool:
    """Whether `exc` (or an exception it was raised from) says Redis can't be reached:
    connection refused or lost, a timeout, or a Redis still loading its data."""
    from redis.exceptions import BusyLoadingError, ConnectionError, TimeoutError

    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, (ConnectionError, TimeoutError, BusyLoadingError)):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def close_tab_socket(app: Any) -> bool:
    """Close the event socket of the tab whose event is being handled (called from the app's
    backend exception handler, inside the event's context). → whether one was closed."""
    from reflex_base.event.context import EventContext

    namespace = getattr(app, "event_namespace", None)
    try:
        token = EventContext.get().token
    except LookupError:
        return False
    sid = namespace.token_to_sid.get(token) if namespace is not None else None
    if sid is None:
        return False
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return False
    task = loop.create_task(namespace.disconnect(sid))
    task.add_done_callback(lambda t: t.cancelled() or t.exception() is None
                           or log.warning("closing a tab's socket failed: %s", t.exception()))
    log.warning("Redis unavailable: closed a tab's event socket (the page reconnects once Redis is back)")
    return True
