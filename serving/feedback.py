"""What the API records for the next pipeline run: feedback events and the served lists, appended
as JSON lines (:mod:`recops.core.applog`), and the erasure of a customer's feedback lines."""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, datetime

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


def erase_feedback_files(settings: Settings, original: str) -> dict[str, int]:
    """Drop the customer's lines from the API feedback files (pending and ingested)."""
    removed = 0
    fields = user_field_keys()
    for path in (
        sorted(settings.feedback_dir.rglob("*.jsonl*")) if settings.feedback_dir.exists() else []
    ):
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        kept = [
            line
            for line in lines
            if not line.strip() or not record_mentions(line, original, fields)
        ]
        if len(kept) == len(lines):
            continue
        removed += len(lines) - len(kept)
        if any(line.strip() for line in kept):
            tmp = path.with_name(f".{path.name}.erasure")
            tmp.write_text("".join(kept), encoding="utf-8")
            os.replace(tmp, path)
        else:  # an empty feedback file would fail ingestion
            path.unlink()
    return {"feedback.lines": removed}


def erase_served_files(settings: Settings, key: str) -> dict[str, int]:
    """Drop the served lists of a pseudonymised user from the API's served-list log files
    (pending and ingested)."""
    removed = 0
    for path in sorted(settings.served_dir.rglob("*.jsonl*")) if settings.served_dir.exists() else []:
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        kept = [line for line in lines if f'"user_key":"{key}"' not in line.replace(" ", "")]
        if len(kept) == len(lines):
            continue
        removed += len(lines) - len(kept)
        if any(line.strip() for line in kept):
            tmp = path.with_name(f".{path.name}.erasure")
            tmp.write_text("".join(kept), encoding="utf-8")
            os.replace(tmp, path)
        else:  # nothing left to ingest
            path.unlink()
    return {"served.lines": removed}
