"""Random corruptions of valid event rows (hypothesis): each corrupted row is quarantined on its own
with the reason of its corruption, every other row is loaded, and ``rows_in == loaded +
quarantined`` always holds. Each example is a fresh warehouse and a real ``ingest_events``."""

from __future__ import annotations

import csv
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recops.core.constants import EVENT_TYPES
from recops.core.settings import Settings
from recops.core.warehouse import Warehouse
from recops.ingestion import ingest_events

HEADER = ["user_id", "item_id", "event_type", "event_at", "session_id", "quantity", "price"]
FIELD = {name: i for i, name in enumerate(HEADER)}

# corruption -> (field it breaks, the reason the loader must give, values that break it)
CORRUPTIONS = {
    "missing_item_id": ("item_id", ["", "   "]),
    "missing_event_type": ("event_type", ["", " "]),
    "unknown_event_type": ("event_type", ["wishlist", "teleport", "view-ish", "pürchase", "0"]),
    "missing_event_at": ("event_at", ["", "  "]),
    "invalid_event_at": ("event_at", ["yesterday", "not a date", "2026-13-45T99:00:00Z", "32/13/2020"]),
    "invalid_quantity": ("quantity", ["two", "1x", "NaNa"]),
    "non_positive_quantity": ("quantity", ["0", "-3"]),
    "invalid_price": ("price", ["cheap", "9,99,9", "€"]),
    "negative_price": ("price", ["-1", "-0.01"]),
    "wrong_column_count": (None, []),
}


def valid_row(n: int) -> list[str]:
    return [f"u{n % 7}", f"i{n % 11}", EVENT_TYPES[n % 3], f"2026-01-{1 + n % 28:02d}T10:{n % 60:02d}:00Z",
            f"s{n}", str(1 + n % 3), f"{1 + n % 50}.99"]


@st.composite
def batches(draw) -> tuple[list[list[str]], dict[int, str]]:
    """Rows of a CSV batch and, by data line (from 2, after the header), each corrupted row's reason."""
    n = draw(st.integers(min_value=1, max_value=40))
    rows = [valid_row(i) for i in range(n)]
    corrupted = draw(st.lists(st.integers(0, n - 1), unique=True, max_size=n))
    expected = {}
    for i in corrupted:
        reason = draw(st.sampled_from(sorted(CORRUPTIONS)))
        field, values = CORRUPTIONS[reason]
        if field is None:
            rows[i] = rows[i][: draw(st.integers(1, len(HEADER) - 1))]
        else:
            rows[i][FIELD[field]] = draw(st.sampled_from(values))
        if reason == "non_positive_quantity":  # counted only where a quantity means something
            rows[i][FIELD["event_type"]] = draw(st.sampled_from(["add_to_cart", "purchase", "return"]))
        expected[i + 2] = reason
    return rows, expected


@pytest.mark.slow
@settings(max_examples=60, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(batch=batches())
def test_each_corrupted_row_is_quarantined_with_its_reason_and_nothing_is_lost(batch) -> None:
    rows, expected = batch
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.csv"
        with path.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(HEADER)
            writer.writerows(rows)
        s = Settings(home=Path(tmp) / "home", profile="embedded")
        summary = ingest_events(s, path)
        with Warehouse(s, read_only=True) as wh:
            quarantined = wh.query_df("select source_row, reason from raw.quarantine order by source_row")
            loaded = wh.query_df("select source_row from raw.events order by source_row")
    assert summary.rows_in == len(rows) == summary.rows_loaded + summary.rows_quarantined
    assert dict(zip(quarantined["source_row"].astype(int), quarantined["reason"], strict=True)) == expected
    assert loaded["source_row"].astype(int).tolist() == [i + 2 for i in range(len(rows)) if i + 2 not in expected]
