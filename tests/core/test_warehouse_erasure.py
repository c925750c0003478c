"""Erasing a customer from the warehouse (DuckDB and PostgreSQL): raw, quarantine, every user table
in one transaction, the suppression row, storage compaction, and the salt check."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import pytest

from recops.core.privacy import pseudonymise
from recops.core.settings import Settings
from recops.core.warehouse import Warehouse
from recops.core.warehouse_erasure import erase_warehouse, reclaim_storage


def _raw_event(user_id: str | None, item_id: str, row: int) -> dict:
    return {
        "batch_id": "b1",
        "ingested_at": datetime(2024, 1, 2),
        "source": "events",
        "source_file": "/data/events.csv",
        "source_row": row,
        "user_id": user_id,
        "item_id": item_id,
        "event_type": "purchase",
        "event_at": datetime(2024, 1, 1, 10),
        "session_id": None,
        "quantity": 1.0,
        "price_amount": 2.0,
        "order_id": None,
        "country": None,
    }


def test_warehouse_erasure_deletes_raw_quarantine_and_every_user_table(
    wh_settings: Settings,
) -> None:
    settings = wh_settings
    marts = "public" if settings.profile == "production" else "main"
    key, other = (
        pseudonymise("13085", settings.user_salt),
        pseudonymise("130850", settings.user_salt),
    )
    with Warehouse(settings) as wh:
        wh.ensure_raw_schema()
        wh.append_df(
            "raw.events",
            pd.DataFrame(
                [
                    _raw_event("13085", "i1", 2),
                    _raw_event(" 13085 ", "i2", 3),
                    _raw_event("130850", "i1", 4),
                    _raw_event(None, "i3", 5),
                ]
            ),
        )
        quarantine = [
            ('{"Customer ID": 13085.0, "Price": 0.0}', 6),
            ('{"Customer ID": 130850.0, "Price": 0.0}', 7),
            ('["x", "13085"]', 8),
        ]
        wh.append_df(
            "raw.quarantine",
            pd.DataFrame(
                {
                    "batch_id": "b1",
                    "source_file": "/data/events.csv",
                    "source_row": [r for _, r in quarantine],
                    "field": "Price",
                    "reason": "non_positive_price",
                    "raw_record": [q for q, _ in quarantine],
                    "quarantined_at": datetime(2024, 1, 2),
                }
            ),
        )
        served = [  # what the API served them: keyed by the pseudonym, never the raw id
            {"batch_id": "s1", "ingested_at": datetime(2024, 1, 2), "source": "served",
             "source_file": "/home/served/a.jsonl", "source_row": n, "request_id": f"r{n}",
             "served_at": datetime(2024, 1, 1, 9), "user_key": user_key, "model_name": "m",
             "model_version": "1", "variant": "champion", "kind": "personal", "context_item_id": None,
             "k": 10, "item_id": "i1", "served_rank": 1, "score": 0.5, "retrievers": "als"}
            for n, user_key in enumerate([key, key, other])
        ]
        wh.append_df("raw.served", pd.DataFrame(served))
        wh.execute(f"create table {marts}.dim_users (user_id varchar)")
        wh.execute(f"insert into {marts}.dim_users values (?), (?)", [key, other])
        wh.execute(f"create table {marts}.ml_pairs (user_id varchar, item_id varchar)")
        wh.execute(
            f"insert into {marts}.ml_pairs values (?, 'i1'), (?, 'i2'), (?, 'i1')",
            [key, key, other],
        )
        wh.execute(f"create view {marts}.v_users as select * from {marts}.dim_users")

    counts = erase_warehouse(settings, "13085", key, datetime(2024, 6, 1))
    reclaim_storage(settings, [t for t, n in counts.items() if n])

    assert counts == {
        "raw.events": 2,
        "raw.quarantine": 2,
        "raw.served": 2,
        f"{marts}.dim_users": 1,
        f"{marts}.ml_pairs": 2,
    }
    with Warehouse(settings, read_only=settings.profile == "embedded") as wh:
        users = wh.query_df("select user_id from raw.events order by source_row")["user_id"]
        assert users.tolist()[0] == "130850" and len(users) == 2  # the other user and a guest line
        assert wh.query_df("select source_row from raw.quarantine")["source_row"].tolist() == [7]
        assert wh.query_df("select user_key from raw.served")["user_key"].tolist() == [other]
        assert wh.query_df(f"select user_id from {marts}.v_users")["user_id"].tolist() == [other]
        suppressed = wh.query_df("select * from raw.suppressed_users")
    assert suppressed["user_key"].tolist() == [key]
    assert pd.Timestamp(suppressed["suppressed_before"].iloc[0]) == pd.Timestamp("2024-06-01")


def test_a_different_salt_is_refused_before_anything_is_erased(tmp_path) -> None:
    from recops.core.privacy import ErasureError

    settings = Settings(home=tmp_path, user_salt="the-wrong-salt")
    with Warehouse(settings) as wh:
        wh.ensure_raw_schema()
        wh.append_df("raw.events", pd.DataFrame([_raw_event("13085", "i1", 2)]))
        # what dbt builds: the salt baked into the staging view
        wh.execute(
            "create view main.stg_raw__events as select "
            "md5('pipeline''s-salt' || trim(user_id)) as user_id from raw.events"
        )
    with pytest.raises(ErasureError, match="RECOPS_USER_SALT"):
        erase_warehouse(settings, "13085", pseudonymise("13085", settings.user_salt), datetime(2024, 6, 1))
    with Warehouse(settings, read_only=True) as wh:
        assert int(wh.scalar("select count(*) from raw.events")) == 1
    right = Settings(home=tmp_path, user_salt="pipeline's-salt")
    counts = erase_warehouse(right, "13085", pseudonymise("13085", right.user_salt), datetime(2024, 6, 1))
    assert counts["raw.events"] == 1
