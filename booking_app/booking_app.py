"""The Reflex app: the API mounted through api_transformer, and the pages."""
import reflex as rx

from booking_app.api import api
from booking_app.ui.routes import register_pages

app = rx.App(
    api_transformer=api,
)
register_pages(app)
