"""Training-set gate: label rate, query groups, leakage, all-null features and PSI drift."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from recops.core.settings import Settings
from recops.quality.checkpoints import enforce, validate_raw_batches, validate_training_set
from recops.quality.drift import psi_between
from recops.quality.references import accepted_runs, reference_path
from recops.quality.results import QualityGateError, QualityResult

SPEND = "user_features__spend_amount_30d"


def failed(result: QualityResult) -> set[tuple[str | None, str, str | None, str]]:
    return {(f.suite, f.expectation, f.column, f.severity) for f in result.failures}


def _accepted_baseline(settings: Settings, quality_data, run_id: str = "run-1") -> QualityResult:
    result = validate_training_set(settings, quality_data.training_frame(seed=7), run_id=run_id)
    enforce(result, settings, stage="training_set")
    return result


def test_first_clean_run_passes_and_becomes_the_reference(settings: Settings, quality_data) -> None:
    result = _accepted_baseline(settings, quality_data)

    assert result.success, [f.line() for f in result.failures]
    assert result.statistics["drift"] == {"reference_run_id": None, "psi": {}}
    assert result.statistics["groups"] == 300
    assert 0.05 < result.statistics["label_rate"] < 0.2
    assert result.statistics["features"] == [
        "user_features__count_purchases_30d",
        SPEND,
        "item_features__trend_ratio",
        "user_item_features__count_purchases",
        "user_item_features__first_purchase_at_age_days",
    ]  # not the ids, label, query_id or the bookkeeping "window"
    assert accepted_runs(settings) == ["run-1"]
    stored = json.loads(reference_path(settings, "run-1").read_text())
    assert set(stored["features"]) == set(result.statistics["features"])
    assert abs(sum(stored["features"][SPEND]["shares"]) - 1.0) < 1e-9
    assert quality_data.read_alerts(settings) == []


def test_same_distribution_does_not_drift(alerting_settings: Settings, webhook, smtp, quality_data) -> None:
    _accepted_baseline(alerting_settings, quality_data)

    result = validate_training_set(alerting_settings, quality_data.training_frame(seed=8), run_id="run-2")
    enforce(result, alerting_settings, stage="training_set")

    assert result.success
    assert result.statistics["drift"]["reference_run_id"] == "run-1"
    assert max(result.statistics["drift"]["psi"].values()) < alerting_settings.quality_psi_warn
    assert "training_set.drift" in {v["suite"] for v in result.statistics["validations"]}
    assert accepted_runs(alerting_settings) == ["run-1", "run-2"]
    assert quality_data.read_alerts(alerting_settings) == [] and webhook.bodies == [] and smtp.messages == []


def test_drifted_feature_stops_the_run(alerting_settings: Settings, webhook, smtp, quality_data) -> None:
    _accepted_baseline(alerting_settings, quality_data)

    result = validate_training_set(
        alerting_settings, quality_data.training_frame(seed=8, shift=1.0), run_id="run-2"
    )
    with pytest.raises(QualityGateError) as raised:
        enforce(result, alerting_settings, stage="training_set")

    # only the error tier is reported for the drifted feature, the others stay under 0.1
    assert failed(result) == {
        ("training_set.drift", "expect_column_max_to_be_between", SPEND, "error")
    }
    drift = result.failures[0]
    assert drift.observed == pytest.approx(result.statistics["drift"]["psi"][SPEND], abs=1e-6)
    assert drift.observed > 1.0
    assert drift.threshold == {"max_value": 0.25}
    assert f"expect_column_max_to_be_between({SPEND})" in str(raised.value)
    # the rejected set never becomes the baseline
    assert accepted_runs(alerting_settings) == ["run-1"]
    later = validate_training_set(alerting_settings, quality_data.training_frame(seed=9), run_id="run-3")
    assert later.statistics["drift"]["reference_run_id"] == "run-1"

    alert = quality_data.read_alerts(alerting_settings)[0]
    assert alert["stage"] == "training_set" and alert["severity"] == "error"
    assert alert["failures"][0]["column"] == SPEND
    assert alert["failures"][0]["threshold"] == {"max_value": 0.25}
    assert SPEND in webhook.bodies[0]["text"]
    fields = webhook.bodies[0]["attachments"][0]["fields"]
    assert any(SPEND in f["title"] and "threshold" in f["value"] for f in fields)
    body = smtp.messages[0].get_body(preferencelist=("plain",)).get_content()
    assert SPEND in body and "max_value=0.25" in body


def test_a_failed_training_set_gate_quarantines_the_batches_of_its_run(
    settings: Settings, quality_data,
) -> None:
    """The run's new batches are all it changed since the last good run: held back, raw rows kept,
    so the next run starts from the last good state. Batches of other runs stay loaded."""
    quality_data.load_batch(settings, "b-old", quality_data.raw_events("b-old", 200), ingested_at=quality_data.AS_OF.replace(day=1))
    enforce(validate_raw_batches(settings, ["b-old"], run_id="run-1", as_of=quality_data.AS_OF), settings,
            stage="raw")  # fmt: skip
    _accepted_baseline(settings, quality_data, run_id="run-1")
    quality_data.load_batch(settings, "b-new", quality_data.raw_events("b-new", 200, seed=4))
    enforce(validate_raw_batches(settings, ["b-new"], run_id="run-2", as_of=quality_data.AS_OF), settings,
            stage="raw")  # fmt: skip

    drifted = validate_training_set(settings, quality_data.training_frame(seed=8, shift=1.0), run_id="run-2")
    with pytest.raises(QualityGateError) as raised:
        enforce(drifted, settings, stage="training_set")

    assert raised.value.result.quarantined_batch_ids == ["b-new"]
    status, reason = quality_data.batch_status(settings, "b-new")
    assert status == "quarantined"
    assert reason.startswith("quality gate training_set (run run-2)") and SPEND in reason
    assert quality_data.raw_rows(settings, "b-new") == 200
    assert quality_data.batch_status(settings, "b-old") == ("loaded", None)
    assert quality_data.read_alerts(settings)[-1]["quarantined_batch_ids"] == ["b-new"]


def test_moderate_drift_only_warns(alerting_settings: Settings, webhook, smtp, quality_data) -> None:
    # 1,500 query groups each: a PSI of 0.1 is well above what sampling noise reaches on them
    baseline = quality_data.training_frame(n_groups=1500, per_group=4, seed=7)
    enforce(
        validate_training_set(alerting_settings, baseline, run_id="run-1"),
        alerting_settings,
        stage="training_set",
    )
    moderate = quality_data.training_frame(n_groups=1500, per_group=4, seed=8, shift=0.15)
    result = validate_training_set(alerting_settings, moderate, run_id="run-2")
    enforced = enforce(result, alerting_settings, stage="training_set")

    assert failed(result) == {
        ("training_set.drift", "expect_column_max_to_be_between", SPEND, "warning")
    }
    assert 0.1 < result.failures[0].observed < 0.25
    assert result.failures[0].threshold == {"max_value": 0.1}
    assert enforced.alert_channels == ["jsonl", "webhook", "email"]
    assert accepted_runs(alerting_settings) == ["run-1", "run-2"]
    assert quality_data.read_alerts(alerting_settings)[0]["severity"] == "warning"
    assert webhook.bodies[0]["text"].startswith("[RecOps WARNING]")
    assert smtp.messages[0]["Subject"].startswith("[RecOps WARNING]")


def _per_user(frame: pd.DataFrame) -> pd.DataFrame:
    """The spend feature as Feast serves user features: one value per query group."""
    return frame.assign(**{SPEND: frame.groupby("query_id")[SPEND].transform("first")})


def test_small_training_set_noise_is_not_drift(settings: Settings, quality_data) -> None:
    """40 query groups: two clean samples differ by a PSI above the 0.1 / 0.25 rule of thumb, but
    not above what sampling noise reaches on 40 groups; a real shift still stops the run."""
    baseline = validate_training_set(
        settings, _per_user(quality_data.training_frame(n_groups=40, seed=7)), run_id="run-1"
    )
    enforce(baseline, settings, stage="training_set")

    clean = validate_training_set(
        settings, _per_user(quality_data.training_frame(n_groups=40, seed=21)), run_id="run-2"
    )
    drifted = validate_training_set(
        settings, _per_user(quality_data.training_frame(n_groups=40, seed=22, shift=8.0)), run_id="run-3"
    )

    limits = clean.statistics["drift"]["max_psi"][SPEND]
    assert limits["error"] > 0.25 and limits["warning"] > 0.1  # the noise level on 40 groups
    assert clean.statistics["drift"]["psi"][SPEND] > 0.1  # the rule of thumb would warn
    assert clean.passed_gate, [f.line() for f in clean.failures]
    assert ("training_set.drift", "expect_column_max_to_be_between", SPEND, "error") in failed(
        drifted
    )
    spend = next(f for f in drifted.failures if f.column == SPEND)
    assert spend.threshold == {"max_value": drifted.statistics["drift"]["max_psi"][SPEND]["error"]}
    assert spend.observed > spend.threshold["max_value"]


AGE = "user_item_features__first_purchase_at_age_days"


def test_age_features_are_compared_across_the_calendar(settings: Settings, quality_data) -> None:
    """60 days later every pair is 60 days older: not drift. Ages reset (pairs all new): drift."""
    _accepted_baseline(settings, quality_data)
    later = quality_data.training_frame(seed=8)
    later["event_timestamp"] += pd.Timedelta(days=60)
    later[AGE] += 60
    assert psi_between(quality_data.training_frame(seed=7)[AGE], later[AGE]) > 0.25  # what PSI alone says

    result = validate_training_set(settings, later, run_id="run-2")

    assert result.statistics["drift"]["age_features_shifted_days"] == {AGE: 60.0}
    assert result.statistics["drift"]["psi"][AGE] < 0.1
    assert result.success, [f.line() for f in result.failures]

    reset = quality_data.training_frame(seed=9)
    reset["event_timestamp"] += pd.Timedelta(days=60)
    reset[AGE] = reset[AGE] / 10
    drifted = validate_training_set(settings, reset, run_id="run-3")
    assert ("training_set.drift", "expect_column_max_to_be_between", AGE, "error") in failed(
        drifted
    )


def test_groups_without_a_positive_or_a_negative(settings: Settings, quality_data) -> None:
    frame = quality_data.training_frame()
    frame.loc[frame["query_id"] == 5, "label"] = 0
    frame.loc[frame["query_id"].isin([8, 9]), "label"] = 1

    result = validate_training_set(settings, frame, run_id="run-g")
    with pytest.raises(QualityGateError):
        enforce(result, settings, stage="training_set")

    groups = {f.column: f for f in result.failures if f.suite == "training_set.groups"}
    assert set(groups) == {"positives", "negatives"}
    assert groups["positives"].observed["unexpected_count"] == 1
    assert groups["positives"].observed["unexpected_rows"] == [{"positives": 0, "query_id": 5}]
    assert [r["query_id"] for r in groups["negatives"].observed["unexpected_rows"]] == [8, 9]
    assert result.statistics["groups_without_positive"] == 1
    assert accepted_runs(settings) == []


def test_feature_timestamp_at_label_time_is_leakage(settings: Settings, quality_data) -> None:
    frame = quality_data.training_frame()
    leaked = frame.index[frame["user_item_features__last_purchase_at"].notna()][:7]
    frame.loc[leaked, "user_item_features__last_purchase_at"] = frame.loc[leaked, "event_timestamp"]

    result = validate_training_set(settings, frame, run_id="run-l")

    assert failed(result) == {
        (
            "training_set.rows",
            "expect_column_pair_values_a_to_be_greater_than_b",
            "event_timestamp > user_item_features__last_purchase_at",
            "error",
        )
    }
    assert result.failures[0].observed["unexpected_count"] == 7
    with pytest.raises(QualityGateError, match="last_purchase_at"):
        enforce(result, settings, stage="training_set")


def test_label_rate_out_of_band_and_all_null_feature(settings: Settings, quality_data) -> None:
    frame = quality_data.training_frame()
    rng = np.random.default_rng(0)
    frame["label"] = (rng.random(len(frame)) < 0.7).astype("int64")
    frame.loc[frame.index[::20], "label"] = 0
    frame.loc[frame.index[1::20], "label"] = 1
    frame["item_features__trend_ratio"] = np.nan

    result = validate_training_set(settings, frame, run_id="run-r")

    assert {
        ("training_set.rows", "expect_column_mean_to_be_between", "label_is_positive", "error"),
        (
            "training_set.rows",
            "expect_column_proportion_of_non_null_values_to_be_between",
            "item_features__trend_ratio",
            "error",
        ),
    } <= failed(result)
    rate = next(f for f in result.failures if f.column == "label_is_positive")
    assert rate.observed == pytest.approx(result.statistics["label_rate"])
    assert rate.threshold == {"min_value": 0.001, "max_value": 0.5}


def test_timezone_aware_timestamps_are_compared_in_utc(settings: Settings, quality_data) -> None:
    frame = quality_data.training_frame()
    frame["event_timestamp"] = frame["event_timestamp"].dt.tz_localize("UTC")
    frame["user_item_features__last_purchase_at"] = (
        pd.to_datetime(frame["user_item_features__last_purchase_at"])
        .dt.tz_localize("UTC")
        .dt.tz_convert("Europe/Paris")
    )

    result = validate_training_set(settings, frame, run_id="run-tz")

    assert result.success, [f.line() for f in result.failures]


def test_missing_label_column_is_a_usage_error(settings: Settings, quality_data) -> None:
    with pytest.raises(ValueError, match="'label'"):
        validate_training_set(settings, quality_data.training_frame().drop(columns=["label"]), run_id="x")


def test_feature_age_at_or_below_zero_is_leakage(settings: Settings, quality_data) -> None:
    frame = quality_data.training_frame()
    age = "user_item_features__first_purchase_at_age_days"
    aged = frame.index[frame[age].notna()][:3]
    frame.loc[aged, age] = [0.0, -1.5, -30.0]
    frame["days_since_user_bought_item"] = 2.0
    frame.loc[9, "days_since_user_bought_item"] = -0.5

    result = validate_training_set(settings, frame, run_id="run-age")

    assert failed(result) == {
        ("training_set.rows", "expect_column_values_to_be_between", age, "error"),
        (
            "training_set.rows",
            "expect_column_values_to_be_between",
            "days_since_user_bought_item",
            "error",
        ),
    }
    by_column = {f.column: f for f in result.failures}
    assert by_column[age].observed["unexpected_count"] == 3
    assert by_column[age].threshold == {"min_value": 0, "strict_min": True}
    assert by_column["days_since_user_bought_item"].observed["examples"] == [-0.5]
