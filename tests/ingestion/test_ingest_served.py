"""The API's logs into the warehouse: served lists into ``raw.served`` (one row per item shown),
bad lines quarantined with a reason, a file loaded twice counted once, pending files dated and
moved aside once loaded."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pandas as pd

from recops.core.settings import Settings
from recops.core.warehouse import Warehouse
from recops.ingestion.served import ingest_served
from recops.ingestion.sources import (
    INGESTED_FOLDER,
    ingest_pending_feedback,
    newest_in_pending_logs,
)

AT = "2024-03-10T12:00:00+00:00"


def _response(request: str, items: list, **extra) -> dict:
    return {"request_id": request, "served_at": AT, "user_key": "k1", "model_name": "m", "model_version": "3",
            "variant": "challenger", "kind": "personal", "context_item_id": None, "k": len(items), "items": items,
            **extra}


def _item(item_id: str, rank: object) -> dict:
    return {"item_id": item_id, "rank": rank, "score": 0.5, "retrievers": ["als", "itemcf"]}


def _write(path: Path, lines: list) -> Path:
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


def _rows(settings: Settings, table: str, batch_id: str) -> pd.DataFrame:
    with Warehouse(settings, read_only=True) as wh:
        return wh.query_df(f"select * from {table} where batch_id = ? order by source_row", [batch_id])


def test_each_item_shown_is_a_row_and_bad_lines_are_quarantined_with_a_reason(tmp_path) -> None:
    settings = Settings(home=tmp_path / "home")
    log = _write(tmp_path / "served-1.jsonl", [
        _response("a" * 32, [_item("i1", 1), _item("i2", 2)]),
        "{not json",
        _response("short", [_item("i1", 1)]),
        _response("b" * 32, [_item("i3", 1), _item("", 2), _item("i4", 0)]),
        _response("c" * 32, [_item("i5", 1)], served_at="yesterday-ish"),
        {**_response("d" * 32, []), "model_version": None},
    ])

    summary = ingest_served(settings, log)

    assert (summary.rows_in, summary.rows_loaded, summary.rows_quarantined) == (9, 3, 6)
    assert summary.rows_in == summary.rows_loaded + summary.rows_quarantined
    assert summary.quarantine_reasons == {"malformed_json": 1, "missing_request_id": 1, "missing_item_id": 1,
                                          "invalid_rank": 1, "invalid_served_at": 1, "missing_model_version": 1}
    served = _rows(settings, "raw.served", summary.batch_id)
    assert served[["request_id", "item_id", "served_rank"]].values.tolist() == [
        ["a" * 32, "i1", 1], ["a" * 32, "i2", 2], ["b" * 32, "i3", 1]]
    assert set(served["retrievers"]) == {"als,itemcf"} and set(served["variant"]) == {"challenger"}
    assert pd.Timestamp(served["served_at"].iloc[0]) == pd.Timestamp("2024-03-10 12:00")
    quarantined = _rows(settings, "raw.quarantine", summary.batch_id)
    assert sorted(quarantined["source_row"]) == [2, 3, 4, 4, 5, 6]  # the file's line numbers


def test_a_file_loaded_twice_counts_once(tmp_path) -> None:
    settings = Settings(home=tmp_path / "home")
    log = _write(tmp_path / "served-1.jsonl", [_response("a" * 32, [_item("i1", 1)])])
    first = ingest_served(settings, log)
    again = ingest_served(settings, log)
    assert not first.duplicate_batch and again.duplicate_batch and again.batch_id == first.batch_id
    with Warehouse(settings, read_only=True) as wh:
        assert wh.scalar("select count(*) from raw.served") == 1


def test_pending_logs_date_the_run_and_move_aside_once_loaded(tmp_path) -> None:
    settings = Settings(home=tmp_path / "home")
    assert newest_in_pending_logs(settings) is None
    settings.served_dir.mkdir(parents=True)
    settings.feedback_dir.mkdir(parents=True)
    _write(settings.served_dir / "served-1-1-1.jsonl", [_response("a" * 32, [_item("i1", 1)])])
    _write(settings.served_dir / "served-2-1-1.jsonl.part", [{**_response("b" * 32, [_item("i1", 1)]),
                                                             "served_at": "2030-01-01T00:00:00Z"}])  # still open
    _write(settings.feedback_dir / "feedback-1-1-1.jsonl", [
        {"user_id": "u1", "item_id": "i1", "event_type": "click", "event_at": "2024-03-11T08:00:00Z",
         "request_id": "a" * 32, "rank": 1}])

    assert newest_in_pending_logs(settings) == datetime(2024, 3, 11, 8, 0)  # the open part is not read

    loaded = ingest_pending_feedback(settings)

    assert sorted(s.source for s in loaded) == ["feedback", "served"]
    assert sorted(p.name for p in (settings.served_dir / INGESTED_FOLDER).iterdir()) == ["served-1-1-1.jsonl"]
    assert sorted(p.name for p in (settings.feedback_dir / INGESTED_FOLDER).iterdir()) == ["feedback-1-1-1.jsonl"]
    assert [p.name for p in settings.served_dir.glob("*.part")] == ["served-2-1-1.jsonl.part"]
    assert newest_in_pending_logs(settings) is None
    assert ingest_pending_feedback(settings) == []
