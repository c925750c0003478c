"""The automatic gate: slices, scoring two boosters on one saved holdout, the decision rules, and
what the approvers read."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recops.training.approval import approval_body, approval_subject, mlflow_links
from recops.training.artifacts import load_holdout
from recops.training.promotion import (
    SLICES,
    ModelReport,
    Thresholds,
    assign_slices,
    decide,
    model_report,
)

N_USERS, N_ITEMS = 40, 15
THRESHOLDS = Thresholds(
    min_ndcg_gain=0.0,
    max_regression={"cold_users": 0.05, "light_buyers": 0.02, "heavy_buyers": 0.02},
    min_slice_users=5,
)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder as ``train_stage`` leaves it: every user's relevant item is the candidate
    with the highest ``f_signal``."""
    rng = np.random.default_rng(7)
    rows = []
    for u in range(N_USERS):
        signal = rng.permutation(N_ITEMS).astype(float)
        for i in range(N_ITEMS):
            rows.append({"user_id": f"u{u:02d}", "item_id": f"i{i:02d}", "f_signal": signal[i], "f_noise": rng.normal()})
    frame = pd.DataFrame(rows)
    best = frame.loc[frame.groupby("user_id")["f_signal"].idxmax(), ["user_id", "item_id"]]
    path = tmp_path_factory.mktemp("run")
    frame.to_parquet(path / "holdout.parquet", index=False)
    best.assign(kind="evaluated").to_parquet(path / "holdout_truth.parquet", index=False)
    (path / "holdout.json").write_text(
        json.dumps({"protocol": "v1", "cutoff": "2026-03-04T00:00:00", "k": 10, "n_items": N_ITEMS, "depth": 50})
    )
    return path


def purchases() -> pd.Series:
    """u00-u09: 1 purchase (cold), u10-u19: 2-3 (light), u20-u29: 5, u30-u39: 9-12 (heavy)."""
    counts = [1] * 10 + [2, 3] * 5 + [5] * 10 + [9, 10, 11, 12] * 2 + [9, 10]
    return pd.Series(counts, index=[f"u{u:02d}" for u in range(N_USERS)])


def test_slices_are_disjoint_and_follow_the_rules() -> None:
    slices = assign_slices(purchases(), cold_max_purchases=1, light_quantile=0.25, heavy_quantile=0.75)
    assert slices["cold_users"] == [f"u{u:02d}" for u in range(10)]
    # quantiles of the 30 non-cold users: q25 = 3, q75 = 9
    assert slices["light_buyers"] == [f"u{u:02d}" for u in range(10, 20)]
    assert set(slices["heavy_buyers"]) == {f"u{u:02d}" for u in range(30, 40)}
    members = [u for name in SLICES for u in slices[name]]
    assert len(members) == len(set(members))
    assert assign_slices(pd.Series(dtype=int), cold_max_purchases=1, light_quantile=0.25, heavy_quantile=0.75) == {
        name: [] for name in SLICES
    }


def test_both_models_scored_on_the_same_holdout(run_dir: Path, registry_data) -> None:
    holdout = load_holdout(run_dir)
    assert holdout.users == [f"u{u:02d}" for u in range(N_USERS)] and holdout.k == 10
    slices = {"cold_users": ["u00", "u01"], "light_buyers": [f"u{u:02d}" for u in range(10, 20)], "heavy_buyers": []}
    good = model_report(registry_data.train_booster(+1.0), holdout, slices)
    bad = model_report(registry_data.train_booster(-1.0), holdout, slices)
    assert good.overall["ndcg@10"] == pytest.approx(1.0)
    assert good.overall["n_users"] == N_USERS
    assert bad.overall["ndcg@10"] < 0.2  # the relevant item ranks last of 15: outside the top 10
    assert good.slices["cold_users"] == {"ndcg@10": pytest.approx(1.0), "n_users": 2.0}
    assert good.slices["light_buyers"]["n_users"] == 10.0
    assert good.slices["heavy_buyers"] == {"ndcg@10": None, "n_users": 0.0}


def report(overall: float, **slices: tuple[float, int]) -> ModelReport:
    return ModelReport(
        overall={"ndcg@10": overall, "recall@10": overall, "n_users": 100.0},
        slices={name: {"ndcg@10": slices.get(name, (overall, 50))[0], "n_users": float(slices.get(name, (overall, 50))[1])} for name in SLICES},
    )


def test_the_gate_judges_at_any_k(run_dir: Path, registry_data) -> None:
    """``RECOPS_K=5``: the holdout's metrics are @5, and so is the gate (not a missing @10)."""
    from dataclasses import replace

    holdout = replace(load_holdout(run_dir), k=5)
    slices = {"cold_users": [], "light_buyers": [f"u{u:02d}" for u in range(10, 20)], "heavy_buyers": []}
    good = model_report(registry_data.train_booster(+1.0), holdout, slices)
    bad = model_report(registry_data.train_booster(-1.0), holdout, slices)
    assert good.metric == "ndcg@5" and "ndcg@10" not in good.overall
    assert good.overall["ndcg@5"] == pytest.approx(1.0) and good.slices["light_buyers"]["ndcg@5"] == pytest.approx(1.0)
    passed = decide(good, bad, candidate_version="2", champion_version="1", thresholds=THRESHOLDS)
    failed = decide(bad, good, candidate_version="3", champion_version="2", thresholds=THRESHOLDS)
    assert passed.passed and passed.reason.startswith("passed: ndcg@5 1.0000 vs champion v1")
    assert not failed.passed and {c.metric for c in failed.checks} == {"ndcg@5"}


def test_a_model_needing_features_the_holdout_lacks_is_not_scored(run_dir: Path, registry_data) -> None:
    from dataclasses import replace

    from recops.training.artifacts import MissingFeaturesError

    holdout = load_holdout(run_dir)
    without = replace(holdout, frame=holdout.frame.drop(columns=["f_noise"]))
    with pytest.raises(MissingFeaturesError, match=r"lacks features \['f_noise'\]"):
        model_report(registry_data.train_booster(+1.0), without, {})


def test_first_model_passes_without_comparison() -> None:
    decision = decide(report(0.1), None, candidate_version="1", champion_version=None, thresholds=THRESHOLDS)
    assert decision.passed and decision.checks == [] and "no champion yet" in decision.reason


def test_gain_must_exceed_the_minimum() -> None:
    same = decide(report(0.5), report(0.5), candidate_version="2", champion_version="1", thresholds=THRESHOLDS)
    assert not same.passed and [c.name for c in same.failed_checks] == ["overall"]
    assert same.reason.startswith("failed: overall ndcg@10 0.5000 vs 0.5000 (delta +0.0000), gain > 0.0000: FAILED")
    better = decide(report(0.51), report(0.5), candidate_version="2", champion_version="1", thresholds=THRESHOLDS)
    assert better.passed and better.reason.startswith("passed: ndcg@10 0.5100 vs champion v1 0.5000")
    permissive = THRESHOLDS.model_copy(update={"min_ndcg_gain": -1.0})
    assert decide(report(0.5), report(0.5), candidate_version="2", champion_version="1", thresholds=permissive).passed


def test_a_slice_regression_fails_an_overall_gain() -> None:
    cand = report(0.60, heavy_buyers=(0.70, 30), cold_users=(0.31, 20))
    champ = report(0.55, heavy_buyers=(0.75, 30), cold_users=(0.35, 20))
    decision = decide(cand, champ, candidate_version="2", champion_version="1", thresholds=THRESHOLDS)
    assert not decision.passed
    assert [c.name for c in decision.failed_checks] == ["heavy_buyers"]  # -0.05 > 0.02; cold -0.04 <= 0.05
    heavy = decision.failed_checks[0]
    assert heavy.delta == pytest.approx(-0.05) and heavy.threshold == 0.02 and heavy.enforced


def test_small_slices_are_reported_not_enforced() -> None:
    cand = report(0.60, light_buyers=(0.10, 4))
    champ = report(0.55, light_buyers=(0.90, 4))
    decision = decide(cand, champ, candidate_version="2", champion_version="1", thresholds=THRESHOLDS)
    assert decision.passed
    light = next(c for c in decision.checks if c.name == "light_buyers")
    assert not light.enforced and light.passed and light.delta == pytest.approx(-0.8)


def test_approval_body_shows_the_comparison_and_links(tmp_path: Path, registry_data) -> None:
    settings = registry_data.settings_for(tmp_path, mlflow_ui_url="http://mlflow.example:5000/")
    cand = report(0.60, heavy_buyers=(0.80, 30))
    champ = report(0.55, heavy_buyers=(0.79, 30))
    decision = decide(cand, champ, candidate_version="7", champion_version="6", thresholds=THRESHOLDS)
    links = mlflow_links(settings, experiment_id="3", run_id="abc", version="7")
    assert links["run"] == "http://mlflow.example:5000/#/experiments/3/runs/abc"
    body = approval_body(settings, decision, links=links, cutoff="2026-03-04", data_interval="a/b")
    assert approval_subject(settings, decision) == f"Promote {settings.model_name} v7 to champion? (current: v6)"
    assert "| metric | candidate v7 | champion v6 | delta | rule |" in body
    assert "| ndcg@10 (all users) | 0.6000 | 0.5500 | +0.0500 | gain > 0.0000: ok |" in body
    assert "| ndcg@10 heavy buyers (30) | 0.8000 | 0.7900 | +0.0100 | drop <= 0.0200: ok |" in body
    assert f"[training run]({links['run']})" in body and f"[model version v7]({links['model_version']})" in body
    assert "v6 keeps the alias `previous`" in body and "**Data interval:** a/b" in body
