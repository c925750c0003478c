"""Write a synthetic shop to files: ``catalog.<fmt>``, ``events.<fmt>`` and a ``shop.json`` manifest."""

from __future__ import annotations

import json
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Literal

import pandas as pd

from recops.ingestion.synthetic import generate_shop

MANIFEST = "shop.json"  # write_shop's arguments and counts, beside the files


def write_shop(
    out_dir: Path,
    users: int,
    items: int,
    days: int,
    seed: int,
    fmt: Literal["parquet", "csv"] = "parquet",
    start: date = date(2026, 1, 1),
) -> dict[str, object]:
    """Generate the shop and write ``catalog.<fmt>`` and ``events.<fmt>`` into ``out_dir``.

    Returns a JSON-able manifest: paths, arguments, row counts per event type, time span, seconds.
    """
    if fmt not in ("parquet", "csv"):
        raise ValueError(f"fmt must be 'parquet' or 'csv', not {fmt!r}")
    began = time.perf_counter()
    catalog, events = generate_shop(users, items, days, seed, start)
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    catalog_path, events_path = out_dir / f"catalog.{fmt}", out_dir / f"events.{fmt}"
    if fmt == "parquet":
        catalog.to_parquet(catalog_path, index=False)
        events.to_parquet(events_path, index=False)
    else:
        catalog.to_csv(catalog_path, index=False)
        _write_events_csv(events, events_path)
    manifest = {
        "catalog": str(catalog_path),
        "events": str(events_path),
        "format": fmt,
        "users": users,
        "items": items,
        "days": days,
        "seed": seed,
        "start": start.isoformat(),
        "end": (start + timedelta(days=days)).isoformat(),
        "catalog_rows": len(catalog),
        "event_rows": len(events),
        "event_types": {str(k): int(v) for k, v in events["event_type"].value_counts().items()},
        "newest_event_at": events["event_at"].max().isoformat() if len(events) else None,
        "seconds": round(time.perf_counter() - began, 3),
    }
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return manifest


def _write_events_csv(events: pd.DataFrame, path: Path) -> None:
    """Write events as CSV with ISO-8601 UTC timestamps (pyarrow's writer: fast for 10M rows)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    table = pa.Table.from_pandas(events, preserve_index=False)
    stamps = pc.strftime(table.column("event_at"), format="%Y-%m-%dT%H:%M:%SZ")
    table = table.set_column(table.schema.get_field_index("event_at"), "event_at", stamps)
    pacsv.write_csv(table, path)
