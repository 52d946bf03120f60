"""Request model of a recurrence rule (recurring series, issue 24 point 3; services/series.py).
Its own module so that the booking schemas can take it without importing the series routes."""
from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field

from booking_app.api.schemas import RequestModel


class RecurrenceIn(RequestModel):
    frequency: Literal["daily", "weekly", "monthly"]
    interval: int = Field(default=1, ge=1, le=52, strict=True, description="every N days / weeks / months")
    count: int | None = Field(default=None, ge=1, le=366, strict=True,
                              description="number of occurrences (at most SERIES_MAX_OCCURRENCES); or `until`")
    until: dt.date | None = Field(default=None, description="last date (in the bookable's zone); or `count`")
    mode: Literal["all_or_nothing", "skip_taken"] = Field(
        default="all_or_nothing", description="all_or_nothing: the whole series or nothing; skip_taken: the free dates")
    by: Literal["date", "weekday"] = Field(
        default="date", description="monthly: the same date, or the same weekday of the month (\"2nd Tuesday\")")
