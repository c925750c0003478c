"""A quality result becomes one alert naming the run, the stage and every failed expectation."""

from __future__ import annotations

from recops.quality.checkpoints import alert_from_result
from recops.quality.results import FailedExpectation, QualityResult


def _result() -> QualityResult:
    return QualityResult(
        suite="marts",
        stage="marts",
        run_id="manual__2024-05-01T00:00:00+00:00",
        success=False,
        failures=[
            FailedExpectation(
                expectation="expect_column_values_to_be_between",
                column="return_rate_90d",
                severity="error",
                observed={
                    "unexpected_count": 2,
                    "unexpected_percent": 1.0,
                    "element_count": 200,
                    "examples": [1.5],
                },
                threshold={"min_value": 0, "max_value": 1},
                suite="marts.ml_item_features",
            ),
            FailedExpectation(
                expectation="expect_column_max_to_be_between",
                column="user_features__spend_amount_30d",
                severity="warning",
                observed=0.13,
                threshold={"max_value": 0.1},
                suite="training_set.drift",
            ),
        ],
        data_docs_path="/srv/quality/gx/uncommitted/data_docs/local_site/validations/x.html",
    )


def test_alert_from_result_names_everything() -> None:
    alert = alert_from_result(_result())

    assert alert.severity == "error" and alert.kind == "quality_gate"
    assert alert.run_id == "manual__2024-05-01T00:00:00+00:00" and alert.stage == "marts"
    assert [f.severity for f in alert.failures] == ["error", "warning"]
    text = alert.text()
    assert "2/200 rows (1%) e.g. [1.5]" in text
    assert "threshold=min_value=0, max_value=1" in text
    assert "observed=0.13 threshold=max_value=0.1" in text
    assert "data docs: /srv/quality/" in text


