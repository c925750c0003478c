"""PSI functions: hand-computed cases, edge cases and named errors (pure, no GX)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from recops.quality.drift import (
    DriftInputError,
    bin_shares,
    build_reference,
    psi,
    psi_against_reference,
    psi_between,
    psi_critical_value,
    quantile_edges,
)


def test_identical_shares_have_zero_psi() -> None:
    assert psi([0.25, 0.25, 0.5, 0.0], [0.25, 0.25, 0.5, 0.0]) == 0.0


def test_hand_computed_psi() -> None:
    # (0.3-0.5)ln(0.3/0.5) + (0.7-0.5)ln(0.7/0.5)
    expected = -0.2 * math.log(0.6) + 0.2 * math.log(1.4)
    assert psi([0.5, 0.5], [0.3, 0.7]) == pytest.approx(expected, rel=1e-12)
    assert psi([0.5, 0.5], [0.3, 0.7]) == pytest.approx(0.16945, abs=1e-5)


def test_psi_is_symmetric_in_its_arguments() -> None:
    assert psi([0.1, 0.9], [0.6, 0.4]) == pytest.approx(psi([0.6, 0.4], [0.1, 0.9]))


def test_empty_bin_is_floored_not_infinite() -> None:
    value = psi([0.5, 0.5, 0.0], [0.4, 0.4, 0.2], epsilon=1e-4)
    assert math.isfinite(value)
    assert value == pytest.approx(2 * (-0.1 * math.log(0.8)) + (0.2 - 1e-4) * math.log(0.2 / 1e-4))


def test_bad_inputs_raise_named_errors() -> None:
    with pytest.raises(DriftInputError):
        psi([0.5, 0.5], [1.0])
    with pytest.raises(DriftInputError):
        psi([], [])
    with pytest.raises(DriftInputError):
        psi([1.5, -0.5], [0.5, 0.5])
    with pytest.raises(DriftInputError):
        psi([0.5, 0.5], [0.5, 0.5], epsilon=0)
    with pytest.raises(DriftInputError):
        quantile_edges([1, 2, 3], n_bins=1)


def test_quantile_edges_and_ties() -> None:
    assert quantile_edges(np.arange(1, 101), n_bins=4) == pytest.approx([25.75, 50.5, 75.25])
    # 70% zeros: the deciles 10%..60% are all 0 and collapse into one cut point;
    # 70%, 80%, 90% interpolate at sorted positions 69.3, 79.2 and 89.1 of 0..99
    assert quantile_edges([0] * 70 + list(range(1, 31)), n_bins=10) == pytest.approx(
        [0.0, 0.3, 10.2, 20.1]
    )
    assert quantile_edges([np.nan, None]) == []


def test_bin_shares_count_missing_values_in_their_own_bin() -> None:
    shares = bin_shares([1, 2, 3, 4, np.nan, None], [2.0, 3.0])
    # (-inf, 2], (2, 3], (3, inf), missing
    assert shares == pytest.approx([2 / 6, 1 / 6, 1 / 6, 2 / 6])
    assert bin_shares([], [1.0]) == [0.0, 0.0, 0.0]


def test_psi_between_detects_a_shift_and_ignores_resampling() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(0, 1, 20_000)
    same = rng.normal(0, 1, 20_000)
    shifted = rng.normal(0.5, 1, 20_000)
    assert psi_between(base, same) < 0.01
    assert 0.1 < psi_between(base, shifted) < 0.5
    assert psi_between(base, rng.normal(2, 1, 20_000)) > 1.0


def test_more_missing_values_are_drift() -> None:
    base = pd.Series(np.arange(1000, dtype="float64"))
    holes = base.copy()
    holes.iloc[::2] = np.nan
    assert psi_between(base, holes) > 0.25


def test_reference_round_trip_is_json_friendly() -> None:
    frame = pd.DataFrame(
        {"a": np.arange(100), "b": [True, False] * 50, "c": np.r_[np.zeros(90), np.ones(10)]}
    )
    reference = build_reference(frame, ["a", "b", "c"], n_bins=5)
    assert set(reference) == {"a", "b", "c"}
    assert reference["a"]["rows"] == 100
    assert all(isinstance(x, float) for x in reference["a"]["edges"] + reference["a"]["shares"])
    scores = psi_against_reference(reference, frame)
    assert scores == {"a": 0.0, "b": 0.0, "c": 0.0}
    assert psi_against_reference(reference, frame.drop(columns=["c"])).keys() == {"a", "b"}


def test_psi_critical_value_hand_computed() -> None:
    # (1/100 + 1/100) * chi2.ppf(0.999, 9) = 0.02 * 27.8772
    assert psi_critical_value(10, 100, 100, confidence=0.999) == pytest.approx(0.557543, abs=1e-6)
    # large samples: far below the rule-of-thumb thresholds
    assert psi_critical_value(10, 20_000, 20_000, confidence=0.999) < 0.003
    # one filled bin still has one degree of freedom
    assert psi_critical_value(1, 10, 10, confidence=0.99) == pytest.approx(0.2 * 6.634897, 1e-6)
    with pytest.raises(DriftInputError):
        psi_critical_value(10, 0, 5, confidence=0.99)
    with pytest.raises(DriftInputError):
        psi_critical_value(10, 5, 5, confidence=1.0)


def test_critical_value_bounds_the_noise_of_equal_distributions() -> None:
    # 400 draws of PSI between two samples of 100 from one distribution: the 0.25 rule of thumb
    # is exceeded by a quarter of them, the 99.9% critical value by about 1% (the asymptotic
    # value is a little optimistic on 100 values: bins are cut on the reference sample itself)
    rng = np.random.default_rng(3)
    values = [psi_between(rng.gamma(2, 20, 100), rng.gamma(2, 20, 100)) for _ in range(400)]
    limit = psi_critical_value(10, 100, 100, confidence=0.999)
    assert sum(v > limit for v in values) <= 8
    assert sum(v > 0.25 for v in values) > 60


def test_reference_records_its_sample_size() -> None:
    frame = pd.DataFrame({"q": [1, 1, 1, 2, 2, 3], "u": [5.0, 5.0, 5.0, 7.0, 7.0, np.nan]})
    assert build_reference(frame, ["u"])["u"]["samples"] == 6
    reference = build_reference(frame, ["u"], samples=frame["q"].nunique())
    assert (reference["u"]["samples"], reference["u"]["rows"]) == (3, 6)
