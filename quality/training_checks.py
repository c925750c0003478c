"""The training-set gate's checks: label rate, query groups, leakage, empty features and PSI drift
against the last accepted training set."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import pandas as pd

from recops.core.constants import (
    LABEL_COL,
    TIMESTAMP_COL,
)
from recops.core.settings import Settings
from recops.quality import model_suites, suites
from recops.quality.common import (
    BOOKKEEPING_COLS,
    GROUP_COL,
    TRAINING_SUITE_GROUP,
    combine,
)
from recops.quality.drift import (
    build_reference,
    is_age_feature,
    psi_against_reference,
    psi_critical_value,
)
from recops.quality.references import latest_reference, save_reference
from recops.quality.report import record_result
from recops.quality.results import (
    ERROR,
    STAGE_TRAINING_SET,
    WARNING,
    QualityResult,
)
from recops.quality.runner import FrameCheck, run_checks

log = logging.getLogger(__name__)


def _normalise_times(frame: pd.DataFrame, timestamp_col: str) -> pd.DataFrame:
    """Timestamp columns as naive UTC (tz-aware and epoch-second ``*_at`` columns converted)."""
    out = frame.copy(deep=False)
    for column in out.columns:
        series = out[column]
        is_time_name = column == timestamp_col or str(column).endswith("_at")
        if isinstance(series.dtype, pd.DatetimeTZDtype):
            out[column] = series.dt.tz_convert("UTC").dt.tz_localize(None)
        elif (
            is_time_name
            and pd.api.types.is_numeric_dtype(series)
            and not pd.api.types.is_bool_dtype(series)
        ):
            out[column] = pd.to_datetime(series, unit="s")
        elif is_time_name and series.dtype == object:
            out[column] = pd.to_datetime(series, utc=True).dt.tz_localize(None)
    return out


def numeric_features(frame: pd.DataFrame, *, exclude: Sequence[str]) -> list[str]:
    """Numeric (or boolean) columns other than keys, label and group: the drift-checked features."""
    skip = set(exclude)
    return [
        str(c)
        for c in frame.columns
        if c not in skip
        and (pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c]))
        and not pd.api.types.is_datetime64_any_dtype(frame[c])
    ]


def _snapshot(data: pd.DataFrame) -> pd.Timestamp | None:
    """The training set's newest label time (its newest snapshot), if it has one."""
    if TIMESTAMP_COL not in data.columns or not len(data):
        return None
    newest = pd.Timestamp(data[TIMESTAMP_COL].max())
    return None if pd.isna(newest) else newest


def _age_adjusted(
    data: pd.DataFrame, reference: dict[str, dict[str, Any]], snapshot: pd.Timestamp | None
) -> tuple[pd.DataFrame, dict[str, float]]:
    """The frame with each age feature (``is_age_feature``) made younger by the days between the
    reference's snapshot and this one, so that only a change beyond the calendar counts as drift.
    Returns the frame and the days taken off per feature."""
    elapsed: dict[str, float] = {}
    for feature, entry in reference.items():
        if not is_age_feature(feature) or snapshot is None or not entry.get("snapshot"):
            continue
        days = (snapshot - pd.Timestamp(entry["snapshot"])) / pd.Timedelta(days=1)
        if days:
            elapsed[feature] = float(days)
    if not elapsed:
        return data, {}
    shifted = data.copy(deep=False)  # only the shifted columns are new
    for feature, days in elapsed.items():
        shifted[feature] = pd.to_numeric(data[feature], errors="coerce") - days
    return shifted, elapsed


def _psi_limits(
    settings: Settings,
    reference: dict[str, dict[str, Any]],
    current: dict[str, dict[str, Any]],
    features: Sequence[str],
) -> dict[str, dict[str, float]]:
    """Per feature and severity: the configured PSI threshold, or the PSI that sampling noise
    reaches on these sample sizes (query groups) when that is higher.

    The noise level is Bonferroni-corrected over the features, so that a clean training set
    trips a tier with about the probability ``1 - PSI_NOISE_CONFIDENCE`` per run, however many
    features it has. References saved before sample sizes were recorded use their row count.
    """
    configured = {ERROR: settings.quality_psi_error, WARNING: settings.quality_psi_warn}
    confidence = {
        severity: 1 - (1 - level) / max(len(features), 1)
        for severity, level in suites.PSI_NOISE_CONFIDENCE.items()
    }
    limits: dict[str, dict[str, float]] = {}
    for f in features:
        ref = reference[f]
        bins = sum(1 for share in ref["shares"] if share > 0)
        samples = int(ref.get("samples") or ref["rows"]), int(current[f]["samples"])
        limits[f] = {
            severity: round(
                max(
                    configured[severity],
                    psi_critical_value(max(bins, 1), *samples, confidence=confidence[severity]),
                ),
                6,
            )
            for severity in confidence
        }
    return limits


def _drift(
    settings: Settings, data: pd.DataFrame, feature_cols: list[str], *, samples: int, run_id: str
) -> tuple[dict[str, Any], FrameCheck | None]:
    """Save this frame's drift reference and compare it with the last accepted one: the drift
    statistics and the PSI check (``None`` without an earlier reference)."""
    snapshot = _snapshot(data)
    current = build_reference(data, feature_cols, samples=samples)
    for entry in current.values():
        entry["snapshot"] = snapshot.isoformat() if snapshot is not None else None
    save_reference(settings, run_id, current)
    previous = latest_reference(settings, exclude_run_id=run_id)
    if previous is None:
        return {"reference_run_id": None, "psi": {}}, None
    reference_run, reference = previous
    compared = {f: reference[f] for f in feature_cols if f in reference}
    aged, elapsed = _age_adjusted(data, compared, snapshot)
    psi = psi_against_reference(compared, aged)
    limits = _psi_limits(settings, reference, current, list(psi))
    drift = {
        "reference_run_id": reference_run,
        "psi": {k: round(v, 6) for k, v in psi.items()},
        "max_psi": limits,
        "age_features_shifted_days": elapsed,
    }
    if not psi:
        return drift, None
    check = FrameCheck(
        model_suites.training_drift_suite(list(psi)),
        pd.DataFrame([psi]),
        parameters={
            model_suites.param_psi_max(f, severity): limit
            for f, by_severity in limits.items()
            for severity, limit in by_severity.items()
        },
    )
    return drift, check


def validate_training_set(
    settings: Settings,
    frame: pd.DataFrame,
    *,
    run_id: str,
    label_col: str = LABEL_COL,
    group_col: str = GROUP_COL,
    features: Sequence[str] | None = None,
) -> QualityResult:
    """Validate the point-in-time training set before the ranker sees it.

    Checks label rate, one positive and one negative per query group, leakage (every ``*_at``
    feature strictly before the label's ``event_timestamp``), no all-null feature, and PSI drift
    of every numeric feature against the last accepted training set: a PSI counts above both the
    configured threshold and what sampling noise reaches on this many query groups, and an age
    feature (``is_age_feature``) is first made younger by the days between the two training
    sets' newest snapshots. Saves this frame's drift
    reference; ``enforce`` accepts it when the gate passes. ``features`` defaults to every
    numeric column other than label, group, ``BOOKKEEPING_COLS`` and ``label_is_positive``
    (pass ``recops.training.dataset.feature_columns(frame)`` to pin the ranker's own list).
    """
    started = time.perf_counter()
    for column in (label_col, group_col):
        if column not in frame.columns:
            raise ValueError(f"training frame has no {column!r} column: {list(frame.columns)}")
    data = _normalise_times(frame, TIMESTAMP_COL)
    positive = pd.to_numeric(data[label_col], errors="coerce") > 0
    rows = data.copy(deep=False)  # the same columns, not a copy of the training set's values
    rows[suites.LABEL_POSITIVE_COL] = positive.astype("int8")
    per_group = positive.groupby(data[group_col]).agg(["size", "sum"])
    groups = pd.DataFrame(
        {
            group_col: per_group.index,
            "positives": per_group["sum"].astype("int64").to_numpy(),
            "negatives": (per_group["size"] - per_group["sum"]).astype("int64").to_numpy(),
        }
    )
    exclude = [label_col, group_col, *BOOKKEEPING_COLS, suites.LABEL_POSITIVE_COL]
    feature_cols = (
        list(features) if features is not None else numeric_features(data, exclude=exclude)
    )
    checks = [
        FrameCheck(
            model_suites.training_rows_suite(
                list(rows.columns), label_col=label_col, group_col=group_col, features=feature_cols
            ),
            rows,
        ),
        FrameCheck(model_suites.training_groups_suite(), groups, index_columns=(group_col,)),
    ]
    drift, drift_check = _drift(settings, data, feature_cols, samples=len(groups), run_id=run_id)
    if drift_check is not None:
        checks.append(drift_check)
    outcomes = run_checks(settings, checks, run_id=run_id)
    result = combine(
        suite=TRAINING_SUITE_GROUP,
        stage=STAGE_TRAINING_SET,
        run_id=run_id,
        outcomes=outcomes,
        statistics={
            "rows": len(frame),
            "groups": len(groups),
            "label_rate": float(positive.mean()) if len(frame) else None,
            "groups_without_positive": int((groups["positives"] < 1).sum()),
            "groups_without_negative": int((groups["negatives"] < 1).sum()),
            "features": feature_cols,
            "drift": drift,
        },
        started=started,
    )
    record_result(settings, result)
    return result


