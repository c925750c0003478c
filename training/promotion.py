"""The promotion gate: the candidate against the champion on the newest holdout.

What happens with the verdict (reject and alert, promote, or ask a human; approval, rejection,
rollback) lives in :mod:`recops.training.approval`; every registry write goes through
:mod:`recops.training.registry`.

The gate judges both models on the candidate's run folder: the same users, candidates and Feast
features (``holdout.parquet``), the same truth (``holdout_truth.parquet``), the same code. Overall
NDCG@10 must beat the champion's by more than ``promotion_min_ndcg_gain``; on each slice it may
drop by at most that slice's ``promotion_max_regression_*``. Slices are evaluated users grouped by
their purchases before the cutoff:

- ``cold_users``: at most ``promotion_cold_user_max_purchases`` (default 1). Users with no purchase
  at all (protocol v1's cold users) never reach the ranker: they get the popularity/content
  fallback, which is the same for both models on the same holdout, so the gate's cold slice is
  the coldest users the ranker actually ranks.
- ``light_buyers``: the others at or below their ``promotion_light_buyer_quantile`` of purchases.
- ``heavy_buyers``: the others at or above their ``promotion_heavy_buyer_quantile``.

A slice with fewer than ``promotion_min_slice_users`` users is reported but not enforced.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from recops.core.settings import Settings
from recops.training.artifacts import SavedHoldout, rank_saved_holdout, score_holdout
from recops.training.metrics import per_user_metrics

if TYPE_CHECKING:
    import lightgbm as lgb
    import pandas as pd

log = logging.getLogger(__name__)

GATE_METRIC = "ndcg@10"  # at the default RECOPS_K; a report names its own (ModelReport.metric)


def gate_metric(k: int) -> str:
    """The gate's metric at the holdout's K (``RECOPS_K``)."""
    return f"ndcg@{k}"


def report_metrics(k: int) -> tuple[str, ...]:
    """The protocol-v1 metrics an approval request shows, at K."""
    return (f"ndcg@{k}", f"recall@{k}", f"hitrate@{k}", f"map@{k}", "coverage")
SLICES = ("cold_users", "light_buyers", "heavy_buyers")
SLICE_TITLES = {"cold_users": "cold users", "light_buyers": "light buyers", "heavy_buyers": "heavy buyers"}


# --- thresholds and slices ---------------------------------------------------------------------
class Thresholds(BaseModel):
    """The gate's rules (from settings)."""

    min_ndcg_gain: float
    max_regression: dict[str, float]
    min_slice_users: int

    @classmethod
    def from_settings(cls, settings: Settings) -> Thresholds:
        return cls(
            min_ndcg_gain=settings.promotion_min_ndcg_gain,
            max_regression={
                "cold_users": settings.promotion_max_regression_cold_users,
                "light_buyers": settings.promotion_max_regression_light_buyers,
                "heavy_buyers": settings.promotion_max_regression_heavy_buyers,
            },
            min_slice_users=settings.promotion_min_slice_users,
        )


def assign_slices(
    purchases: pd.Series,
    *,
    cold_max_purchases: int,
    light_quantile: float,
    heavy_quantile: float,
) -> dict[str, list]:
    """Split users (``purchases``: purchases before the cutoff, indexed by user) into the three
    disjoint slices. The buyer quantiles are taken over the users who are not cold."""
    cold = purchases <= cold_max_purchases
    warm = purchases[~cold]
    if warm.empty:
        return {"cold_users": sorted(purchases.index[cold]), "light_buyers": [], "heavy_buyers": []}
    light = ~cold & (purchases <= warm.quantile(light_quantile))
    heavy = ~cold & ~light & (purchases >= warm.quantile(heavy_quantile))
    return {
        "cold_users": sorted(purchases.index[cold]),
        "light_buyers": sorted(purchases.index[light]),
        "heavy_buyers": sorted(purchases.index[heavy]),
    }


# --- scoring both models on one holdout --------------------------------------------------------
def user_metrics(booster: lgb.Booster, holdout: SavedHoldout) -> pd.DataFrame:
    """Per evaluated user (index): ndcg, recall, hitrate, map at the holdout's k for ``booster``
    ranking the holdout's candidates."""
    return per_user_metrics(holdout.truth, rank_saved_holdout(booster, holdout), k=holdout.k)


class ModelReport(BaseModel):
    """One model on the holdout: protocol-v1 metrics, and NDCG@k with user counts per slice."""

    overall: dict[str, float | None]
    slices: dict[str, dict[str, float | None]]
    k: int = 10

    @property
    def metric(self) -> str:
        return gate_metric(self.k)


def model_report(booster: lgb.Booster, holdout: SavedHoldout, slices: dict[str, list]) -> ModelReport:
    """Score ``booster`` on ``holdout``: overall (``score_holdout``) and per slice."""
    overall = score_holdout(booster, holdout)
    metric = gate_metric(holdout.k)
    if metric not in overall:
        raise KeyError(f"the holdout's metrics have no {metric} (they have {sorted(overall)})")
    per_user = user_metrics(booster, holdout)
    out: dict[str, dict[str, float | None]] = {}
    for name in SLICES:
        rows = per_user.loc[per_user.index.intersection(slices.get(name, []))]
        out[name] = {
            metric: float(rows["ndcg"].mean()) if len(rows) else None,
            "n_users": float(len(rows)),
        }
    return ModelReport(overall=overall, slices=out, k=holdout.k)


# --- the decision ------------------------------------------------------------------------------
class GateCheck(BaseModel):
    """One rule of the gate: overall gain, or regression on a slice."""

    name: str = Field(description="'overall' or a slice name.")
    metric: str = GATE_METRIC
    n_users: int
    candidate: float | None
    champion: float | None
    delta: float | None
    rule: str = Field(description="'gain >' (overall) or 'drop <=' (slices).")
    threshold: float
    enforced: bool
    passed: bool

    def line(self) -> str:
        if self.champion is None:
            return f"{self.name}: no champion to compare"
        verdict = "ok" if self.passed else "FAILED"
        if not self.enforced:
            verdict = f"not enforced (< min users, {self.n_users})"
        shown = f"{self.candidate:.4f} vs {self.champion:.4f} (delta {self.delta:+.4f})"
        return f"{self.name} {self.metric} {shown}, {self.rule} {self.threshold:.4f}: {verdict}"


class GateDecision(BaseModel):
    """The gate's verdict with everything it looked at."""

    passed: bool
    reason: str
    candidate_version: str
    champion_version: str | None = None
    candidate: ModelReport
    champion: ModelReport | None = None
    checks: list[GateCheck] = Field(default_factory=list)
    thresholds: Thresholds

    @property
    def failed_checks(self) -> list[GateCheck]:
        return [c for c in self.checks if not c.passed]


def metric_delta(cand: float | None, champ: float | None) -> float | None:
    return None if cand is None or champ is None else cand - champ


def decide(
    candidate: ModelReport,
    champion: ModelReport | None,
    *,
    candidate_version: str,
    champion_version: str | None,
    thresholds: Thresholds,
) -> GateDecision:
    """The automatic gate. Without a champion the candidate passes. Otherwise its NDCG@10 must
    beat the champion's by more than ``min_ndcg_gain`` on the same holdout, and on no slice with
    at least ``min_slice_users`` users may it drop by more than that slice's allowance."""
    if champion is None:
        return GateDecision(
            passed=True,
            reason="passed, no champion yet: the first model needs no comparison",
            candidate_version=candidate_version,
            candidate=candidate,
            thresholds=thresholds,
        )
    metric = candidate.metric
    if champion.k != candidate.k:
        raise ValueError(f"candidate and champion were scored at different K ({candidate.k}, {champion.k})")
    cand, champ = candidate.overall.get(metric), champion.overall.get(metric)
    gain = metric_delta(cand, champ)
    checks = [
        GateCheck(
            name="overall",
            metric=metric,
            n_users=int(candidate.overall.get("n_users") or 0),
            candidate=cand,
            champion=champ,
            delta=gain,
            rule="gain >",
            threshold=thresholds.min_ndcg_gain,
            enforced=True,
            passed=gain is not None and gain > thresholds.min_ndcg_gain,
        )
    ]
    for name in SLICES:
        c_slice, h_slice = candidate.slices.get(name, {}), champion.slices.get(name, {})
        n_users = int(c_slice.get("n_users") or 0)
        delta = metric_delta(c_slice.get(metric), h_slice.get(metric))
        allowed = thresholds.max_regression[name]
        enforced = n_users >= thresholds.min_slice_users and delta is not None
        checks.append(
            GateCheck(
                name=name,
                metric=metric,
                n_users=n_users,
                candidate=c_slice.get(metric),
                champion=h_slice.get(metric),
                delta=delta,
                rule="drop <=",
                threshold=allowed,
                enforced=enforced,
                passed=not enforced or delta >= -allowed,
            )
        )
    failed = [c for c in checks if not c.passed]
    if failed:
        reason = "failed: " + "; ".join(c.line() for c in failed)
    else:
        reason = (
            f"passed: {metric} {cand:.4f} vs champion v{champion_version} {champ:.4f} "
            f"(gain {gain:+.4f} > {thresholds.min_ndcg_gain:.4f}), no slice regressed beyond its allowance"
        )
    return GateDecision(
        passed=not failed,
        reason=reason,
        candidate_version=candidate_version,
        champion_version=champion_version,
        candidate=candidate,
        champion=champion,
        checks=checks,
        thresholds=thresholds,
    )
