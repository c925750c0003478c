"""Generic events (synthetic shop files), their catalogue, feedback JSON lines, newest_event_at."""

from __future__ import annotations

import json
from datetime import datetime

import pandas as pd
import pytest

from recops.ingestion import (
    IngestError,
    ingest_events,
    ingest_feedback,
    newest_event_at,
    write_shop,
)

SHOP = {"users": 60, "items": 40, "days": 20, "seed": 11}


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_synthetic_shop_round_trip(tmp_path, settings, query, fmt):
    manifest = write_shop(tmp_path / "shop", fmt=fmt, **SHOP)
    events = pd.read_parquet(manifest["events"]) if fmt == "parquet" else None
    summary = ingest_events(settings, manifest["events"], manifest["catalog"], source="synthetic")

    n_events, n_items = manifest["event_rows"], manifest["catalog_rows"]
    assert summary.rows_quarantined == 0 and summary.quarantine_reasons == {}
    assert summary.rows_in == summary.rows_loaded == n_events + n_items
    assert (summary.events_loaded, summary.items_loaded) == (n_events, n_items)
    assert summary.source == "synthetic"

    got = query("select * from raw.events order by source_row")
    assert got["source"].eq("synthetic").all()
    assert got["source_row"].tolist() == list(
        range(2 if fmt == "csv" else 1, n_events + (2 if fmt == "csv" else 1))
    )
    expected = pd.read_csv(manifest["events"]) if fmt == "csv" else events
    assert got["user_id"].tolist() == expected["user_id"].astype(str).tolist()
    assert got["item_id"].tolist() == expected["item_id"].tolist()
    assert got["event_type"].tolist() == expected["event_type"].tolist()
    assert got["session_id"].tolist() == expected["session_id"].tolist()
    assert got["quantity"].tolist() == expected["quantity"].astype(float).tolist()
    assert got["price_amount"].tolist() == pytest.approx(expected["price"].tolist())
    stamps = pd.to_datetime(expected["event_at"], utc=True).dt.tz_localize(None)
    assert (got["event_at"].to_numpy() == stamps.to_numpy()).all()

    items = query("select * from raw.items order by source_row")
    catalog = (
        pd.read_csv(manifest["catalog"]) if fmt == "csv" else pd.read_parquet(manifest["catalog"])
    )
    assert (
        items[["item_id", "title", "description", "category", "brand"]].values.tolist()
        == catalog[["item_id", "title", "description", "category", "brand"]].values.tolist()
    )
    assert items["price_amount"].tolist() == pytest.approx(catalog["price"].tolist())

    assert newest_event_at(manifest["events"]) == stamps.max().to_pydatetime()
    assert ingest_events(settings, manifest["events"], manifest["catalog"]).duplicate_batch


def test_every_generic_quarantine_reason(tmp_path, settings, query):
    rows = [
        "user_id,item_id,event_type,event_at,session_id,quantity,price",
        "u1,i1,view,2026-01-01T10:00:00Z,s1,1,9.99",  # 2 ok
        "u1,,view,2026-01-01T10:00:00Z,s1,1,9.99",  # 3
        "u1,i1,,2026-01-01T10:00:00Z,s1,1,9.99",  # 4
        "u1,i1,wishlist,2026-01-01T10:00:00Z,s1,1,9.99",  # 5
        "u1,i1,view,,s1,1,9.99",  # 6
        "u1,i1,view,yesterday,s1,1,9.99",  # 7
        "u1,i1,purchase,2026-01-01T10:00:00Z,s1,two,9.99",  # 8
        "u1,i1,purchase,2026-01-01T10:00:00Z,s1,1,cheap",  # 9
        "u1,i1,purchase,2026-01-01T10:00:00Z,s1,0,9.99",  # 10
        "u1,i1,purchase,2026-01-01T10:00:00Z,s1,1,-1",  # 11
        "u1,i1,view,2026-01-01T10:00:00Z",  # 12
        ",i2, PURCHASE ,2026-01-01T12:00:00+02:00,,,",  # 13 ok: no user, offset, blanks
    ]
    path = tmp_path / "events.csv"
    path.write_text("\n".join(rows) + "\n")
    summary = ingest_events(settings, path)

    q = query(
        "select source_row, field, reason, raw_record from raw.quarantine order by source_row"
    )
    assert [
        (r.source_row, r.field if isinstance(r.field, str) else None, r.reason)
        for r in q.itertuples()
    ] == [
        (3, "item_id", "missing_item_id"),
        (4, "event_type", "missing_event_type"),
        (5, "event_type", "unknown_event_type"),
        (6, "event_at", "missing_event_at"),
        (7, "event_at", "invalid_event_at"),
        (8, "quantity", "invalid_quantity"),
        (9, "price", "invalid_price"),
        (10, "quantity", "non_positive_quantity"),
        (11, "price", "negative_price"),
        (12, None, "wrong_column_count"),
    ]
    assert json.loads(q["raw_record"].iloc[4]) == {
        "user_id": "u1",
        "item_id": "i1",
        "event_type": "view",
        "event_at": "yesterday",
        "session_id": "s1",
        "quantity": "1",
        "price": "9.99",
    }
    assert summary.rows_in == 12 and summary.rows_loaded == 2 and summary.rows_quarantined == 10

    ok = query("select * from raw.events order by source_row")
    assert ok["source_row"].tolist() == [2, 13]
    last = ok.iloc[1]
    assert pd.isna(last["user_id"]) and pd.isna(last["session_id"]) and pd.isna(last["quantity"])
    assert last["event_type"] == "purchase"
    assert last["event_at"] == pd.Timestamp("2026-01-01 10:00:00")  # +02:00 -> UTC


def test_catalogue_rows_are_checked_and_counted(tmp_path, settings, query):
    events = tmp_path / "events.csv"
    events.write_text("user_id,item_id,event_type,event_at\nu1,i1,view,2026-01-01\n")
    catalog = tmp_path / "catalog.csv"
    catalog.write_text(
        'item_id,title,price\ni1,"Mug, blue",3.5\n,No id,1\ni2,Pen,free\ni3,Ink,-2\n'
    )
    summary = ingest_events(settings, events, catalog)
    assert summary.rows_in == 5 and summary.rows_loaded == 2
    assert summary.quarantine_reasons == {
        "invalid_price": 1,
        "missing_item_id": 1,
        "negative_price": 1,
    }
    q = query("select source_file, source_row, reason from raw.quarantine order by source_row")
    assert q["source_file"].eq(str(catalog.resolve())).all()
    assert q["source_row"].tolist() == [3, 4, 5]
    assert query("select item_id, title from raw.items").values.tolist() == [["i1", "Mug, blue"]]


def test_missing_event_column_raises(tmp_path, settings):
    path = tmp_path / "events.parquet"
    pd.DataFrame({"user_id": ["u"], "item_id": ["i"], "event_at": ["2026-01-01"]}).to_parquet(path)
    with pytest.raises(
        IngestError, match=r"events.parquet: missing required column\(s\) 'event_type'"
    ):
        ingest_events(settings, path)


def test_feedback_jsonl(tmp_path, settings, query):
    lines = [
        {
            "user_id": "u1",
            "item_id": "i1",
            "event_type": "impression",
            "event_at": "2026-02-01T09:00:00Z",
            "session_id": "r1",
            "rank": 1,
        },
        {
            "user_id": 42,
            "item_id": "i1",
            "event_type": "click",
            "event_at": "2026-02-01T09:00:05Z",
            "session_id": "r1",
        },
        {
            "user_id": "u1",
            "item_id": "i2",
            "event_type": "view",
            "event_at": "2026-02-01T09:00:06Z",
        },
        {"user_id": "u1", "event_type": "purchase", "event_at": "2026-02-01T09:01:00Z"},
    ]
    text = [json.dumps(x) for x in lines]
    path = tmp_path / "feedback-20260201.jsonl"
    path.write_text(
        "\n".join([text[0], text[1], "", "{not json", "[1, 2]", text[2], text[3]]) + "\n"
    )
    summary = ingest_feedback(settings, path)

    assert summary.source == "feedback"
    assert summary.rows_in == 6 and summary.rows_loaded == 2
    assert summary.quarantine_reasons == {
        "malformed_json": 2,
        "missing_item_id": 1,
        "unknown_event_type": 1,
    }
    q = query("select source_row, reason, raw_record from raw.quarantine order by source_row")
    assert q[["source_row", "reason"]].values.tolist() == [
        [4, "malformed_json"],
        [5, "malformed_json"],
        [6, "unknown_event_type"],
        [7, "missing_item_id"],
    ]
    assert json.loads(q["raw_record"].iloc[0]) == "{not json"
    assert json.loads(q["raw_record"].iloc[2]) == lines[2]
    got = query("select user_id, event_type, source_row from raw.events order by source_row")
    assert got.values.tolist() == [["u1", "impression", 1], ["42", "click", 2]]


def test_all_rows_quarantined_marks_the_batch(tmp_path, settings, query):
    path = tmp_path / "feedback.jsonl"
    path.write_text('{"itemId": "i1"}\n')
    summary = ingest_feedback(settings, path)
    assert summary.status == "quarantined" and summary.rows_loaded == 0
    assert query("select status from raw.batches")["status"].tolist() == ["quarantined"]


def test_newest_event_at_reads_offsets_and_rejects_empty(tmp_path):
    path = tmp_path / "e.csv"
    path.write_text(
        "user_id,item_id,event_type,event_at\n"
        "u,i,view,2026-03-01T23:30:00-02:00\nu,i,view,2026-03-02T00:00:00Z\nu,i,view,x\n"
    )
    assert newest_event_at(path) == datetime(2026, 3, 2, 1, 30)
    empty = tmp_path / "empty.csv"
    empty.write_text("user_id,item_id,event_type,event_at\n")
    with pytest.raises(IngestError, match="no parseable"):
        newest_event_at(empty)
