"""UCI Online Retail (original and II layouts) from CSV, Excel or Parquet.

Layouts (column names matched case-, space- and underscore-insensitively):

- original: InvoiceNo, StockCode, Description, Quantity, InvoiceDate, UnitPrice, CustomerID,
  Country
- II: Invoice, StockCode, Description, Quantity, InvoiceDate, Price, Customer ID, Country

Description and Country are optional; the other six are required (``IngestError`` otherwise).

Mapping of one invoice line to ``raw.events`` (one input line -> at most one event):

- ``user_id`` = customer id as text (``12345.0`` -> ``"12345"``); blank -> NULL. Such lines are
  loaded: dbt uses them for item popularity only.
- ``item_id`` = StockCode (stripped, case kept); ``order_id`` = ``session_id`` = the invoice number.
- ``event_type``: an invoice starting with ``C`` (a cancellation) -> ``return`` whatever its
  quantity and price; ``quantity`` holds the number of units returned, i.e. ``abs(Quantity)``
  (the event type carries the direction, so every loaded quantity is positive). Any other invoice
  -> ``purchase`` when Quantity > 0 and price > 0.
- ``event_at`` = InvoiceDate: ISO text, a timestamp cell, ``m/d/Y H:M[:S]`` or ``d-m-Y H:M[:S]``;
  the shop's local times are stored as they are (taken as UTC).
- Non-product stock codes (POST, DOT, M, C2, BANK CHARGES, AMAZONFEE, gift_*, TEST*, ...; the
  rule is "does not start with five digits") are loaded into ``raw.events`` like any other line
  (raw keeps everything parseable; staging filters them) but never enter the catalogue.

Quarantine reasons, first failure wins: missing_item_id, missing_invoice, missing_event_at,
invalid_event_at, invalid_quantity (blank or non-numeric), invalid_price (blank or non-numeric),
then for non-return lines non_positive_quantity and non_positive_price (free lines, stock
adjustments, "A" bad-debt invoices). Plus wrong_column_count for broken CSV lines.

``raw.items`` (derived, one row per distinct product stock code among loaded lines): ``title`` =
its most frequent description (ties: alphabetical), ``description``/``category``/``brand`` NULL,
``price_amount`` = median price of its purchase lines (of all its loaded lines if none), and
``source_file``/``source_row`` of its first loaded line.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from recops.core.constants import RETAIL_CUSTOMER_ALIASES
from recops.core.settings import Settings
from recops.ingestion.batch import BatchData, empty_items, existing_files, run_batch
from recops.ingestion.errors import IngestError
from recops.ingestion.parsing import (
    RowChecks,
    clean_text,
    concat_frames,
    normalize_id,
    parse_number,
    parse_timestamp,
    reader_rejects,
    resolve_columns,
)
from recops.ingestion.readers import Chunk, open_table
from recops.ingestion.summary import IngestSummary

REQUIRED: dict[str, Sequence[str]] = {
    "invoice": ("Invoice", "InvoiceNo"),
    "stock_code": ("StockCode",),
    "quantity": ("Quantity",),
    "invoice_date": ("InvoiceDate",),
    "price": ("Price", "UnitPrice"),
    "customer": RETAIL_CUSTOMER_ALIASES,
}
OPTIONAL: dict[str, Sequence[str]] = {"description": ("Description",), "country": ("Country",)}
DATE_FORMATS = ("%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S", "%d-%m-%Y %H:%M", "%d-%m-%Y %H:%M:%S")
PRODUCT_CODE = r"\d{5}"
SOURCE = "online_retail"


def ingest_online_retail(
    settings: Settings, path: Path, *, ingested_at: datetime | None = None
) -> IngestSummary:
    """Load one Online Retail file (.csv, .xlsx or .parquet) into raw.events and raw.items."""
    files = existing_files([path])
    return run_batch(
        settings,
        kind=SOURCE,
        source=SOURCE,
        files=files,
        build=lambda: parse_online_retail(files[0]),
        ingested_at=ingested_at,
    )


def parse_online_retail(path: Path) -> BatchData:
    """Parse the file into event rows, derived catalogue rows and quarantine rows."""
    table = open_table(path)
    names = resolve_columns(table.path, table.columns, REQUIRED, OPTIONAL)
    events, lines, quarantine, rows_in = [], [], [], 0
    for chunk in table.chunks():
        loaded, line_text, rejected = parse_chunk(chunk, names)
        events.append(loaded)
        lines.append(line_text)
        quarantine.extend([reader_rejects(chunk), rejected])
        rows_in += len(chunk.frame) + len(chunk.rejects)
    frame = concat_frames(events, [])
    items = derive_items(concat_frames(lines, []))
    return BatchData(
        frame, items, concat_frames(quarantine, quarantine[0].columns), rows_in, len(frame)
    )


def _column(chunk: Chunk, names: dict[str, str], logical: str) -> pd.Series:
    if logical in names:
        return chunk.frame[names[logical]]
    return pd.Series(None, index=chunk.frame.index, dtype=object)


def parse_chunk(
    chunk: Chunk, names: dict[str, str]
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Loaded event rows, their catalogue inputs (description, price) and quarantine rows."""
    col = {logical: _column(chunk, names, logical) for logical in (*REQUIRED, *OPTIONAL)}
    checks = RowChecks(len(chunk.frame))
    item_id = normalize_id(col["stock_code"])
    checks.flag(item_id.isna().to_numpy(), names["stock_code"], "missing_item_id")
    invoice = normalize_id(col["invoice"])
    checks.flag(invoice.isna().to_numpy(), names["invoice"], "missing_invoice")
    event_at, missing_at, invalid_at = parse_timestamp(col["invoice_date"], DATE_FORMATS)
    checks.flag(missing_at, names["invoice_date"], "missing_event_at")
    checks.flag(invalid_at, names["invoice_date"], "invalid_event_at")
    quantity, missing_qty, invalid_qty = parse_number(col["quantity"])
    checks.flag(missing_qty | invalid_qty, names["quantity"], "invalid_quantity")
    price, missing_price, invalid_price = parse_number(col["price"])
    checks.flag(missing_price | invalid_price, names["price"], "invalid_price")
    is_return = invoice.str.upper().str.startswith("C").fillna(False).to_numpy(dtype=bool)
    checks.flag(~is_return & (quantity <= 0), names["quantity"], "non_positive_quantity")
    checks.flag(~is_return & (price <= 0), names["price"], "non_positive_price")
    ok = checks.ok
    frame = pd.DataFrame(
        {
            "source_file": chunk.source_file,
            "source_row": chunk.rows,
            "user_id": normalize_id(col["customer"]),
            "item_id": item_id,
            "event_type": np.where(is_return, "return", "purchase").astype(object),
            "event_at": event_at,
            "session_id": invoice,
            "quantity": np.where(is_return, np.abs(quantity), quantity),
            "price_amount": price,
            "order_id": invoice,
            "country": clean_text(col["country"]),
        }
    ).loc[ok]
    lines = frame[["source_file", "source_row", "item_id", "event_type", "price_amount"]].copy()
    lines["title"] = clean_text(col["description"]).loc[ok]
    return frame, lines, checks.quarantine(chunk)


def derive_items(lines: pd.DataFrame) -> pd.DataFrame:
    """One catalogue row per product stock code of the loaded lines (see the module docstring)."""
    if lines.empty:
        return empty_items()
    prod = lines.loc[lines["item_id"].str.match(PRODUCT_CODE)]
    first = prod.drop_duplicates("item_id")[["item_id", "source_file", "source_row"]]
    titles = (
        prod.dropna(subset=["title"])
        .groupby(["item_id", "title"], sort=False)
        .size()
        .rename("n")
        .reset_index()
        .sort_values(["item_id", "n", "title"], ascending=[True, False, True])
        .drop_duplicates("item_id")
        .set_index("item_id")["title"]
    )
    bought = prod.loc[prod["event_type"] == "purchase"].groupby("item_id")["price_amount"].median()
    any_line = prod.groupby("item_id")["price_amount"].median()
    items = first.set_index("item_id")
    items["title"] = titles
    items["price_amount"] = bought.reindex(items.index).fillna(any_line)
    items = items.reset_index()
    for col in ("description", "category", "brand"):
        items[col] = None
    items["title"] = items["title"].astype(object).where(items["title"].notna(), None)
    return items


def newest_invoice_date(path: Path) -> datetime:
    """The newest ``InvoiceDate`` of an Online Retail file (either layout), reading one column."""
    path = Path(path)
    wanted = lambda c: str(c).strip().lower() == "invoicedate"  # noqa: E731
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        names = [c for c in pq.read_schema(path).names if wanted(c)]
        if not names:
            raise IngestError(f"{path}: no InvoiceDate column")
        dates = pd.read_parquet(path, columns=names).iloc[:, 0]
    elif suffix == ".csv":
        dates = pd.read_csv(path, usecols=wanted, dtype=str).iloc[:, 0]
    else:
        dates = pd.read_excel(path, usecols=wanted).iloc[:, 0]
    newest = pd.to_datetime(dates, errors="coerce").max()
    if pd.isna(newest):
        raise IngestError(f"{path}: no parseable InvoiceDate")
    return newest.to_pydatetime()
