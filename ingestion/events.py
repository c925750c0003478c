"""The generic events format (also what the synthetic shop writes) and API feedback JSON lines.

Generic events file (CSV, Parquet, Excel or JSON lines), one row per event; column names are
matched case-insensitively, aliases in brackets:

- required: ``user_id`` [user, customer_id], ``item_id`` [item, product_id, sku],
  ``event_type`` [event, type], ``event_at`` [timestamp, event_time, event_timestamp, ts]
- optional: ``session_id``, ``quantity`` [qty], ``price`` [price_amount, unit_price],
  ``order_id``, ``country``

``event_at``: ISO 8601 text (an offset is converted to UTC; no offset means UTC), a timestamp
column, or epoch seconds. ``user_id`` may be blank (loaded as NULL). Row checks, first failure
wins: missing_item_id, missing_event_type, unknown_event_type, missing_event_at, invalid_event_at,
invalid_quantity, invalid_price, non_positive_quantity (add_to_cart / purchase / return with
quantity <= 0), negative_price.

Optional catalogue file: ``item_id`` required; ``title`` [name], ``description``, ``category``,
``brand``, ``price`` [price_amount] optional. Checks: missing_item_id, invalid_price,
negative_price.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from recops.core.constants import EVENT_TYPES, EVENT_USER_ALIASES, FEEDBACK_EVENT_TYPES
from recops.core.settings import Settings
from recops.ingestion.batch import BatchData, empty_items, existing_files, run_batch
from recops.ingestion.errors import IngestError
from recops.ingestion.parsing import (
    RowChecks,
    clean_text,
    concat_frames,
    normalize_id,
    parse_enum,
    parse_number,
    parse_timestamp,
    reader_rejects,
    resolve_columns,
)
from recops.ingestion.readers import Chunk, SourceTable, open_table
from recops.ingestion.summary import IngestSummary

EVENT_REQUIRED: dict[str, Sequence[str]] = {
    "user_id": EVENT_USER_ALIASES,
    "item_id": ("item_id", "item", "product_id", "sku"),
    "event_type": ("event_type", "event", "type"),
    "event_at": ("event_at", "timestamp", "event_time", "event_timestamp", "ts"),
}
EVENT_OPTIONAL: dict[str, Sequence[str]] = {
    "session_id": ("session_id", "session"),
    "quantity": ("quantity", "qty"),
    "price_amount": ("price", "price_amount", "unit_price"),
    "order_id": ("order_id", "order"),
    "country": ("country",),
    "request_id": ("request_id",),
    "rank": ("rank",),
}
ITEM_REQUIRED: dict[str, Sequence[str]] = {"item_id": EVENT_REQUIRED["item_id"]}
ITEM_OPTIONAL: dict[str, Sequence[str]] = {
    "title": ("title", "name"),
    "description": ("description",),
    "category": ("category",),
    "brand": ("brand",),
    "price_amount": ("price", "price_amount", "unit_price"),
}
QUANTITY_EVENTS = ("add_to_cart", "purchase", "return")
FEEDBACK_TYPES = FEEDBACK_EVENT_TYPES


def ingest_events(
    settings: Settings,
    events_path: Path,
    catalog_path: Path | None = None,
    *,
    source: Literal["events", "synthetic"] = "events",
    ingested_at: datetime | None = None,
) -> IngestSummary:
    """Load a generic events file (and optionally its catalogue) into raw.events / raw.items.

    ``source`` labels the rows ('synthetic' for the generated shop); the batch id does not depend
    on it, so the same files cannot be loaded twice under two labels.
    """
    files = existing_files([events_path] + ([catalog_path] if catalog_path else []))

    def build() -> BatchData:
        events = parse_event_table(open_table(files[0]), EVENT_TYPES)
        if len(files) == 1:
            return events
        items = parse_item_table(open_table(files[1]))
        return BatchData(
            events=events.events,
            items=items.items,
            quarantine=concat_frames(
                [events.quarantine, items.quarantine], events.quarantine.columns
            ),
            rows_in=events.rows_in + items.rows_in,
            rows_loaded=events.rows_loaded + items.rows_loaded,
        )

    return run_batch(
        settings, kind="events", source=source, files=files, build=build, ingested_at=ingested_at
    )


def ingest_feedback(
    settings: Settings, path: Path, *, ingested_at: datetime | None = None
) -> IngestSummary:
    """Load the API's feedback JSON lines (every type ``POST /feedback`` accepts: impression (seen
    on screen), click, add_to_cart, purchase, return; with the response's request id and rank).

    Each line is an object with ``user_id``, ``item_id``, ``event_type``, ``event_at`` and
    ``session_id`` (other keys are kept only in quarantine records). A missing key is a row-level
    problem (quarantined), not a file error; a line that is not a JSON object is ``malformed_json``.
    Write one file per period and ingest closed files: re-ingesting a file that grew is a new batch.
    """
    files = existing_files([path])

    def build() -> BatchData:
        return parse_event_table(open_table(files[0]), FEEDBACK_TYPES, lenient=True)

    return run_batch(
        settings,
        kind="feedback",
        source="feedback",
        files=files,
        build=build,
        ingested_at=ingested_at,
    )


def newest_event_at(path: Path) -> datetime:
    """The newest valid ``event_at`` of a generic events file (naive UTC), reading one column."""
    path = Path(path).resolve()
    table = open_table(path)
    column = resolve_columns(path, table.columns, {"event_at": EVENT_REQUIRED["event_at"]})[
        "event_at"
    ]
    values = _read_column(table, column)
    parsed, _, _ = parse_timestamp(values)
    newest = parsed.max()
    if pd.isna(newest):
        raise IngestError(f"{path}: no parseable {column!r} value")
    return pd.Timestamp(newest).to_pydatetime()


def _read_column(table: SourceTable, column: str) -> pd.Series:
    """Only ``column`` of the file (cheap for Parquet and CSV)."""
    suffix = table.path.suffix.lower()
    if suffix in {".parquet", ".pq"}:
        import pyarrow.parquet as pq

        return pq.read_table(table.path, columns=[column]).column(0).to_pandas()
    if suffix in {".csv", ".tsv", ".txt"}:
        import pyarrow as pa
        import pyarrow.csv as pacsv

        try:
            read = pacsv.read_csv(
                table.path,
                parse_options=pacsv.ParseOptions(
                    delimiter="\t" if suffix == ".tsv" else ",",
                    invalid_row_handler=lambda _: "skip",
                ),
                convert_options=pacsv.ConvertOptions(
                    include_columns=[column], column_types={column: pa.string()}
                ),
            )
            return read.column(0).to_pandas(types_mapper=pd.ArrowDtype)
        except (pa.ArrowInvalid, KeyError):  # e.g. a padded header name: the slow, exact path
            pass
    return pd.concat([c.frame[column] for c in table.chunks()], ignore_index=True)


# --- parsing ----------------------------------------------------------------------------------
def parse_event_table(
    table: SourceTable, allowed: Sequence[str], *, lenient: bool = False
) -> BatchData:
    """Parse every chunk of a generic events table.

    ``lenient`` (JSON lines): a column missing from the whole file is treated as blank in every row
    instead of raising ``IngestError``.
    """
    names = _resolve(table, EVENT_REQUIRED, EVENT_OPTIONAL, lenient)
    events, quarantine, rows_in = [], [], 0
    for chunk in table.chunks():
        loaded, rejected = _parse_event_chunk(chunk, names, allowed)
        events.append(loaded)
        quarantine.extend([reader_rejects(chunk), rejected])
        rows_in += len(chunk.frame) + len(chunk.rejects)
    frame = concat_frames(events, [])
    quarantined = concat_frames(quarantine, quarantine[0].columns)
    return BatchData(frame, empty_items(), quarantined, rows_in, len(frame))


def _resolve(
    table: SourceTable,
    required: dict[str, Sequence[str]],
    optional: dict[str, Sequence[str]],
    lenient: bool,
) -> dict[str, str]:
    if lenient:
        return resolve_columns(table.path, table.columns, {}, {**required, **optional})
    return resolve_columns(table.path, table.columns, required, optional)


def _column(chunk: Chunk, names: dict[str, str], logical: str) -> pd.Series:
    """The chunk's column for ``logical``, or an all-null column when the file lacks it."""
    if logical in names and names[logical] in chunk.frame.columns:
        return chunk.frame[names[logical]]
    return pd.Series(None, index=chunk.frame.index, dtype=object)


def _parse_event_chunk(
    chunk: Chunk, names: dict[str, str], allowed: Sequence[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Checked, typed event rows and the chunk's quarantine rows."""
    col = {
        logical: _column(chunk, names, logical) for logical in (*EVENT_REQUIRED, *EVENT_OPTIONAL)
    }
    checks = RowChecks(len(chunk.frame))
    item_id = normalize_id(col["item_id"])
    checks.flag(item_id.isna().to_numpy(), names.get("item_id", "item_id"), "missing_item_id")
    event_type, missing_type, unknown_type = parse_enum(col["event_type"], allowed)
    field = names.get("event_type", "event_type")
    checks.flag(missing_type, field, "missing_event_type")
    checks.flag(unknown_type, field, "unknown_event_type")
    event_at, missing_at, invalid_at = parse_timestamp(col["event_at"])
    field = names.get("event_at", "event_at")
    checks.flag(missing_at, field, "missing_event_at")
    checks.flag(invalid_at, field, "invalid_event_at")
    quantity, _, invalid_qty = parse_number(col["quantity"])
    checks.flag(invalid_qty, names.get("quantity"), "invalid_quantity")
    price, _, invalid_price = parse_number(col["price_amount"])
    checks.flag(invalid_price, names.get("price_amount"), "invalid_price")
    counted = event_type.isin(QUANTITY_EVENTS).to_numpy(dtype=bool)
    checks.flag(counted & (quantity <= 0), names.get("quantity"), "non_positive_quantity")
    checks.flag(price < 0, names.get("price_amount"), "negative_price")
    rank, _, invalid_rank = parse_number(col["rank"])
    given = ~np.isnan(rank)
    checks.flag(invalid_rank | (given & ((rank < 1) | (rank != np.floor(rank)))), names.get("rank"), "invalid_rank")
    ok = checks.ok
    frame = pd.DataFrame(
        {
            "source_file": chunk.source_file,
            "source_row": chunk.rows,
            "user_id": normalize_id(col["user_id"]),
            "item_id": item_id,
            "event_type": event_type,
            "event_at": event_at,
            "session_id": normalize_id(col["session_id"]),
            "quantity": quantity,
            "price_amount": price,
            "order_id": normalize_id(col["order_id"]),
            "country": clean_text(col["country"]),
            "request_id": normalize_id(col["request_id"]),
            "served_rank": rank,
        }
    )
    return frame.loc[ok], checks.quarantine(chunk)


def parse_item_table(table: SourceTable) -> BatchData:
    """Parse a catalogue table into ``raw.items`` rows."""
    names = resolve_columns(table.path, table.columns, ITEM_REQUIRED, ITEM_OPTIONAL)
    items, quarantine, rows_in = [], [], 0
    for chunk in table.chunks():
        col = {
            logical: _column(chunk, names, logical) for logical in (*ITEM_REQUIRED, *ITEM_OPTIONAL)
        }
        checks = RowChecks(len(chunk.frame))
        item_id = normalize_id(col["item_id"])
        checks.flag(item_id.isna().to_numpy(), names["item_id"], "missing_item_id")
        price, _, invalid_price = parse_number(col["price_amount"])
        checks.flag(invalid_price, names.get("price_amount"), "invalid_price")
        checks.flag(price < 0, names.get("price_amount"), "negative_price")
        frame = pd.DataFrame(
            {
                "source_file": chunk.source_file,
                "source_row": chunk.rows,
                "item_id": item_id,
                **{k: clean_text(col[k]) for k in ("title", "description", "category", "brand")},
                "price_amount": price,
            }
        )
        items.append(frame.loc[checks.ok])
        quarantine.extend([reader_rejects(chunk), checks.quarantine(chunk)])
        rows_in += len(chunk.frame) + len(chunk.rejects)
    frame = concat_frames(items, empty_items().columns)
    quarantined = concat_frames(quarantine, quarantine[0].columns)
    return BatchData(pd.DataFrame(), frame, quarantined, rows_in, len(frame))
