"""MovieLens 100K: the real folder's counts and a small folder with broken lines."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from recops.ingestion import IngestError, ingest_movielens

GENRES = "unknown|0\nAction|1\nComedy|2\nDrama|3\n"


def test_real_movielens_counts(settings, query, movielens_dir):
    summary = ingest_movielens(settings, movielens_dir)
    ratings = pd.read_csv(movielens_dir / "u.data", sep="\t", names=["u", "i", "r", "t"])

    assert summary.rows_in == 100_000 + 1_682 == summary.rows_loaded
    assert (summary.events_loaded, summary.items_loaded, summary.rows_quarantined) == (
        100_000,
        1_682,
        0,
    )
    counts = query("select event_type, count(*) n from raw.events group by 1").set_index(
        "event_type"
    )
    assert counts.loc["purchase", "n"] == (ratings["r"] >= 4).sum()
    assert counts.loc["view", "n"] == (ratings["r"] < 4).sum()
    assert query("select count(distinct user_id) n from raw.events")["n"].iloc[0] == 943
    first = query("select * from raw.events where source_row = 1").iloc[0]
    assert (first["user_id"], first["item_id"], first["event_type"]) == ("196", "242", "view")
    assert first["event_at"] == pd.Timestamp(881250949, unit="s")
    toy = query("select * from raw.items where item_id = '1'").iloc[0]
    assert toy["title"] == "Toy Story (1995)"
    assert (toy["category"], toy["description"]) == ("Animation", "Animation, Children's, Comedy")
    assert ingest_movielens(settings, movielens_dir).duplicate_batch


def test_broken_lines_are_quarantined(tmp_path, settings, query):
    flags = "|0|1|0|1"  # Action, Drama
    (tmp_path / "u.genre").write_text(GENRES)
    (tmp_path / "u.item").write_text(
        f"1|Heat (1995)|01-Jan-1995||http://x{flags}\n"
        f"|No id|01-Jan-1995||http://x{flags}\n"
        "3|Short line\n"
        "4|Caf\xe9 (1990)|01-Jan-1990||http://x|0|0|0|0\n",
        encoding="latin-1",
    )
    (tmp_path / "u.data").write_text(
        "1\t1\t5\t881250949\n"  # 1 purchase
        "1\t1\t2\t881250950\n"  # 2 view
        "1\t\t4\t881250951\n"  # 3 missing item
        "1\t1\tx\t881250952\n"  # 4 bad rating
        "1\t1\t7\t881250953\n"  # 5 out of range
        "1\t1\t4\tsoon\n"  # 6 bad timestamp
        "1\t1\t4\n"  # 7 too few fields
    )
    summary = ingest_movielens(settings, tmp_path)

    q = query(
        "select source_file, source_row, field, reason from raw.quarantine "
        "order by source_file, source_row"
    )
    data, item = str(tmp_path / "u.data"), str(tmp_path / "u.item")
    assert [tuple(None if pd.isna(v) else v for v in r) for r in q.itertuples(index=False)] == [
        (data, 3, "item_id", "missing_item_id"),
        (data, 4, "rating", "invalid_rating"),
        (data, 5, "rating", "invalid_rating"),
        (data, 6, "timestamp", "invalid_event_at"),
        (data, 7, None, "wrong_column_count"),
        (item, 2, "movie_id", "missing_item_id"),
        (item, 3, None, "wrong_column_count"),
    ]
    assert summary.rows_in == 11 and summary.rows_loaded == 4 and summary.rows_quarantined == 7
    events = query("select event_type from raw.events order by source_row")["event_type"]
    assert events.tolist() == ["purchase", "view"]
    items = query("select item_id, title, category, description from raw.items order by item_id")
    assert items.values.tolist()[0] == ["1", "Heat (1995)", "Action", "Action, Drama"]
    assert items["title"].iloc[1] == "Café (1990)" and pd.isna(items["category"].iloc[1])


def test_missing_movielens_file_raises(tmp_path, settings, movielens_dir):
    shutil.copy(movielens_dir / "u.data", tmp_path / "u.data")
    with pytest.raises(IngestError, match="u.item: file not found"):
        ingest_movielens(settings, tmp_path)
