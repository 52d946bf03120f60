"""Reflex configuration: database and Redis come from the application's settings."""
import os
import sys

import reflex as rx
from reflex.plugins.sitemap import SitemapPlugin

from booking_app.config import get_settings
from booking_app.redis_check import require_redis

_settings = get_settings()

# REDIS_URL set: `reflex run` refuses to start, with one line saying why, when Redis doesn't
# answer (booking_app/redis_check.py) — before building anything
_reflex_run = sys.argv[1:2] == ["run"] and os.path.basename(sys.argv[0]) in ("reflex", "__main__.py")
if _settings.redis_url and _reflex_run:
    require_redis(_settings.redis_url, _settings.redis_startup_wait_seconds)

config = rx.Config(
    app_name="booking_app",
    db_url=_settings.database_url,
    redis_url=_settings.redis_url,
    show_built_with_reflex=False,
    telemetry_enabled=False,
    plugins=[rx.plugins.RadixThemesPlugin(theme=rx.theme(accent_color="indigo", radius="medium"))],
    disable_plugins=[SitemapPlugin],
    # CORS of the pages' backend and the event socket: PUBLIC_URL's origin + CORS_ALLOWED_ORIGINS
    # only (Reflex's default is "*"). Empty when PUBLIC_URL is unset: cross-origin calls are
    # refused and the socket is checked against the request's own Host (api/security.py)
    cors_allowed_origins=_settings.cors_origins,
)
