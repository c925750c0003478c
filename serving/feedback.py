"""Feedback events from the API, appended as JSON lines for the next run's ingestion."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from recops.serving.schemas import FeedbackEvent


def record_feedback(settings, events: Sequence[FeedbackEvent], *, now: datetime | None = None) -> Path:
    """Append ``events`` to today's feedback file under ``settings.feedback_dir``; return its path."""
    now = now or datetime.now(UTC)
    settings.feedback_dir.mkdir(parents=True, exist_ok=True)
    path = settings.feedback_dir / f"feedback-{now:%Y%m%d}.jsonl"
    with path.open("a", encoding="utf-8") as fh:
        for event in events:
            row = event.model_dump()
            row["event_at"] = (event.event_at or now).astimezone(UTC).isoformat()
            fh.write(json.dumps(row) + "\n")
    return path
