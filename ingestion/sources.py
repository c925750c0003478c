"""The pipeline's ingest step: the run's input file (by source format) and the pending API files.

:class:`~recops.core.constants.Source` names the formats a run can ingest; :func:`ingest_run_inputs` is what the ``ingest``
task and ``recops run`` call, :func:`newest_event_in_source` dates a run before it ingests.
"""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

from recops.core.applog import FEEDBACK_LOG, SERVED_LOG, closed_files
from recops.core.constants import Source
from recops.core.settings import Settings
from recops.ingestion.errors import IngestError
from recops.ingestion.events import ingest_events, ingest_feedback, newest_event_at
from recops.ingestion.movielens import ingest_movielens, newest_rating_at
from recops.ingestion.online_retail import ingest_online_retail, newest_invoice_date
from recops.ingestion.served import ingest_served
from recops.ingestion.summary import IngestSummary

INGESTED_FOLDER = "ingested"


def ingest_source(
    settings: Settings, source: Source, path: Path, catalog: Path | None = None
) -> IngestSummary:
    """Load one input of ``source`` format (a MovieLens *folder*, any other a file)."""
    if source is Source.events:
        return ingest_events(settings, path, catalog)
    if source is Source.online_retail:
        return ingest_online_retail(settings, path)
    if source is Source.movielens:
        return ingest_movielens(settings, path)
    if source is Source.feedback:
        return ingest_feedback(settings, path)
    raise IngestError(f"source {source.value!r} has no file to ingest")


def newest_event_in_source(source: Source, path: Path) -> datetime:
    """The newest event time (naive UTC) of an input, to date a run before ingesting it."""
    if source in (Source.events, Source.feedback):
        return newest_event_at(path)
    if source is Source.movielens:
        return newest_rating_at(path)
    if source is Source.online_retail:
        return newest_invoice_date(path)
    raise IngestError(f"source {source.value!r} has no file to date")


def newest_in_pending_logs(settings: Settings) -> datetime | None:
    """The newest event or served time (naive UTC) in the API's closed, not yet loaded log files,
    to date a run that will load them (``None``: nothing pending)."""
    import json

    from recops.core.timeutil import utc_naive

    newest: list[datetime] = []
    for path in closed_files(settings.feedback_dir, FEEDBACK_LOG):
        try:
            newest.append(newest_event_at(path))
        except IngestError:  # nothing parseable: the loader quarantines it
            continue
    for path in closed_files(settings.served_dir, SERVED_LOG):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                newest.append(utc_naive(json.loads(line)["served_at"]))
            except (ValueError, KeyError, TypeError):
                continue
    return max(newest) if newest else None


def _ingest_closed(folder: Path, name: str, load) -> list[IngestSummary]:
    """Ingest every closed file of an API log, then move it to ``ingested/`` (nothing is lost:
    the API never appends to a closed file)."""
    summaries: list[IngestSummary] = []
    done = folder / INGESTED_FOLDER
    for path in closed_files(folder, name):
        summaries.append(load(path))
        done.mkdir(exist_ok=True)
        shutil.move(str(path), done / path.name)
    return summaries


def ingest_pending_feedback(settings: Settings) -> list[IngestSummary]:
    """Every closed feedback and served-list file the API wrote."""
    return [
        *_ingest_closed(settings.feedback_dir, FEEDBACK_LOG, lambda p: ingest_feedback(settings, p)),
        *_ingest_closed(settings.served_dir, SERVED_LOG, lambda p: ingest_served(settings, p)),
    ]


def ingest_run_inputs(
    settings: Settings, source: Source, data_path: Path | None, catalog_path: Path | None = None
) -> dict[str, Any]:
    """The ``ingest`` task: the run's file (if any) and every pending API feedback file.
    Returns every summary and the ids of the batches that are new."""
    summaries: list[IngestSummary] = []
    if source is not Source.none and data_path is not None:
        summaries.append(ingest_source(settings, source, data_path, catalog_path))
    summaries.extend(ingest_pending_feedback(settings))
    rows = [s.model_dump() for s in summaries]
    return {
        "source": source.value,
        "summaries": rows,
        "batch_ids": [s.batch_id for s in summaries if not s.duplicate_batch],
    }


__all__ = ["Source", "ingest_pending_feedback", "ingest_run_inputs", "ingest_source", "newest_event_in_source"]
