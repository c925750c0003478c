"""The pieces of ``recops forget`` on small real inputs: id matching, quarantine records, the
warehouse transaction, Parquet frames and the serving bundle (real retrievers, fitted here)."""

from __future__ import annotations

import json
from datetime import datetime

import pandas as pd
import pytest

from recops.privacy import pseudonymise
from recops.privacy_ops import (
    erase_feedback_files,
    erase_warehouse,
    normalise_user_id,
    reclaim_storage,
    record_mentions,
    scrub_bundle,
    scrub_parquet,
)
from recops.settings import Settings
from recops.warehouse import Warehouse


def test_ids_are_normalised_like_ingestion_and_staging() -> None:
    assert normalise_user_id(" 12345.0 ") == "12345"
    assert normalise_user_id(12345.0) == "12345"
    assert normalise_user_id("a  b ") == "a b"
    assert normalise_user_id("12345.5") == "12345.5"


@pytest.mark.parametrize(
    ("record", "hit"),
    [
        ('{"Invoice": "489434", "Customer ID": 13085.0, "Price": 0.0}', True),  # II layout
        ('{"InvoiceNo": "536365", "CustomerID": "13085", "UnitPrice": 0}', True),  # original
        ('{"user_id": "13085", "item_id": "1"}', True),
        ('{"user": " 13085 ", "item_id": "1"}', True),
        ('{"Customer ID": 130851.0, "Price": 0.0}', False),  # a longer id
        ('{"Customer ID": 13086.0, "StockCode": "13085"}', False),  # the id in another field
        ('{"Customer ID": null, "Invoice": "13085"}', False),
        ('["489434", "85048", "13085", "x"]', True),  # broken CSV line: fields untrusted
        ('["489434", "850481", "113085"]', False),
        ('"{\\"user_id\\": \\"13085\\", \\"item_id\\": "', True),  # a malformed JSON line
        ('"{\\"user_id\\": \\"130850\\", \\"item_id\\": "', False),
        (None, False),
    ],
)
def test_quarantine_records_match_the_id_field_exactly(record: str | None, hit: bool) -> None:
    assert record_mentions(record, "13085") is hit


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


@pytest.fixture(
    params=[
        "duckdb",
        pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.integration]),
    ]
)
def wh_settings(request, tmp_path, needs_service) -> Settings:
    """Settings on a fresh DuckDB file, or on a throw-away PostgreSQL database (dropped after)."""
    if request.param == "duckdb":
        return Settings(home=tmp_path, user_salt="unit-salt-123")
    import secrets

    import psycopg2

    from recops.warehouse import create_postgres_database

    admin = Settings(home=tmp_path, profile="production", postgres_db="postgres")
    try:
        psycopg2.connect(admin.postgres_dsn, connect_timeout=5).close()
        up, why = True, ""
    except psycopg2.OperationalError as exc:
        up, why = False, str(exc)
    needs_service("postgres", up, why)
    name = f"recops_test_{secrets.token_hex(4)}"
    settings = Settings(
        home=tmp_path, profile="production", postgres_db=name, user_salt="unit-salt-123"
    )
    create_postgres_database(settings)

    def drop() -> None:
        con = psycopg2.connect(admin.postgres_dsn, connect_timeout=5)
        con.autocommit = True
        with con.cursor() as cur:
            cur.execute(f'drop database if exists "{name}" with (force)')
        con.close()

    request.addfinalizer(drop)
    return settings


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
        f"{marts}.dim_users": 1,
        f"{marts}.ml_pairs": 2,
    }
    with Warehouse(settings, read_only=settings.profile == "embedded") as wh:
        users = wh.query_df("select user_id from raw.events order by source_row")["user_id"]
        assert users.tolist()[0] == "130850" and len(users) == 2  # the other user and a guest line
        assert wh.query_df("select source_row from raw.quarantine")["source_row"].tolist() == [7]
        assert wh.query_df(f"select user_id from {marts}.v_users")["user_id"].tolist() == [other]
        suppressed = wh.query_df("select * from raw.suppressed_users")
    assert suppressed["user_key"].tolist() == [key]
    assert pd.Timestamp(suppressed["suppressed_before"].iloc[0]) == pd.Timestamp("2024-06-01")


def test_parquet_frames_lose_only_the_users_rows(tmp_path) -> None:
    path = tmp_path / "training_set.parquet"
    pd.DataFrame({"user_id": ["k1", "k2", "k1", None], "item_id": ["a", "b", "c", "d"]}).to_parquet(
        path
    )
    assert scrub_parquet(path, {"k1"}) == 2
    assert pd.read_parquet(path).to_dict("list") == {"user_id": ["k2", None], "item_id": ["b", "d"]}
    assert scrub_parquet(path, {"k1"}) == 0
    items = tmp_path / "items.parquet"
    pd.DataFrame({"item_id": ["k1"]}).to_parquet(items)
    assert scrub_parquet(items, {"k1"}) == 0


def test_feedback_files_lose_the_users_lines(tmp_path) -> None:
    settings = Settings(home=tmp_path)
    settings.feedback_dir.mkdir(parents=True)
    lines = [
        {"user_id": "13085", "item_id": "i1", "event_type": "click"},
        {"user_id": "130850", "item_id": "i1", "event_type": "click"},
    ]
    mixed = settings.feedback_dir / "feedback-20240101.jsonl"
    mixed.write_text("".join(json.dumps(x) + "\n" for x in lines))
    only = settings.feedback_dir / "feedback-20240102.jsonl"
    only.write_text(json.dumps(lines[0]) + "\n")
    assert erase_feedback_files(settings, "13085") == {"feedback.lines": 2}
    assert [json.loads(x)["user_id"] for x in mixed.read_text().splitlines()] == ["130850"]
    assert not only.exists()  # an empty feedback file would fail the next ingestion


def test_serving_bundle_forgets_the_user_and_keeps_everyone_else() -> None:
    from recops.ingestion import generate_shop
    from recops.training.train import TrainConfig, fit_serving_bundle

    catalog, events = generate_shop(users=60, items=40, days=40, seed=3)
    interactions = events.rename(columns={"price": "price_amount"})
    items = catalog.rename(columns={"price": "price_amount"})
    bundle = fit_serving_bundle(TrainConfig(), interactions, items)
    buyers = interactions.loc[interactions["event_type"] == "purchase", "user_id"].value_counts()
    gone, kept = buyers.index[0], buyers.index[1]
    before = bundle.recommend(None, [], kept, 10, None)
    assert bundle.is_known(gone)

    changed = scrub_bundle(bundle, gone)

    assert changed == 5  # repeat, itemcf, als, content and the history stats knew the user
    assert not bundle.is_known(gone)
    assert all(r["fallback"] for r in bundle.recommend(None, [], gone, 10, None))
    assert bundle.recommend(None, [], kept, 10, None) == before
    for retriever in bundle.retrievers:
        assert gone not in retriever.user_index
    als = next(r for r in bundle.retrievers if r.name == "als")
    assert als.user_factors.shape[0] == len(als.user_index)
    assert bundle.stats.counts.shape[0] == len(bundle.stats.user_index)
    assert gone not in bundle.stats.user_mean_price.index


def test_quality_results_and_alerts_quoting_the_user_go(tmp_path) -> None:
    from recops.privacy_ops import erase_quality_files

    settings = Settings(home=tmp_path)
    key = pseudonymise("13085", settings.user_salt)
    results = settings.quality_dir / "gx" / "validations"
    results.mkdir(parents=True)
    (results / "failed.json").write_text(json.dumps({"partial_unexpected_list": [key, "x"]}))
    (results / "passed.json").write_text(json.dumps({"partial_unexpected_list": []}))
    settings.alerts_path.write_text(
        json.dumps({"message": f"dim_users: duplicate user_id e.g. [{key!r}]"}) + "\n"
        + json.dumps({"message": "ml_item_features: trend_ratio all null"}) + "\n"
    )
    assert erase_quality_files(settings, key) == {"quality.files": 1, "alerts.lines": 1}
    assert not (results / "failed.json").exists() and (results / "passed.json").exists()
    assert "trend_ratio" in settings.alerts_path.read_text() and key not in settings.alerts_path.read_text()


def test_a_different_salt_is_refused_before_anything_is_erased(tmp_path) -> None:
    from recops.privacy_ops import ErasureError

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
