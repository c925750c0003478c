"""The gates on the production profile: raw tables and marts in a real PostgreSQL database."""

from __future__ import annotations

import os
import secrets

import psycopg2
import pytest
from quality_data import (
    AS_OF,
    batch_status,
    load_batch,
    mart_frames,
    raw_events,
    raw_rows,
    write_marts,
)

from recops.quality.checkpoints import enforce, validate_marts, validate_raw_batches
from recops.quality.results import QualityGateError
from recops.settings import Settings
from recops.warehouse import create_postgres_database

pytestmark = [pytest.mark.postgres, pytest.mark.integration]


@pytest.fixture
def pg_settings(tmp_path, request) -> Settings:
    """Production settings on a fresh PostgreSQL database, dropped when the test ends."""
    admin = Settings(home=tmp_path / "admin", profile="production", postgres_db="postgres")
    try:
        psycopg2.connect(admin.postgres_dsn, connect_timeout=5).close()
    except psycopg2.OperationalError as exc:
        reason = f"PostgreSQL unreachable at {admin.postgres_host}:{admin.postgres_port}: {exc}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    name = f"recops_quality_{secrets.token_hex(4)}"
    settings = Settings(home=tmp_path / "pg", profile="production", postgres_db=name)

    def drop() -> None:
        con = psycopg2.connect(admin.postgres_dsn, connect_timeout=5)
        con.autocommit = True
        try:
            with con.cursor() as cur:
                cur.execute(f'drop database if exists "{name}" with (force)')
        finally:
            con.close()

    request.addfinalizer(drop)
    create_postgres_database(settings)
    return settings


def test_raw_gate_on_postgres(pg_settings: Settings) -> None:
    first = raw_events("b-1", 200)
    first["price_amount"] = None  # an all-null numeric column comes back as object dtype
    load_batch(pg_settings, "b-1", first, ingested_at=AS_OF.replace(day=30))
    clean = validate_raw_batches(pg_settings, ["b-1"], run_id="pg-1", as_of=AS_OF)
    assert clean.success, [f.line() for f in clean.failures]

    again = first.assign(batch_id="b-2", source_file="/data/copy.csv")
    again.loc[:4, "event_type"] = "wishlist"
    load_batch(pg_settings, "b-2", again)
    result = validate_raw_batches(pg_settings, ["b-2"], run_id="pg-2", as_of=AS_OF)

    failed = {(f.expectation, f.column) for f in result.errors}
    assert failed == {
        ("expect_column_values_to_be_in_set", "event_type"),
        ("expect_column_values_to_be_null", "duplicate_of_batch_id"),
    }
    with pytest.raises(QualityGateError):
        enforce(result, pg_settings, stage="raw")
    assert batch_status(pg_settings, "b-2")[0] == "quarantined"
    assert batch_status(pg_settings, "b-1")[0] == "loaded"
    assert raw_rows(pg_settings, "b-2") == 200


def test_marts_gate_on_postgres(pg_settings: Settings) -> None:
    frames = mart_frames()
    frames["fct_interactions"].loc[[0, 1], "item_id"] = "i-ghost"
    write_marts(pg_settings, frames)

    result = validate_marts(pg_settings, run_id="pg-m")

    assert {(f.suite, f.column, f.observed) for f in result.failures} == {
        ("marts.integrity", "fct_rows_item_missing_in_dim_items", 2),
        ("marts.integrity", "staging_items_lost", 1),
    }
