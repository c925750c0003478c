"""Online Retail: both layouts x three formats, semantics, quarantine, duplicates, bad files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recops.core.warehouse import Warehouse
from recops.ingestion import IngestError, ingest_online_retail

EVENT_COLS = [
    "user_id",
    "item_id",
    "event_type",
    "event_at",
    "quantity",
    "price_amount",
    "order_id",
    "session_id",
    "country",
]


def expected_events(cut: pd.DataFrame, first_row: int) -> pd.DataFrame:
    """The raw.events rows DESIGN.md's rules give for a II-layout cut, in file order."""
    returns = cut["Invoice"].str.startswith("C")
    keep = returns | ((cut["Quantity"] > 0) & (cut["Price"] > 0))
    out = pd.DataFrame(
        {
            "source_row": cut.index + first_row,
            "user_id": [None if pd.isna(v) else str(int(v)) for v in cut["Customer ID"]],
            "item_id": cut["StockCode"].str.strip(),
            "event_type": np.where(returns, "return", "purchase"),
            "event_at": pd.to_datetime(cut["InvoiceDate"]),
            "quantity": cut["Quantity"].abs().astype(float),
            "price_amount": cut["Price"].astype(float),
            "order_id": cut["Invoice"],
            "session_id": cut["Invoice"],
            "country": cut["Country"],
        }
    )
    return out.loc[keep].reset_index(drop=True)


def loaded_events(query) -> pd.DataFrame:
    frame = query(f"select source_row, {', '.join(EVENT_COLS)} from raw.events order by source_row")
    return frame.astype(object).where(frame.notna(), None)


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "parquet"])
@pytest.mark.parametrize("layout", ["ii", "original"])
def test_layouts_and_formats_load_the_same_events(
    retail_cut, write_retail, settings, query, layout, fmt
):
    path = write_retail(retail_cut, layout, fmt)
    summary = ingest_online_retail(settings, path)

    non_return = ~retail_cut["Invoice"].str.startswith("C")
    bad_qty = non_return & (retail_cut["Quantity"] <= 0)
    bad_price = non_return & ~bad_qty & (retail_cut["Price"] <= 0)
    assert summary.rows_in == len(retail_cut)
    assert summary.rows_in == summary.rows_loaded + summary.rows_quarantined
    assert summary.quarantine_reasons == {
        "non_positive_price": int(bad_price.sum()),
        "non_positive_quantity": int(bad_qty.sum()),
    }
    assert summary.source == "online_retail" and not summary.duplicate_batch

    first_row = 1 if fmt == "parquet" else 2  # parquet: ordinal; csv line / Excel row: header = 1
    expected = expected_events(retail_cut, first_row)
    got = loaded_events(query)
    pd.testing.assert_frame_equal(
        got, expected.astype(object).where(expected.notna(), None), check_dtype=False
    )
    meta = query("select distinct batch_id, source, source_file, ingested_at from raw.events")
    assert len(meta) == 1
    assert meta.loc[0, "source_file"] == str(path.resolve())
    assert meta.loc[0, "batch_id"] == summary.batch_id

    quarantined = query("select source_row, field, reason from raw.quarantine order by source_row")
    expected_q = sorted(
        [(i + first_row, "Quantity", "non_positive_quantity") for i in np.flatnonzero(bad_qty)]
        + [
            (i + first_row, "UnitPrice" if layout == "original" else "Price", "non_positive_price")
            for i in np.flatnonzero(bad_price)
        ]
    )
    assert list(quarantined.itertuples(index=False, name=None)) == expected_q


def test_returns_guests_non_products_and_catalogue(retail_cut, write_retail, settings, query):
    summary = ingest_online_retail(settings, write_retail(retail_cut, "ii", "parquet"))
    events = query("select * from raw.events")

    c_line = retail_cut.index[retail_cut["Invoice"].str.startswith("C")][0]
    row = events.loc[events["source_row"] == c_line + 1].iloc[0]
    assert row["event_type"] == "return"
    assert row["quantity"] == abs(retail_cut.loc[c_line, "Quantity"]) > 0

    guest = retail_cut.index[retail_cut["Customer ID"].isna() & (retail_cut["Price"] > 0)][0]
    assert events.loc[events["source_row"] == guest + 1, "user_id"].isna().all()

    items = query("select * from raw.items")
    assert summary.items_loaded == len(items)
    assert items["item_id"].str.match(r"\d{5}").all()
    for code in ("POST", "DOT", "M"):
        if code in set(retail_cut["StockCode"]):
            assert code in set(events["item_id"]) and code not in set(items["item_id"])

    product_lines = events.loc[events["item_id"].str.match(r"\d{5}")]
    assert set(items["item_id"]) == set(product_lines["item_id"])
    assert items["item_id"].is_unique
    # the most frequent description, the median purchase price, the first loaded line
    code = product_lines["item_id"].value_counts().index[0]
    lines = retail_cut.loc[
        (retail_cut["StockCode"] == code) & (retail_cut["Price"] > 0) & (retail_cut["Quantity"] > 0)
    ]
    item = items.set_index("item_id").loc[code]
    assert item["title"] == lines["Description"].value_counts().index[0]
    assert item["price_amount"] == pytest.approx(lines["Price"].median())
    assert (
        item["source_row"]
        == product_lines.loc[product_lines["item_id"] == code, "source_row"].min()
    )
    assert pd.isna(item["description"]) and pd.isna(item["category"])


def test_every_quarantine_reason_with_line_field_and_record(tmp_path, settings, query):
    header = "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country"
    lines = [
        header,
        "489434,85048,GOOD LINE,12,2009-12-01 07:45:00,6.95,13085.0,United Kingdom",  # 2 ok
        "489434,,NO CODE,12,2009-12-01 07:45:00,6.95,13085.0,United Kingdom",  # 3
        ",85048,NO INVOICE,12,2009-12-01 07:45:00,6.95,13085.0,United Kingdom",  # 4
        "489434,85048,NO DATE,12,,6.95,13085.0,United Kingdom",  # 5
        "489434,85048,BAD DATE,12,2009-13-45 07:45:00,6.95,13085.0,United Kingdom",  # 6
        "489434,85048,BAD QTY,twelve,2009-12-01 07:45:00,6.95,13085.0,United Kingdom",  # 7
        "489434,85048,BAD PRICE,12,2009-12-01 07:45:00,6.9x,13085.0,United Kingdom",  # 8
        "489434,85048,ADJUST,-3,2009-12-01 07:45:00,6.95,,United Kingdom",  # 9
        "489434,85048,FREE,1,2009-12-01 07:45:00,0,13085.0,United Kingdom",  # 10
        "489434,85048,SHORT,12,2009-12-01 07:45:00",  # 11
        "",  # 12: blank, skipped
        '489434,85048,"TOO, MANY",12,2009-12-01 07:45:00,6.95,13085.0,United Kingdom,x',  # 13
        "C489449,22087,RETURN FREE,-12,2009-12-01 10:33:00,0,16321.0,Australia",  # 14 ok return
        "489434,85048,TRAILING COMMA,1,2009-12-01 07:45:00,6.95,13085.0,United Kingdom,",  # 15 ok
    ]
    path = tmp_path / "lines.csv"
    path.write_text("\n".join(lines) + "\n")
    summary = ingest_online_retail(settings, path)

    expected = [
        (3, "StockCode", "missing_item_id"),
        (4, "Invoice", "missing_invoice"),
        (5, "InvoiceDate", "missing_event_at"),
        (6, "InvoiceDate", "invalid_event_at"),
        (7, "Quantity", "invalid_quantity"),
        (8, "Price", "invalid_price"),
        (9, "Quantity", "non_positive_quantity"),
        (10, "Price", "non_positive_price"),
        (11, None, "wrong_column_count"),
        (13, None, "wrong_column_count"),
    ]
    q = query("select * from raw.quarantine order by source_row")
    got = [(r.source_row, None if pd.isna(r.field) else r.field, r.reason) for r in q.itertuples()]
    assert got == expected
    assert (q["source_file"] == str(path.resolve())).all()
    assert (q["batch_id"] == summary.batch_id).all()
    assert json.loads(q.loc[q["source_row"] == 7, "raw_record"].iloc[0])["Quantity"] == "twelve"
    assert (
        json.loads(q.loc[q["source_row"] == 11, "raw_record"].iloc[0])[-1] == "2009-12-01 07:45:00"
    )
    assert json.loads(q.loc[q["source_row"] == 13, "raw_record"].iloc[0])[-1] == "x"

    assert summary.rows_in == 13 and summary.rows_loaded == 3 and summary.rows_quarantined == 10
    assert summary.quarantine_reasons["wrong_column_count"] == 2
    assert sum(summary.quarantine_reasons.values()) == summary.rows_quarantined
    events = query(
        "select source_row, event_type, quantity, price_amount from raw.events order by source_row"
    )
    assert events.values.tolist() == [
        [2, "purchase", 12.0, 6.95],
        [14, "return", 12.0, 0.0],
        [15, "purchase", 1.0, 6.95],
    ]
    batch = query("select * from raw.batches").iloc[0]
    assert batch["status"] == "loaded" and batch["rows_quarantined"] == 10
    assert json.loads(batch["quarantine_reasons"]) == summary.quarantine_reasons


def test_same_file_twice_is_a_noop(retail_cut, write_retail, settings, query):
    path = write_retail(retail_cut, "ii", "csv")
    first = ingest_online_retail(settings, path)
    counts = (
        query(
            "select (select count(*) from raw.events) e, (select count(*) from raw.items) i, "
            "(select count(*) from raw.quarantine) q"
        )
        .iloc[0]
        .tolist()
    )
    second = ingest_online_retail(settings, path)

    assert second.duplicate_batch and not first.duplicate_batch
    assert second.batch_id == first.batch_id
    assert second.model_dump(exclude={"duplicate_batch"}) == first.model_dump(
        exclude={"duplicate_batch"}
    )
    assert (
        query(
            "select (select count(*) from raw.events) e, (select count(*) from raw.items) i, "
            "(select count(*) from raw.quarantine) q"
        )
        .iloc[0]
        .tolist()
        == counts
    )
    assert len(query("select * from raw.batches")) == 1
    json.dumps(second.model_dump())  # JSON-able as is


def test_same_bytes_under_another_name_is_the_same_batch(
    retail_cut, write_retail, settings, tmp_path
):
    path = write_retail(retail_cut.head(20), "ii", "csv")
    copy = tmp_path / "copy.csv"
    copy.write_bytes(path.read_bytes())
    assert not ingest_online_retail(settings, path).duplicate_batch
    assert ingest_online_retail(settings, copy).duplicate_batch


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "no_price.csv",
            "Invoice,StockCode,Quantity,InvoiceDate,Customer ID\n1,85048,1,x,1\n",
            "'Price' or 'UnitPrice'",
        ),
        ("retail.json", '{"Invoice": 1}\n', "unsupported file type '.json'"),
        ("corrupt.parquet", "not a parquet file", "not a readable Parquet file"),
        ("corrupt.xlsx", "not a workbook", "not a readable Excel workbook"),
        ("empty.csv", "", "empty file"),
    ],
)
def test_unreadable_files_raise_and_load_nothing(tmp_path, settings, query, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(IngestError) as err:
        ingest_online_retail(settings, path)
    assert str(path.resolve()) in str(err.value)
    assert message in str(err.value)
    for table in ("events", "items", "quarantine", "batches"):
        assert query(f"select count(*) n from raw.{table}")["n"].iloc[0] == 0


def test_missing_file_raises(tmp_path, settings):
    with pytest.raises(IngestError, match="file not found"):
        ingest_online_retail(settings, tmp_path / "nope.csv")


def test_a_failed_write_loads_nothing(retail_cut, write_retail, settings, query, monkeypatch):
    path = write_retail(retail_cut, "ii", "parquet")
    original = Warehouse.append_df

    def fail_on_quarantine(self, table, df):
        if table == "raw.quarantine":
            raise RuntimeError("disk full")
        return original(self, table, df)

    monkeypatch.setattr(Warehouse, "append_df", fail_on_quarantine)
    with pytest.raises(RuntimeError, match="disk full"):
        ingest_online_retail(settings, path)
    monkeypatch.setattr(Warehouse, "append_df", original)
    for table in ("events", "items", "quarantine", "batches"):
        assert query(f"select count(*) n from raw.{table}")["n"].iloc[0] == 0
    assert not ingest_online_retail(settings, path).duplicate_batch  # a retry loads the batch


@pytest.mark.slow
def test_full_online_retail_ii_file(settings, query, retail_ii_path):
    summary = ingest_online_retail(settings, retail_ii_path)
    assert summary.rows_in == 525_461
    assert summary.quarantine_reasons == {"non_positive_price": 1569, "non_positive_quantity": 2121}
    assert summary.rows_loaded == 525_461 - 3690 == summary.events_loaded
    counts = query("select event_type, count(*) n, count(user_id) users from raw.events group by 1")
    counts = counts.set_index("event_type")
    assert counts.loc["return", "n"] == 10_206  # every cancellation line is loaded as a return
    assert counts["n"].sum() == summary.rows_loaded
    span = query("select min(event_at) lo, max(event_at) hi from raw.events").iloc[0]
    assert str(span["lo"]) == "2009-12-01 07:45:00" and str(span["hi"]) == "2010-12-09 20:01:00"
    assert Path(summary.files[0]) == retail_ii_path
