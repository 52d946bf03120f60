"""Route constants and the one place where pages are registered."""
import reflex as rx

HOME = "/"


def register_pages(app: rx.App) -> None:
    from booking_app.ui.pages import home

    app.add_page(home.page, route=HOME, title="Booking")
