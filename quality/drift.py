"""Population stability index (PSI) over quantile bins. Pure functions: numbers in, numbers out.

A reference is built once per accepted training set: the inner cut points of ``n_bins`` quantile
bins of each numeric feature, and the share of rows in each bin plus a last bin for missing
values. A later frame is binned on the same cut points and compared with

    PSI = sum_i (actual_i - expected_i) * ln(actual_i / expected_i)

where empty bins are floored at ``epsilon`` so the logarithm stays finite. Rule of thumb:
below 0.1 stable, 0.1 to 0.25 moderate shift, above 0.25 a shift worth stopping for.

The rule of thumb assumes large samples. Without any drift, the PSI of two samples of ``n`` and
``m`` values over ``B`` bins is asymptotically ``(1/n + 1/m) * chi-square(B - 1)`` (B. Yurdakul,
*Statistical properties of the population stability index*, 2018): two training sets of 95 query
groups reach PSI 0.3 by chance. :func:`psi_critical_value` gives the PSI that sampling noise
alone exceeds with a small probability; the gate stops only above both. A reference records its
``samples``: for a training set, its query groups (a user in a label window), not its rows. The
candidate rows of one group repeat the user's features and draw from the same few items, so
counting rows would make noise look like drift.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

DEFAULT_BINS = 10
DEFAULT_EPSILON = 1e-4


class DriftInputError(ValueError):
    """Bad input to a PSI function (wrong bin count, mismatched shapes, negative shares)."""


def _as_float(values: Iterable[Any] | pd.Series | np.ndarray) -> np.ndarray:
    series = values if isinstance(values, pd.Series) else pd.Series(np.asarray(values))
    if pd.api.types.is_bool_dtype(series):
        series = series.astype("float64")
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


def quantile_edges(values: Iterable[Any], n_bins: int = DEFAULT_BINS) -> list[float]:
    """Inner cut points of ``n_bins`` quantile bins over the non-missing values.

    Ties collapse: a feature that is 0 for 70% of rows gets fewer, wider bins. An all-missing
    input has no cut points (one value bin plus the missing bin).
    """
    if n_bins < 2:
        raise DriftInputError(f"n_bins must be at least 2, got {n_bins}")
    arr = _as_float(values)
    arr = arr[~np.isnan(arr)]
    if arr.size == 0:
        return []
    cuts = np.quantile(arr, np.linspace(0.0, 1.0, n_bins + 1)[1:-1])
    return [float(c) for c in np.unique(cuts)]


def bin_shares(values: Iterable[Any], edges: Sequence[float]) -> list[float]:
    """Share of values in each bin ``(-inf, e1], (e1, e2], ..., (ek, inf)`` plus a missing bin.

    Returns ``len(edges) + 2`` shares summing to 1 (all zeros for an empty input).
    """
    arr = _as_float(values)
    missing = np.isnan(arr)
    present = arr[~missing]
    idx = np.searchsorted(np.asarray(edges, dtype="float64"), present, side="left")
    counts = np.bincount(idx, minlength=len(edges) + 1).astype("float64")
    counts = np.append(counts, float(missing.sum()))
    total = counts.sum()
    return [float(c) for c in (counts / total if total else counts)]


def psi(
    expected: Sequence[float], actual: Sequence[float], *, epsilon: float = DEFAULT_EPSILON
) -> float:
    """PSI between two share vectors over the same bins (each should sum to 1)."""
    e = np.asarray(expected, dtype="float64")
    a = np.asarray(actual, dtype="float64")
    if e.shape != a.shape or e.ndim != 1 or e.size == 0:
        raise DriftInputError(
            f"share vectors must be 1-d and of equal length: {e.shape} vs {a.shape}"
        )
    if (e < 0).any() or (a < 0).any():
        raise DriftInputError("shares must be non-negative")
    if epsilon <= 0:
        raise DriftInputError("epsilon must be positive")
    e = np.clip(e, epsilon, None)
    a = np.clip(a, epsilon, None)
    return float(np.sum((a - e) * np.log(a / e)))


def psi_between(
    reference: Iterable[Any], current: Iterable[Any], *, n_bins: int = DEFAULT_BINS
) -> float:
    """PSI of ``current`` against ``reference`` with bins cut on the reference's quantiles."""
    edges = quantile_edges(reference, n_bins)
    return psi(bin_shares(reference, edges), bin_shares(current, edges))


def psi_critical_value(bins: int, n_expected: int, n_actual: int, *, confidence: float) -> float:
    """The PSI that sampling noise alone exceeds with probability ``1 - confidence`` for two
    samples of ``n_expected`` and ``n_actual`` observations over ``bins`` bins (those the
    reference population fills): ``(1/n + 1/m) * chi2.ppf(confidence, bins - 1)``."""
    if not 0 < confidence < 1:
        raise DriftInputError(f"confidence must be in (0, 1), got {confidence}")
    if n_expected < 1 or n_actual < 1:
        raise DriftInputError(f"sample sizes must be positive: {n_expected}, {n_actual}")
    if bins < 1:
        raise DriftInputError(f"bins must be at least 1, got {bins}")
    from scipy.stats import chi2  # ~1 s to import; only the drift check needs it

    scale = 1.0 / n_expected + 1.0 / n_actual
    return float(scale * chi2.ppf(confidence, max(bins - 1, 1)))


def is_age_feature(name: str) -> bool:
    """Days since an entity's *first* event (``item_days_since_first_sale``,
    ``user_item_features__first_purchase_at_age_days``). Such a feature grows with the calendar:
    two training sets 15 days apart differ by 15 days on every item, which PSI would call drift.
    The gate compares it after taking off the days between the two snapshots."""
    lowered = name.lower()
    return "days_since_first" in lowered or ("first_" in lowered and lowered.endswith("_age_days"))


def build_reference(
    frame: pd.DataFrame,
    columns: Sequence[str],
    *,
    n_bins: int = DEFAULT_BINS,
    samples: int | None = None,
) -> dict[str, dict[str, Any]]:
    """Per column: quantile cut points, bin shares, row count and ``samples``, the independent
    observations behind the shares (default: the rows). JSON-serialisable."""
    reference: dict[str, dict[str, Any]] = {}
    for column in columns:
        edges = quantile_edges(frame[column], n_bins)
        reference[column] = {
            "edges": edges,
            "shares": bin_shares(frame[column], edges),
            "rows": len(frame),
            "samples": len(frame) if samples is None else int(samples),
        }
    return reference


def psi_against_reference(
    reference: Mapping[str, Mapping[str, Any]],
    frame: pd.DataFrame,
    *,
    epsilon: float = DEFAULT_EPSILON,
) -> dict[str, float]:
    """PSI of every column present both in ``reference`` and in ``frame``."""
    out: dict[str, float] = {}
    for column, ref in reference.items():
        if column not in frame.columns:
            continue
        shares = bin_shares(frame[column], ref["edges"])
        out[column] = psi(ref["shares"], shares, epsilon=epsilon)
    return out
