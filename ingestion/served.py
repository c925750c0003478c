"""The API's served-list log (JSON lines, :mod:`recops.core.applog`) into ``raw.served``: one row
per item shown, with the request id, the pseudonymised user, the model version and variant, the
context item, the rank, the score and the retrievers that found it.

Each line is one response. A line that is not a JSON object, or lacks a request id, a valid
``served_at``, a model version or a list of items, is quarantined whole (one record); an item
without an id or with an invalid rank is quarantined alone. ``rows_in`` counts the items of valid
lines plus the invalid lines: each is loaded or quarantined. The batch id is the file's content
hash, so a re-ingested file is a no-op: impressions are never counted twice.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from recops.core.settings import Settings
from recops.ingestion.batch import BatchData, empty_items, existing_files, run_batch
from recops.ingestion.parsing import QUARANTINE_COLUMNS, parse_timestamp
from recops.ingestion.summary import IngestSummary

SOURCE = "served"
REQUEST_ID_HEX = 32


def ingest_served(settings: Settings, path: Path, *, ingested_at: datetime | None = None) -> IngestSummary:
    """Load one closed served-list log file into ``raw.served``."""
    files = existing_files([path])
    return run_batch(
        settings, kind=SOURCE, source=SOURCE, files=files, build=lambda: parse_served(files[0]),
        ingested_at=ingested_at,
    )


def _line_problem(record: object) -> tuple[str | None, str] | None:
    """(field, reason) of a line that cannot be loaded at all, else ``None``."""
    if not isinstance(record, dict):
        return None, "malformed_json"
    request_id = record.get("request_id")
    if not isinstance(request_id, str) or len(request_id) != REQUEST_ID_HEX:
        return "request_id", "missing_request_id"
    if not record.get("model_version"):
        return "model_version", "missing_model_version"
    if not isinstance(record.get("items"), list):
        return "items", "missing_items"
    return None


def _item_problem(item: object) -> tuple[str, str] | None:
    if not isinstance(item, dict) or not str(item.get("item_id") or "").strip():
        return "item_id", "missing_item_id"
    rank = item.get("rank")
    if not isinstance(rank, int) or isinstance(rank, bool) or rank < 1:
        return "rank", "invalid_rank"
    return None


def parse_served(path: Path) -> BatchData:
    """Rows for ``raw.served`` and the quarantine of one served-list log file."""
    rows: list[dict] = []
    rejected: list[tuple[int, str | None, str, str]] = []
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        problem = _line_problem(record)
        if problem is not None:
            rejected.append((number, *problem, line))
            continue
        for item in record["items"]:
            bad = _item_problem(item)
            if bad is not None:
                rejected.append((number, *bad, json.dumps({**record, "items": [item]})))
                continue
            rows.append({
                "source_row": number, "request_id": record["request_id"], "served_at": record.get("served_at"),
                "user_key": record.get("user_key"), "model_name": record.get("model_name"),
                "model_version": str(record["model_version"]), "variant": record.get("variant") or "champion",
                "kind": record.get("kind") or "personal", "context_item_id": record.get("context_item_id"),
                "k": record.get("k"), "item_id": str(item["item_id"]).strip(), "served_rank": item["rank"],
                "score": item.get("score"), "retrievers": ",".join(item.get("retrievers") or []),
            })
    frame = pd.DataFrame(rows, columns=[
        "source_row", "request_id", "served_at", "user_key", "model_name", "model_version", "variant", "kind",
        "context_item_id", "k", "item_id", "served_rank", "score", "retrievers",
    ])
    served_at, missing_at, invalid_at = parse_timestamp(frame["served_at"])
    bad_time = np.asarray(missing_at | invalid_at, dtype=bool)
    for row in frame.loc[bad_time].itertuples():
        rejected.append((int(row.source_row), "served_at", "invalid_served_at", lines[int(row.source_row) - 1]))
    frame = frame.assign(served_at=served_at)[~bad_time]
    frame.insert(0, "source_file", str(Path(path).resolve()))
    quarantine = pd.DataFrame(rejected, columns=["source_row", "field", "reason", "raw_record"])
    quarantine.insert(0, "source_file", str(Path(path).resolve()))
    return BatchData(
        events=pd.DataFrame(), items=empty_items(), quarantine=quarantine[QUARANTINE_COLUMNS],
        rows_in=len(frame) + len(quarantine), rows_loaded=len(frame), served=frame.reset_index(drop=True),
    )
