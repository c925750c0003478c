"""The gates on the production profile: raw tables and marts in a real PostgreSQL database."""

from __future__ import annotations

import pytest

from recops.core.settings import Settings
from recops.quality.checkpoints import enforce, validate_marts, validate_raw_batches
from recops.quality.results import QualityGateError

pytestmark = [pytest.mark.postgres, pytest.mark.integration]


def test_raw_gate_on_postgres(postgres_settings: Settings, quality_data) -> None:
    first = quality_data.raw_events("b-1", 200)
    first["price_amount"] = None  # an all-null numeric column comes back as object dtype
    quality_data.load_batch(postgres_settings, "b-1", first, ingested_at=quality_data.AS_OF.replace(day=30))
    clean = validate_raw_batches(postgres_settings, ["b-1"], run_id="pg-1", as_of=quality_data.AS_OF)
    assert clean.success, [f.line() for f in clean.failures]

    again = first.assign(batch_id="b-2", source_file="/data/copy.csv")
    again.loc[:4, "event_type"] = "wishlist"
    quality_data.load_batch(postgres_settings, "b-2", again)
    result = validate_raw_batches(postgres_settings, ["b-2"], run_id="pg-2", as_of=quality_data.AS_OF)

    failed = {(f.expectation, f.column) for f in result.errors}
    assert failed == {
        ("expect_column_values_to_be_in_set", "event_type"),
        ("expect_column_values_to_be_null", "duplicate_of_batch_id"),
    }
    with pytest.raises(QualityGateError):
        enforce(result, postgres_settings, stage="raw")
    assert quality_data.batch_status(postgres_settings, "b-2")[0] == "quarantined"
    assert quality_data.batch_status(postgres_settings, "b-1")[0] == "loaded"
    assert quality_data.raw_rows(postgres_settings, "b-2") == 200


def test_marts_gate_on_postgres(postgres_settings: Settings, quality_data) -> None:
    frames = quality_data.mart_frames()
    frames["fct_interactions"].loc[[0, 1], "item_id"] = "i-ghost"
    quality_data.write_marts(postgres_settings, frames)

    result = validate_marts(postgres_settings, run_id="pg-m")

    assert {(f.suite, f.column, f.observed) for f in result.failures} == {
        ("marts.integrity", "fct_rows_item_missing_in_dim_items", 2),
        ("marts.integrity", "staging_items_lost", 1),
        # the two moved events no longer count for their items: 3 item-feature rows (their
        # snapshots after the events) disagree with the recomputation from staging
        ("marts.integrity", "item_features_not_point_in_time", 3),
    }
