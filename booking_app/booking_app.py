"""The Reflex app: the API mounted through api_transformer, and the pages."""
import reflex as rx

from booking_app.api import api
from booking_app.api.loadshed import lifespan_watch
from booking_app.jobs.scheduler import jobs_lifespan
from booking_app.ui.routes import register_pages

app = rx.App(
    api_transformer=api,
    stylesheets=["/styles.css"],
)
register_pages(app)

# The mounted API's own lifespan does not run under Reflex: start the jobs (JOBS_ENABLED)
# and the readiness/drain watch from the Reflex app's lifespan instead.
app.register_lifespan_task(jobs_lifespan)
app.register_lifespan_task(lifespan_watch)
