"""Time in one convention: UTC. The warehouse, the marts and the models hold *naive* UTC; tools
that want aware datetimes (Feast, Airflow) get aware UTC. Dates are parsed once, at the edge."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import numpy as np
import pandas as pd

TimeLike = str | date | datetime | pd.Timestamp | np.datetime64
DAY = timedelta(days=1)


class DateParseError(ValueError):
    """A value that should be a date (YYYY-MM-DD) is not one."""


def parse_date(value: str | date | None, *, name: str = "date") -> date | None:
    """``YYYY-MM-DD`` text (or a date) as a ``date``; ``None``/empty stays ``None``."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        raise DateParseError(f"{name} must be a date (YYYY-MM-DD), got a datetime {value!r}")
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise DateParseError(f"{name} {value!r} is not a date (YYYY-MM-DD)") from None


def utc_naive(value: TimeLike) -> datetime:
    """Any time value as a naive UTC ``datetime`` (aware values are converted; naive are UTC)."""
    return to_timestamp(value).to_pydatetime()


def utc_aware(value: TimeLike) -> datetime:
    """Any time value as an aware UTC ``datetime``."""
    return utc_naive(value).replace(tzinfo=UTC)


def to_timestamp(value: TimeLike) -> pd.Timestamp:
    """``value`` as a naive UTC ``pd.Timestamp``."""
    ts = pd.Timestamp(value)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts


def naive_utc_series(series: pd.Series) -> pd.Series:
    """A datetime series (or anything ``pd.to_datetime`` reads) as naive UTC ``datetime64[ns]``."""
    if series.dtype == "datetime64[ns]":
        return series
    series = pd.to_datetime(series)
    if getattr(series.dt, "tz", None) is not None:
        series = series.dt.tz_convert("UTC").dt.tz_localize(None)
    return series.astype("datetime64[ns]")


def midnight(day: date) -> datetime:
    """00:00 UTC (aware) of ``day``."""
    return datetime.combine(day, time.min, tzinfo=UTC)


def now_utc() -> datetime:
    """The current time, aware UTC (request time, audit stamps; never a task's data interval)."""
    return datetime.now(UTC)
