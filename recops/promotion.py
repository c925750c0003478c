"""Gated promotion: the candidate against the champion on the newest holdout, the human approval's
outcome, and rollback.

The Airflow tasks of ``recops_pipeline`` (``promotion_gate``, ``promote_champion``,
``record_rejection``) and of ``recops_rollback``, and the ``recops rollback`` command, call these
functions; every registry write goes through :mod:`recops.training.registry`, which records each
alias move (who, when, from which run, why) on the model version.

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

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from recops.constants import CHALLENGER_ALIAS, CHAMPION_ALIAS, ITEM_COL, PREVIOUS_ALIAS, USER_COL
from recops.settings import Settings, get_settings

if TYPE_CHECKING:
    import lightgbm as lgb
    import pandas as pd

log = logging.getLogger(__name__)

GATE_METRIC = "ndcg@10"
REPORT_METRICS = ("ndcg@10", "recall@10", "hitrate@10", "map@10", "coverage")
SLICES = ("cold_users", "light_buyers", "heavy_buyers")
SLICE_TITLES = {"cold_users": "cold users", "light_buyers": "light buyers", "heavy_buyers": "heavy buyers"}
GATE_FILE = "gate.json"
MODEL_FILE = "model.txt"
PIPELINE_ACTOR = "recops-pipeline"

AWAITING_APPROVAL = "awaiting_approval"
PROMOTED = "promoted"
REJECTED = "rejected"
ALREADY_CHAMPION = "already_champion"


class PromotionError(RuntimeError):
    """A promotion step cannot go ahead (e.g. the champion moved since the gate judged)."""


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


def history_purchases(settings: Settings, users: list, cutoff: pd.Timestamp) -> pd.Series:
    """Purchases before ``cutoff`` per user (0 for users with none), from ``fct_interactions``."""
    from recops.warehouse import Warehouse

    schema = "public" if settings.profile == "production" else "main"
    with Warehouse(settings, read_only=settings.profile == "embedded") as wh:
        counts = wh.query_df(
            f"select user_id, count(*) as count_purchases from {schema}.fct_interactions "
            "where event_type = 'purchase' and event_at < ? group by user_id",
            [cutoff.to_pydatetime()],
        )
    series = counts.set_index(USER_COL)["count_purchases"].astype(int)
    return series.reindex(users, fill_value=0)


# --- scoring both models on one holdout --------------------------------------------------------
@dataclass(frozen=True)
class Holdout:
    """What a run folder holds to judge any booster: candidates with features, truth, k."""

    run_dir: Path
    frame: pd.DataFrame
    truth: pd.DataFrame  # evaluated users' relevant (user_id, item_id)
    cutoff: pd.Timestamp
    k: int

    @property
    def users(self) -> list:
        return sorted(self.truth[USER_COL].unique())


def load_holdout(run_dir: Path) -> Holdout:
    """Read the holdout a training run left in ``run_dir`` (see ``recops.training.artifacts``)."""
    import pandas as pd

    from recops.training.artifacts import HOLDOUT_FILE, HOLDOUT_META_FILE, HOLDOUT_TRUTH_FILE

    run_dir = Path(run_dir)
    meta = json.loads((run_dir / HOLDOUT_META_FILE).read_text())
    truth = pd.read_parquet(run_dir / HOLDOUT_TRUTH_FILE)
    return Holdout(
        run_dir=run_dir,
        frame=pd.read_parquet(run_dir / HOLDOUT_FILE),
        truth=truth.loc[truth["kind"] == "evaluated", [USER_COL, ITEM_COL]].reset_index(drop=True),
        cutoff=pd.Timestamp(meta["cutoff"]),
        k=int(meta["k"]),
    )


def user_metrics(booster: lgb.Booster, holdout: Holdout) -> pd.DataFrame:
    """Per evaluated user (index): ndcg, recall, hitrate, map at the holdout's k for ``booster``
    ranking the holdout's candidates. Features the booster needs but the holdout lacks are NaN."""
    from recops.training.metrics import per_user_metrics
    from recops.training.train import rank_candidates

    feature_cols = booster.feature_name()
    frame = holdout.frame
    missing = [c for c in feature_cols if c not in frame.columns]
    if missing:
        log.warning("holdout lacks features %s of this booster: scored as missing", missing)
        frame = frame.reindex(columns=[*frame.columns, *missing])
    recs = rank_candidates(booster, feature_cols, frame)
    return per_user_metrics(holdout.truth, recs, k=holdout.k)


class ModelReport(BaseModel):
    """One model on the holdout: protocol-v1 metrics, and NDCG@k with user counts per slice."""

    overall: dict[str, float | None]
    slices: dict[str, dict[str, float | None]]


def model_report(booster: lgb.Booster, holdout: Holdout, slices: dict[str, list]) -> ModelReport:
    """Score ``booster`` on ``holdout``: overall (``score_holdout``) and per slice."""
    from recops.training.artifacts import score_holdout

    overall = score_holdout(booster, holdout.run_dir)
    per_user = user_metrics(booster, holdout)
    out: dict[str, dict[str, float | None]] = {}
    for name in SLICES:
        rows = per_user.loc[per_user.index.intersection(slices.get(name, []))]
        out[name] = {
            GATE_METRIC: float(rows["ndcg"].mean()) if len(rows) else None,
            "n_users": float(len(rows)),
        }
    return ModelReport(overall=overall, slices=out)


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


def _delta(cand: float | None, champ: float | None) -> float | None:
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
    cand, champ = candidate.overall.get(GATE_METRIC), champion.overall.get(GATE_METRIC)
    gain = _delta(cand, champ)
    checks = [
        GateCheck(
            name="overall",
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
        delta = _delta(c_slice.get(GATE_METRIC), h_slice.get(GATE_METRIC))
        allowed = thresholds.max_regression[name]
        enforced = n_users >= thresholds.min_slice_users and delta is not None
        checks.append(
            GateCheck(
                name=name,
                n_users=n_users,
                candidate=c_slice.get(GATE_METRIC),
                champion=h_slice.get(GATE_METRIC),
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
            f"passed: {GATE_METRIC} {cand:.4f} vs champion v{champion_version} {champ:.4f} "
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


# --- what a human sees -------------------------------------------------------------------------
def mlflow_links(settings: Settings, *, experiment_id: str, run_id: str, version: str) -> dict[str, str]:
    """Links to the candidate's MLflow run and model version (``settings.mlflow_ui_url``)."""
    base = settings.mlflow_ui_url.rstrip("/")
    return {
        "run": f"{base}/#/experiments/{experiment_id}/runs/{run_id}",
        "model_version": f"{base}/#/models/{settings.model_name}/versions/{version}",
    }


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _fmt_delta(value: float | None) -> str:
    return "-" if value is None else f"{value:+.4f}"


def approval_subject(settings: Settings, decision: GateDecision) -> str:
    champ = f"v{decision.champion_version}" if decision.champion_version else "no champion yet"
    return f"Promote {settings.model_name} v{decision.candidate_version} to champion? (current: {champ})"


def approval_body(
    settings: Settings,
    decision: GateDecision,
    *,
    links: dict[str, str],
    cutoff: str,
    data_interval: str | None = None,
) -> str:
    """Markdown for the approval request: candidate-vs-champion table, the gate's verdict, links."""
    cand_v, champ_v = decision.candidate_version, decision.champion_version
    champ_head = f"champion v{champ_v}" if champ_v else "champion (none)"
    champion = decision.champion
    n_users = int(decision.candidate.overall.get("n_users") or 0)
    lines = [
        f"**{settings.model_name} v{cand_v}** (alias `{CHALLENGER_ALIAS}`) against the current "
        f"champion on the same, newest holdout: cutoff {cutoff}, {n_users} evaluated users.",
        "",
        f"| metric | candidate v{cand_v} | {champ_head} | delta | rule |",
        "|---|---:|---:|---:|---|",
    ]
    checks = {c.name: c for c in decision.checks}
    for metric in REPORT_METRICS:
        cand = decision.candidate.overall.get(metric)
        champ = champion.overall.get(metric) if champion else None
        rule = ""
        if metric == GATE_METRIC and "overall" in checks:
            c = checks["overall"]
            rule = f"gain > {c.threshold:.4f}: {'ok' if c.passed else 'FAILED'}"
        lines.append(f"| {metric} (all users) | {_fmt(cand)} | {_fmt(champ)} | {_fmt_delta(_delta(cand, champ))} | {rule} |")
    for name in SLICES:
        cand_slice = decision.candidate.slices.get(name, {})
        champ_slice = champion.slices.get(name, {}) if champion else {}
        cand, champ = cand_slice.get(GATE_METRIC), champ_slice.get(GATE_METRIC)
        rule = ""
        if name in checks:
            c = checks[name]
            state = ("ok" if c.passed else "FAILED") if c.enforced else "not enforced"
            rule = f"drop <= {c.threshold:.4f}: {state}"
        title = f"{GATE_METRIC} {SLICE_TITLES[name]} ({int(cand_slice.get('n_users') or 0)})"
        lines.append(f"| {title} | {_fmt(cand)} | {_fmt(champ)} | {_fmt_delta(_delta(cand, champ))} | {rule} |")
    timeout = settings.approval_timeout_minutes
    after = f"v{champ_v} keeps the alias `{PREVIOUS_ALIAS}`" if champ_v else "it becomes the first champion"
    lines += [
        "",
        f"**Automatic gate:** {decision.reason}.",
        "",
        f"**MLflow:** [training run]({links['run']}) · [model version v{cand_v}]({links['model_version']})",
    ]
    if data_interval:
        lines += ["", f"**Data interval:** {data_interval}"]
    lines += [
        "",
        f"**Approve** moves `{CHAMPION_ALIAS}` to v{cand_v} ({after}); the API picks it up within "
        f"{settings.model_refresh_seconds:g} s. **Reject**, or no answer within {timeout} minutes, "
        "leaves the champion where it is. Your reason is recorded on the model version.",
    ]
    return "\n".join(lines)


# --- records -----------------------------------------------------------------------------------
def _flat(prefix: str, report: ModelReport) -> dict[str, float]:
    out: dict[str, float] = {}
    for metric, value in report.overall.items():
        if value is not None:
            out[f"{prefix}.{metric}".replace("@", "_at_")] = float(value)
    for name, values in report.slices.items():
        for metric, value in values.items():
            if value is not None:
                out[f"{prefix}.slice.{name}.{metric}".replace("@", "_at_")] = float(value)
    return out


def record_gate(settings: Settings, decision: GateDecision, *, run_id: str, run_dir: Path) -> Path:
    """Keep the verdict: ``gate.json`` in the run folder and as an MLflow artifact, gate metrics
    (candidate and champion on the same holdout, per slice) on the candidate's run, and tags on
    the model version."""
    from recops.training.registry import client

    path = Path(run_dir) / GATE_FILE
    text = decision.model_dump_json(indent=2)
    path.write_text(text)
    c = client(settings)
    metrics = _flat("gate.candidate", decision.candidate)
    if decision.champion is not None:
        metrics.update(_flat("gate.champion", decision.champion))
    for key, value in metrics.items():
        c.log_metric(run_id, key, value)
    c.set_tag(run_id, "recops.gate", "passed" if decision.passed else "failed")
    c.log_text(run_id, text, f"gate/{GATE_FILE}")
    version = decision.candidate_version
    tags = {
        "recops.gate": "passed" if decision.passed else "failed",
        "recops.gate_reason": f"promotion gate {decision.reason}",
        "recops.gate_champion_version": decision.champion_version or "",
    }
    for name, values in decision.candidate.slices.items():
        if values.get(GATE_METRIC) is not None:
            tags[f"metric.slice.{name}.ndcg_at_10"] = f"{values[GATE_METRIC]:.6f}"
    for key, value in tags.items():
        c.set_model_version_tag(settings.model_name, version, key, value)
    return path


def gate_alert(settings: Settings, decision: GateDecision, *, run_id: str, links: dict[str, str]):
    """Alert (through the quality notifiers) that the gate rejected a candidate."""
    from recops.quality.notifiers import Alert, send_alert
    from recops.quality.results import ERROR, FailedExpectation

    failures = [
        FailedExpectation(
            expectation=f"promotion_gate.{'ndcg_gain' if c.name == 'overall' else 'slice_regression'}",
            column=c.name,
            severity=ERROR,
            observed={"candidate": c.candidate, "champion": c.champion, "delta": c.delta, "n_users": c.n_users},
            threshold={"rule": c.rule, "value": c.threshold},
            suite="promotion_gate",
            description=c.line(),
        )
        for c in decision.failed_checks
    ]
    alert = Alert(
        kind="quality_gate",
        severity=ERROR,
        title=(
            f"Promotion gate rejected {settings.model_name} v{decision.candidate_version}: "
            f"champion v{decision.champion_version} stays"
        ),
        run_id=run_id,
        stage="promotion_gate",
        suite="promotion_gate",
        failures=failures,
        dag_id="recops_pipeline",
        task_id="promotion_gate",
        exception=decision.reason,
        log_url=links.get("model_version"),
    )
    delivered = send_alert(settings, alert)
    return alert, delivered


# --- the stages --------------------------------------------------------------------------------
def run_gate(
    candidate: dict[str, Any],
    *,
    auto_promote: bool,
    settings: Settings,
    actor: str = PIPELINE_ACTOR,
    run_id: str | None = None,
    origin: str = "cli",
) -> dict[str, Any]:
    """Judge the registered candidate against the champion; then reject it (and alert), promote it
    (``auto_promote``), or give it the alias ``challenger`` and prepare the approval request.

    ``candidate`` is ``register_stage``'s output (version, run_id, experiment_id, run_dir, cutoff).
    Returns ``{version, action, gate, approval: {subject, body}, links}`` (JSON-able, for XCom).
    """
    import lightgbm as lgb

    from recops.training.registry import alias_version, load_booster, promote, reject, set_alias

    version = str(candidate["version"])
    run_dir = Path(candidate["run_dir"])
    links = mlflow_links(
        settings, experiment_id=candidate["experiment_id"], run_id=candidate["run_id"], version=version
    )
    champion_version = alias_version(settings, CHAMPION_ALIAS)
    if champion_version == version:  # a re-run after this very version was promoted
        return {"version": version, "action": ALREADY_CHAMPION, "gate": None, "approval": None, "links": links}

    holdout = load_holdout(run_dir)
    purchases = history_purchases(settings, holdout.users, holdout.cutoff)
    slices = assign_slices(
        purchases,
        cold_max_purchases=settings.promotion_cold_user_max_purchases,
        light_quantile=settings.promotion_light_buyer_quantile,
        heavy_quantile=settings.promotion_heavy_buyer_quantile,
    )
    cand_report = model_report(lgb.Booster(model_file=str(run_dir / MODEL_FILE)), holdout, slices)
    champ_report = (
        model_report(load_booster(settings, champion_version), holdout, slices)
        if champion_version is not None
        else None
    )
    decision = decide(
        cand_report,
        champ_report,
        candidate_version=version,
        champion_version=champion_version,
        thresholds=Thresholds.from_settings(settings),
    )
    record_gate(settings, decision, run_id=candidate["run_id"], run_dir=run_dir)
    approval = None
    if not decision.passed:
        reject(settings, version, actor=actor, reason=f"promotion gate {decision.reason}", origin=origin)
        gate_alert(settings, decision, run_id=run_id or origin, links=links)
        action = REJECTED
    elif auto_promote:
        promote(settings, version, actor=actor, reason=f"auto-promoted, promotion gate {decision.reason}", origin=origin)
        action = PROMOTED
    else:
        set_alias(
            settings, CHALLENGER_ALIAS, version, actor=actor,
            reason=f"promotion gate {decision.reason}; awaiting approval", origin=origin,
        )
        action = AWAITING_APPROVAL
        approval = {
            "subject": approval_subject(settings, decision),
            "body": approval_body(
                settings,
                decision,
                links=links,
                cutoff=str(candidate.get("cutoff") or holdout.cutoff.date()),
                data_interval=_version_tag(settings, version, "recops.data_interval"),
            ),
        }
    return {
        "version": version,
        "action": action,
        "gate": json.loads(decision.model_dump_json()),
        "approval": approval,
        "links": links,
    }


def _version_tag(settings: Settings, version: str, key: str) -> str | None:
    from recops.training.registry import client

    return client(settings).get_model_version(settings.model_name, version).tags.get(key)


def _responder(approval: dict[str, Any] | None) -> str | None:
    user = (approval or {}).get("responded_by_user") or {}
    return user.get("name") or user.get("id")


def _note(approval: dict[str, Any] | None) -> str:
    return str(((approval or {}).get("params_input") or {}).get("reason") or "").strip()


def approve_stage(
    decision: dict[str, Any],
    approval: dict[str, Any],
    *,
    settings: Settings | None = None,
    origin: str = "cli",
) -> dict[str, Any]:
    """A human approved: ``champion`` moves to the candidate, the old champion keeps ``previous``.

    Refuses (``PromotionError``) when the champion moved since the gate judged the candidate: the
    approver saw a comparison with a model that no longer serves."""
    from recops.training.registry import alias_version, client, promote

    settings = settings or get_settings()
    version = decision["version"]
    judged_against = (decision.get("gate") or {}).get("champion_version")
    current = alias_version(settings, CHAMPION_ALIAS)
    if current == version:
        return {"version": version, "action": ALREADY_CHAMPION}
    if current != judged_against:
        raise PromotionError(
            f"champion moved from v{judged_against} to v{current} since the gate judged v{version}: "
            "re-run the pipeline to compare against the serving model"
        )
    user = _responder(approval) or "unknown"
    note = _note(approval)
    reason = f"approved in Airflow by {user}" + (f": {note}" if note else "")
    move = promote(settings, version, actor=user, reason=reason, origin=origin)
    c = client(settings)
    c.set_model_version_tag(settings.model_name, version, "recops.approved_by", user)
    c.set_model_version_tag(settings.model_name, version, "recops.approved_at", str(approval.get("responded_at")))
    return {"version": version, "action": PROMOTED, "move": move.model_dump(), "previous": current}


def rejection_stage(
    decision: dict[str, Any],
    approval: dict[str, Any] | None,
    *,
    settings: Settings | None = None,
    origin: str = "cli",
) -> dict[str, Any]:
    """A human rejected, or nobody answered in time: nothing moves; the reason is recorded (tags
    ``recops.decision``/``recops.decision_reason``, alias ``rejected``)."""
    from recops.training.registry import reject

    settings = settings or get_settings()
    version = decision["version"]
    user = _responder(approval)
    note = _note(approval)
    if user is None or (approval or {}).get("timedout"):
        actor = "airflow (approval timeout)"
        reason = f"no approval within {settings.approval_timeout_minutes} minutes: timed out, nothing promoted"
        outcome = "timed_out"
    else:
        actor = user
        reason = f"rejected in Airflow by {user}" + (f": {note}" if note else "")
        outcome = "rejected_by_approver"
    move = reject(settings, version, actor=actor, reason=reason, origin=origin)
    return {"version": version, "action": REJECTED, "outcome": outcome, "reason": reason, "move": move.model_dump()}


def rollback_stage(
    *,
    settings: Settings | None = None,
    to_version: str | None = None,
    actor: str | None = None,
    reason: str | None = None,
    origin: str = "cli",
) -> dict[str, Any]:
    """Move ``champion`` back (default: to ``previous``), recorded like every alias move."""
    from recops.training.registry import rollback

    move = rollback(settings or get_settings(), to_version=to_version, actor=actor, reason=reason, origin=origin)
    return move.model_dump()


def champion_summary(settings: Settings | None = None) -> dict[str, str | None]:
    """Where the aliases point now."""
    from recops.constants import REJECTED_ALIAS
    from recops.training.registry import alias_version

    settings = settings or get_settings()
    return {
        alias: alias_version(settings, alias)
        for alias in (CHAMPION_ALIAS, PREVIOUS_ALIAS, CHALLENGER_ALIAS, REJECTED_ALIAS)
    }

