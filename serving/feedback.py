"""What the API records for the next pipeline run: feedback events and the served lists, appended
as JSON lines (:mod:`recops.core.applog`), and the erasure of a customer's feedback lines."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from recops.core.applog import FEEDBACK_LOG, SERVED_LOG, AppendLog
from recops.core.privacy import record_mentions, user_field_keys
from recops.core.settings import Settings
from recops.serving.schemas import FeedbackEvent


def feedback_log(settings: Settings) -> AppendLog:
    """The worker's feedback log: written through at once (a 202 means it is on disk)."""
    return AppendLog(settings.feedback_dir, FEEDBACK_LOG, flush_seconds=0.0,
                     rotate_seconds=settings.api_log_rotate_seconds)


def served_log(settings: Settings) -> AppendLog:
    """The worker's served-list log: buffered for at most a second."""
    return AppendLog(settings.served_dir, SERVED_LOG, flush_seconds=1.0,
                     rotate_seconds=settings.api_log_rotate_seconds)


def record_feedback(log: AppendLog, events: Sequence[FeedbackEvent], *, now: datetime | None = None) -> int:
    """Append ``events`` (``event_at`` defaults to now, UTC) to the feedback log."""
    now = now or datetime.now(UTC)
    rows = []
    for event in events:
        row = event.model_dump()
        row["event_at"] = (event.event_at or now).astimezone(UTC).isoformat()
        rows.append(row)
    log.write_many(rows)
    return len(rows)


def _drop_lines(folder: Path, drop: Callable[[str], bool]) -> int:
    """Rewrite every log file under ``folder`` (pending and ingested) without the lines ``drop``
    selects, atomically; a file left with no line is deleted (an empty file would fail ingestion).
    Returns how many lines were dropped."""
    removed = 0
    for path in sorted(folder.rglob("*.jsonl*")) if folder.exists() else []:
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        kept = [line for line in lines if not line.strip() or not drop(line)]
        if len(kept) == len(lines):
            continue
        removed += len(lines) - len(kept)
        if any(line.strip() for line in kept):
            tmp = path.with_name(f".{path.name}.erasure")
            tmp.write_text("".join(kept), encoding="utf-8")
            os.replace(tmp, path)
        else:
            path.unlink()
    return removed


def erase_feedback_files(settings: Settings, original: str) -> dict[str, int]:
    """Drop the customer's lines from the API feedback files (pending and ingested)."""
    fields = user_field_keys()
    return {"feedback.lines": _drop_lines(settings.feedback_dir, lambda line: record_mentions(line, original, fields))}


def erase_served_files(settings: Settings, key: str) -> dict[str, int]:
    """Drop the served lists of a pseudonymised user from the API's served-list log files
    (pending and ingested)."""
    mark = f'"user_key":"{key}"'
    return {"served.lines": _drop_lines(settings.served_dir, lambda line: mark in line.replace(" ", ""))}
