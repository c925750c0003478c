"""The Airflow Asset and schedules that make the pipeline run by itself: ``recops_ingest`` emits
:data:`RAW_BATCHES` when it loads new batches; ``recops_pipeline`` runs on that Asset, on its
daily cron, or both (``RECOPS_PIPELINE_ON_NEW_DATA``, ``RECOPS_PIPELINE_SCHEDULE``). Imported by
the DAG files only (it imports Airflow)."""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Asset, AssetOrTimeSchedule, CronTriggerTimetable

from recops.core.settings import Settings

RAW_BATCHES = Asset(name="recops_raw_batches", uri="recops://warehouse/raw/batches")


def cron(expression: str, *, interval: timedelta | None = None) -> CronTriggerTimetable | None:
    """A cron timetable (UTC) whose runs cover ``interval`` before their time (none: a point),
    or ``None`` for an empty expression."""
    if not expression.strip():
        return None
    return CronTriggerTimetable(expression, timezone="UTC", interval=interval or timedelta(0))


def pipeline_schedule(settings: Settings | None = None):
    """recops_pipeline's schedule: new batches or the cron (AssetOrTimeSchedule), either alone,
    or nothing (triggered by hand, the REST API or ``recops run``)."""
    settings = settings or Settings()
    timetable = cron(settings.pipeline_schedule, interval=timedelta(days=1))
    if settings.pipeline_on_new_data and timetable is not None:
        return AssetOrTimeSchedule(timetable=timetable, assets=RAW_BATCHES)
    if settings.pipeline_on_new_data:
        return [RAW_BATCHES]
    return timetable


def ingest_schedule(settings: Settings | None = None) -> CronTriggerTimetable | None:
    """recops_ingest's schedule (``RECOPS_INGEST_SCHEDULE``): how often the inbox is looked at."""
    return cron((settings or Settings()).ingest_schedule)


def monitor_schedule(settings: Settings | None = None) -> CronTriggerTimetable | None:
    """recops_monitor's schedule (``RECOPS_MONITOR_SCHEDULE``), each run covering the day before."""
    return cron((settings or Settings()).monitor_schedule, interval=timedelta(days=1))
