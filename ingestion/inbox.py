"""Files shops drop into the inbox (``<inbox>/<source>/<file>``, e.g. ``events/day-42.parquet``,
``online_retail/2011-01.csv``), and the API's closed logs: what ``recops_ingest`` loads on its
schedule. A loaded file moves to ``<inbox>/done/<source>/``; one that cannot be read at all moves
to ``<inbox>/failed/<source>/`` with a ``.error`` note beside it (nothing is deleted)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from recops.core.constants import Source
from recops.core.settings import Settings
from recops.core.warehouse import Warehouse
from recops.ingestion.errors import BatchWriteError, IngestError
from recops.ingestion.sources import ingest_pending_feedback, ingest_source
from recops.ingestion.summary import IngestSummary

INBOX_SOURCES = (Source.events, Source.online_retail, Source.feedback)
DONE, FAILED = "done", "failed"


def inbox_files(settings: Settings) -> list[tuple[Source, Path]]:
    """(source, file) of every file waiting in the inbox, oldest name first."""
    found = []
    for source in INBOX_SOURCES:
        folder = settings.inbox / source.value
        if folder.is_dir():
            found += [(source, p) for p in sorted(folder.iterdir()) if p.is_file() and not p.name.startswith(".")]
    return found


def _move(path: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / path.name
    shutil.move(str(path), target)
    return target


def batch_span(settings: Settings, batch_ids: list[str]) -> tuple[str | None, str | None]:
    """The first and newest event (or served list) time of the given batches, ISO (naive UTC)."""
    if not batch_ids:
        return None, None
    marks = ", ".join("?" for _ in batch_ids)
    with Warehouse(settings, read_only=settings.profile == "embedded") as wh:
        frame = wh.query_df(
            f"select min(t) as first, max(t) as last from ("
            f"select event_at as t from raw.events where batch_id in ({marks}) "
            f"union all select served_at as t from raw.served where batch_id in ({marks}))",
            [*batch_ids, *batch_ids],
        )
    first, last = frame.iat[0, 0], frame.iat[0, 1]
    return (None if first is None else str(first)), (None if last is None else str(last))


def ingest_inbox(settings: Settings) -> dict[str, Any]:
    """Load every inbox file and the API's closed logs; returns the summaries, the new batch ids
    and their data span (``start``/``end``: what the Asset event tells recops_pipeline)."""
    summaries: list[IngestSummary] = []
    failed: list[dict[str, str]] = []
    for source, path in inbox_files(settings):
        try:
            summaries.append(ingest_source(settings, source, path))
        except BatchWriteError:
            raise  # the file is fine, the warehouse was not: it stays in the inbox for the retry
        except IngestError as exc:
            moved = _move(path, settings.inbox / FAILED / source.value)
            moved.with_name(moved.name + ".error").write_text(str(exc) + "\n")
            failed.append({"file": str(moved), "error": str(exc)})
            continue
        _move(path, settings.inbox / DONE / source.value)
    summaries += ingest_pending_feedback(settings)
    new = [s.batch_id for s in summaries if not s.duplicate_batch]
    start, end = batch_span(settings, new)
    return {"summaries": [s.model_dump() for s in summaries], "batch_ids": new, "failed": failed,
            "start": start, "end": end}
