"""Batch tracking: batch ids, duplicate detection and the all-or-nothing write to the raw tables."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from recops.core.constants import (
    RAW_BATCHES,
    RAW_EVENT_COLUMNS,
    RAW_EVENTS,
    RAW_ITEM_COLUMNS,
    RAW_ITEMS,
    RAW_QUARANTINE,
    RAW_SERVED,
    RAW_SERVED_COLUMNS,
)
from recops.core.settings import Settings
from recops.core.warehouse import Warehouse, WarehouseWriteError
from recops.ingestion.errors import BatchWriteError, IngestError
from recops.ingestion.parsing import QUARANTINE_COLUMNS, TEXT
from recops.ingestion.summary import IngestSummary

META_COLUMNS = ("batch_id", "ingested_at", "source")
STRING_EVENT_COLUMNS = ("user_id", "item_id", "event_type", "session_id", "order_id", "country", "request_id")
STRING_SERVED_COLUMNS = ("request_id", "user_key", "model_name", "model_version", "variant", "kind",
                         "context_item_id", "retrievers")
STRING_ITEM_COLUMNS = ("item_id", "title", "description", "category", "brand")


@dataclass
class BatchData:
    """What a loader parsed, before it is written.

    ``events`` / ``items`` hold the raw table columns except ``batch_id``, ``ingested_at`` and
    ``source`` (added here); ``rows_in`` counts input records and ``rows_loaded`` the ones loaded.
    """

    events: pd.DataFrame
    items: pd.DataFrame
    quarantine: pd.DataFrame
    rows_in: int
    rows_loaded: int
    served: pd.DataFrame | None = None  # the API's served-list log (raw.served)


def file_sha256(path: Path) -> bytes:
    """SHA-256 digest of a file's bytes (streamed)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 22):
            digest.update(block)
    return digest.digest()


def compute_batch_id(kind: str, files: Sequence[Path]) -> str:
    """sha256 over the loader kind and the bytes of every input file, in order."""
    digest = hashlib.sha256(kind.encode())
    for path in files:
        digest.update(b"\0" + file_sha256(path))
    return digest.hexdigest()


def existing_files(files: Sequence[Path | str]) -> list[Path]:
    """Absolute paths, raising ``IngestError`` for any that is not a file."""
    out = []
    for raw in files:
        path = Path(raw).expanduser().resolve()
        if not path.is_file():
            raise IngestError(f"{path}: file not found")
        out.append(path)
    return out


def run_batch(
    settings: Settings,
    *,
    kind: str,
    source: str,
    files: Sequence[Path],
    build: Callable[[], BatchData],
    ingested_at: datetime | None = None,
) -> IngestSummary:
    """Load one batch: skip it if its id is known, else parse (``build``) and write atomically.

    The warehouse is opened only briefly before parsing (duplicate check) and for the write, so a
    long parse does not hold the DuckDB file lock.
    """
    batch_id = compute_batch_id(kind, files)
    with Warehouse(settings) as wh:
        wh.ensure_raw_schema()
        known = _stored_summary(wh, batch_id)
    if known is not None:
        return known
    data = build()
    stamp = _utc_naive(ingested_at)
    summary = _summary(batch_id, source, files, data, stamp)
    try:
        with Warehouse(settings) as wh, wh.transaction():
            known = _stored_summary(wh, batch_id)
            if known is not None:
                return known
            wh.append_df(
                RAW_EVENTS, _with_meta(data.events, RAW_EVENT_COLUMNS, batch_id, stamp, source)
            )
            wh.append_df(RAW_ITEMS, _with_meta(data.items, RAW_ITEM_COLUMNS, batch_id, stamp, source))
            if data.served is not None:
                wh.append_df(RAW_SERVED, _with_meta(data.served, RAW_SERVED_COLUMNS, batch_id, stamp, source))
            wh.append_df(RAW_QUARANTINE, _quarantine_rows(data.quarantine, batch_id, stamp))
            wh.append_df(RAW_BATCHES, _batch_row(summary, stamp))
    except WarehouseWriteError as exc:
        names = ", ".join(str(f) for f in files)
        raise BatchWriteError(
            f"{names}: batch {batch_id[:12]} ({summary.rows_loaded} rows) was not loaded, nothing of it "
            f"was kept; run the same command again once the warehouse can be written. {exc}"
        ) from exc
    return summary


def _utc_naive(stamp: datetime | None) -> datetime:
    stamp = stamp or datetime.now(UTC)
    if stamp.tzinfo is not None:
        stamp = stamp.astimezone(UTC).replace(tzinfo=None)
    return stamp


def _summary(
    batch_id: str, source: str, files: Sequence[Path], data: BatchData, stamp: datetime
) -> IngestSummary:  # noqa: D103
    reasons = data.quarantine["reason"].value_counts().sort_index()
    quarantined = len(data.quarantine)
    status = "quarantined" if data.rows_in > 0 and data.rows_loaded == 0 else "loaded"
    return IngestSummary(
        batch_id=batch_id,
        source=source,
        files=[str(f) for f in files],
        rows_in=data.rows_in,
        rows_loaded=data.rows_loaded,
        rows_quarantined=quarantined,
        quarantine_reasons={str(k): int(v) for k, v in reasons.items()},
        events_loaded=len(data.events),
        items_loaded=len(data.items),
        served_loaded=0 if data.served is None else len(data.served),
        status=status,
        ingested_at=stamp.isoformat(),
    )


def _with_meta(
    frame: pd.DataFrame, columns: Sequence[str], batch_id: str, stamp: datetime, source: str
) -> pd.DataFrame:
    """Add the batch columns and order / type the frame as the raw table expects."""
    out = pd.DataFrame(index=frame.index)
    for col in columns:
        if col == "batch_id":
            out[col] = batch_id
        elif col == "ingested_at":
            out[col] = pd.Timestamp(stamp)
        elif col == "source":
            out[col] = source
        elif col in frame.columns:
            out[col] = frame[col]
        else:
            out[col] = None
    out["source_row"] = out["source_row"].astype("int64")
    for col in ("quantity", "price_amount", "score"):
        if col in out.columns:
            out[col] = pd.to_numeric(out[col], errors="coerce").astype("float64")
    for col in ("served_rank", "k"):
        if col in out.columns:
            out[col] = pd.to_numeric(out[col], errors="coerce").astype("Int64")
    for col in ("event_at", "served_at"):
        if col in out.columns:
            out[col] = out[col].astype("datetime64[ns]")
    for col in (*STRING_EVENT_COLUMNS, *STRING_ITEM_COLUMNS, *STRING_SERVED_COLUMNS):
        if col in out.columns:
            out[col] = out[col].astype(TEXT)
    return out.reset_index(drop=True)


def _quarantine_rows(frame: pd.DataFrame, batch_id: str, stamp: datetime) -> pd.DataFrame:
    out = frame[QUARANTINE_COLUMNS].copy()
    out.insert(0, "batch_id", batch_id)
    out["source_row"] = out["source_row"].astype("int64")
    out["field"] = out["field"].astype(TEXT)
    out["quarantined_at"] = pd.Timestamp(stamp)
    return out.sort_values(["source_file", "source_row"], kind="stable").reset_index(drop=True)


def _batch_row(summary: IngestSummary, stamp: datetime) -> pd.DataFrame:
    reason = "every input row was quarantined" if summary.status == "quarantined" else None
    return pd.DataFrame(
        {
            "batch_id": [summary.batch_id],
            "source": [summary.source],
            "files": [json.dumps(summary.files)],
            "rows_in": [summary.rows_in],
            "rows_loaded": [summary.rows_loaded],
            "rows_quarantined": [summary.rows_quarantined],
            "quarantine_reasons": [json.dumps(summary.quarantine_reasons, sort_keys=True)],
            "status": [summary.status],
            "status_reason": [reason],
            "ingested_at": [pd.Timestamp(stamp)],
        }
    )


def _stored_summary(wh: Warehouse, batch_id: str) -> IngestSummary | None:
    """The summary of an already loaded batch (``duplicate_batch=True``), else None."""
    rows = wh.query_df(f"select * from {RAW_BATCHES} where batch_id = ?", [batch_id])
    if rows.empty:
        return None
    row = rows.iloc[0]
    events = wh.scalar(f"select count(*) from {RAW_EVENTS} where batch_id = ?", [batch_id])
    items = wh.scalar(f"select count(*) from {RAW_ITEMS} where batch_id = ?", [batch_id])
    served = wh.scalar(f"select count(*) from {RAW_SERVED} where batch_id = ?", [batch_id])
    return IngestSummary(
        batch_id=batch_id,
        source=str(row["source"]),
        files=list(json.loads(row["files"])),
        rows_in=int(row["rows_in"]),
        rows_loaded=int(row["rows_loaded"]),
        rows_quarantined=int(row["rows_quarantined"]),
        quarantine_reasons={k: int(v) for k, v in json.loads(row["quarantine_reasons"]).items()},
        events_loaded=int(events or 0),
        items_loaded=int(items or 0),
        served_loaded=int(served or 0),
        status=str(row["status"]),
        ingested_at=pd.Timestamp(row["ingested_at"]).isoformat(),
        duplicate_batch=True,
    )


def empty_items() -> pd.DataFrame:
    """An items frame with no rows."""
    return pd.DataFrame(columns=[c for c in RAW_ITEM_COLUMNS if c not in META_COLUMNS])
