import reflex as rx


def page() -> rx.Component:
    return rx.center(rx.heading("Booking"), padding="2em")
