"""``quality_report``: where the Data Docs are and a one-screen summary of the last run."""

from __future__ import annotations

import pytest

from recops.core.settings import Settings
from recops.quality.checkpoints import enforce, validate_marts, validate_raw_batches
from recops.quality.paths import data_docs_index
from recops.quality.report import last_run_id, load_run, quality_report
from recops.quality.results import QualityGateError


def test_report_before_any_run(settings: Settings) -> None:
    text = quality_report(settings)
    assert f"Data Docs: {data_docs_index(settings)} (not built yet)" in text
    assert "No validation recorded yet" in text


def test_report_of_the_last_run(settings: Settings, quality_data) -> None:
    quality_data.load_batch(settings, "b-old", quality_data.raw_events("b-old", 100))
    validate_raw_batches(settings, ["b-old"], run_id="run-old", as_of=quality_data.AS_OF)

    bad = quality_data.raw_events("b-1", 200, seed=4)
    bad.loc[:2, "price_amount"] = -1.0
    quality_data.load_batch(settings, "b-1", bad)
    quality_data.write_marts(settings, quality_data.mart_frames())
    raw = validate_raw_batches(settings, ["b-1"], run_id="run-new", as_of=quality_data.AS_OF)
    with pytest.raises(QualityGateError):
        enforce(raw, settings, stage="raw")
    enforce(validate_marts(settings, run_id="run-new"), settings, stage="marts")

    assert last_run_id(settings) == "run-new"
    assert [r.stage for r in load_run(settings, "run-new")] == ["raw", "marts"]
    text = quality_report(settings)
    lines = text.splitlines()
    assert lines[1] == f"Data Docs: {data_docs_index(settings)}"
    assert "Last run: run-new" in lines
    raw_line = next(x for x in lines if x.startswith("raw "))
    assert "FAILED" in raw_line and "b-1 (quarantined: b-1)" in raw_line
    marts_line = next(x for x in lines if x.startswith("marts "))
    assert "passed" in marts_line
    assert any(
        "expect_column_values_to_be_between(price_amount)" in x and "3/200 rows" in x for x in lines
    )
    assert any(x.startswith("Docs (raw): ") and x.endswith(".html") for x in lines)
    assert "Alerts sent for this run: 1" in text
    assert "run-old" not in text
    assert len(lines) < 30  # one screen
