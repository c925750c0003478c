"""``fct_served_items`` is incremental: intervals run one by one, a backfill of older intervals after
newer ones, and a late batch all end in the table a full refresh at the same ``as_of`` builds.

Two warehouses get the same raw rows; one is only ever run incrementally, the other is rebuilt with
``--full-refresh`` at every step, and after every step both tables are equal row for row.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
import pytest

from recops.core.constants import RAW_BATCHES, RAW_SERVED
from recops.core.dbt import run_dbt
from recops.core.settings import Settings
from recops.core.warehouse import Warehouse

MODELS = "stg_raw__served fct_served_items"
DAY1 = datetime(2024, 3, 10)
"""The three daily intervals: DAY1, DAY1 + 1 and DAY1 + 2 (each as_of is the next midnight)."""


def _batch(batch_id: str, ingested_at: datetime, lines: list[tuple[str, datetime]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A served-log batch: one list of three items per (request id, served_at)."""
    rows = [
        {"batch_id": batch_id, "ingested_at": ingested_at, "source": "served", "source_file": f"{batch_id}.jsonl",
         "source_row": n * 3 + rank, "request_id": request, "served_at": at, "user_key": f"k-{request}",
         "model_name": "recops-ranker", "model_version": "1", "variant": "champion", "kind": "personal",
         "context_item_id": None, "k": 3, "item_id": f"i{rank + n % 4}", "served_rank": rank,
         "score": 1.0 / rank, "retrievers": "popularity"}
        for n, (request, at) in enumerate(lines)
        for rank in (1, 2, 3)
    ]
    batch = pd.DataFrame([{
        "batch_id": batch_id, "source": "served", "files": f"{batch_id}.jsonl", "rows_in": len(rows),
        "rows_loaded": len(rows), "rows_quarantined": 0, "quarantine_reasons": "{}", "status": "loaded",
        "status_reason": None, "ingested_at": ingested_at,
    }])
    return batch, pd.DataFrame(rows)


def _day(n: int, hour: int) -> datetime:
    return DAY1 + timedelta(days=n, hours=hour)


# batch s1 spans the first two days (so a first run at the end of day 1 holds part of it back)
S1 = _batch("s1", _day(2, 0), [(f"a{n:031d}", _day(n // 4, 6 + n % 4)) for n in range(8)])
S2 = _batch("s2", _day(3, 0), [(f"b{n:031d}", _day(2, 8 + n)) for n in range(4)]
            + [(f"a{0:031d}", _day(0, 6))])  # a line of s1 logged again: counts once
LATE = _batch("late", _day(4, 0), [(f"c{n:031d}", _day(0, 20 + n)) for n in range(3)])  # day 1, ingested last


def _as_of(day: int) -> str:
    return (DAY1 + timedelta(days=day + 1)).isoformat(sep=" ")


@pytest.fixture()
def homes(tmp_path) -> tuple[Settings, Settings]:
    pair = (Settings(home=tmp_path / "incremental", profile="embedded"),
            Settings(home=tmp_path / "refreshed", profile="embedded"))
    for settings in pair:
        with Warehouse(settings) as wh:
            wh.ensure_raw_schema()
    return pair


def _append(settings: Settings, batch: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    with Warehouse(settings) as wh:
        wh.append_df(RAW_BATCHES, batch[0])
        wh.append_df(RAW_SERVED, batch[1])


def _table(settings: Settings) -> pd.DataFrame:
    with Warehouse(settings, read_only=True) as wh:
        frame = wh.query_df("select * from main.fct_served_items")
    return frame.sort_values(["request_id", "served_rank"]).reset_index(drop=True)


def _step(incremental: Settings, refreshed: Settings, day: int) -> pd.DataFrame:
    run_dbt(incremental, "run", vars={"as_of": _as_of(day)}, select=MODELS)
    run_dbt(refreshed, "run", vars={"as_of": _as_of(day)}, select=MODELS, full_refresh=True)
    built, expected = _table(incremental), _table(refreshed)
    pd.testing.assert_frame_equal(built, expected)
    assert not built.duplicated(["request_id", "served_rank"]).any()
    assert (pd.to_datetime(built["served_at"]) < pd.Timestamp(_as_of(day))).all()
    return built


def test_intervals_in_any_order_and_a_late_batch_equal_a_full_refresh(homes) -> None:
    incremental, refreshed = homes
    for settings in homes:
        _append(settings, S1)
        _append(settings, S2)

    # the newest interval first (a first run), then a backfill of the two older ones
    assert len(_step(incremental, refreshed, 2)) == (8 + 4) * 3
    assert len(_step(incremental, refreshed, 0)) == 4 * 3  # rows of days 2-3 deleted again
    assert len(_step(incremental, refreshed, 1)) == 8 * 3  # s1's held-back day-2 lines come back
    for settings in homes:
        _append(settings, LATE)  # day-1 lines arriving after day 2 was built
    last = _step(incremental, refreshed, 2)
    assert len(last) == (8 + 4 + 3) * 3
    # each line from the batch that first loaded it (s2's copy of a0 is not a second impression)
    assert set(last.groupby("batch_id").size().items()) == {("s1", 24), ("s2", 12), ("late", 9)}
    # a rerun of the same interval changes nothing
    pd.testing.assert_frame_equal(_step(incremental, refreshed, 2), last)
