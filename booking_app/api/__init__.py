"""REST API package; `booking_app.api:api` is the FastAPI application."""
from booking_app.api.app import api, create_api

__all__ = ["api", "create_api"]
