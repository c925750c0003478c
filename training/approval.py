"""What follows the promotion gate: reject (and alert), promote, or ask a human; the human's
approval or rejection; rollback.

The Airflow tasks of ``recops_pipeline`` (``promotion_gate``, ``promote_champion``,
``record_rejection``) and of ``recops_rollback``, and the ``recops rollback`` command, call these
functions; every registry write goes through :mod:`recops.training.registry`, which records each
alias move (who, when, from which run, why) on the model version. The verdict itself comes from
:mod:`recops.training.promotion`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recops.core.alerts import ERROR, Alert, FailedExpectation, send_alert
from recops.core.constants import (
    ALREADY_CHAMPION,
    AWAITING_APPROVAL,
    CHALLENGER_ALIAS,
    CHAMPION_ALIAS,
    PIPELINE_ACTOR,
    PIPELINE_DAG_ID,
    PREVIOUS_ALIAS,
    PROMOTED,
    REJECTED,
    REJECTED_ALIAS,
)
from recops.core.marts import purchases_before
from recops.core.registry import mlflow_links
from recops.core.settings import Settings
from recops.training.artifacts import MODEL_FILE, SavedHoldout, load_holdout
from recops.training.promotion import (
    SLICE_TITLES,
    SLICES,
    GateDecision,
    ModelReport,
    Thresholds,
    assign_slices,
    decide,
    metric_delta,
    model_report,
    report_metrics,
)

if TYPE_CHECKING:
    import lightgbm as lgb

log = logging.getLogger(__name__)

GATE_FILE = "gate.json"


class PromotionError(RuntimeError):
    """A promotion step cannot go ahead (e.g. the champion moved since the gate judged)."""


# --- what a human sees -------------------------------------------------------------------------
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
    gate = decision.candidate.metric
    for metric in report_metrics(decision.candidate.k):
        cand = decision.candidate.overall.get(metric)
        champ = champion.overall.get(metric) if champion else None
        rule = ""
        if metric == gate and "overall" in checks:
            c = checks["overall"]
            rule = f"gain > {c.threshold:.4f}: {'ok' if c.passed else 'FAILED'}"
        lines.append(f"| {metric} (all users) | {_fmt(cand)} | {_fmt(champ)} | {_fmt_delta(metric_delta(cand, champ))} | {rule} |")
    for name in SLICES:
        cand_slice = decision.candidate.slices.get(name, {})
        champ_slice = champion.slices.get(name, {}) if champion else {}
        cand, champ = cand_slice.get(gate), champ_slice.get(gate)
        rule = ""
        if name in checks:
            c = checks[name]
            state = ("ok" if c.passed else "FAILED") if c.enforced else "not enforced"
            rule = f"drop <= {c.threshold:.4f}: {state}"
        title = f"{gate} {SLICE_TITLES[name]} ({int(cand_slice.get('n_users') or 0)})"
        lines.append(f"| {title} | {_fmt(cand)} | {_fmt(champ)} | {_fmt_delta(metric_delta(cand, champ))} | {rule} |")
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
    from recops.training.online import online_table

    lines += ["", *online_table(settings, {"champion": champ_v, "candidate": cand_v})]
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
    gate = decision.candidate.metric
    for name, values in decision.candidate.slices.items():
        if values.get(gate) is not None:
            tags[f"metric.slice.{name}.{gate.replace('@', '_at_')}"] = f"{values[gate]:.6f}"
    for key, value in tags.items():
        c.set_model_version_tag(settings.model_name, version, key, value)
    return path


def gate_alert(settings: Settings, decision: GateDecision, *, run_id: str, links: dict[str, str]):
    """Alert (through the alert channels) that the gate rejected a candidate."""
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
        dag_id=PIPELINE_DAG_ID,
        task_id="promotion_gate",
        exception=decision.reason,
        log_url=links.get("model_version"),
    )
    delivered = send_alert(settings, alert)
    return alert, delivered


# --- the stages --------------------------------------------------------------------------------
def judge(
    settings: Settings, booster: lgb.Booster, version: str, holdout: SavedHoldout, champion_version: str | None
) -> GateDecision:
    """Score the candidate and the champion (if any) on the candidate's holdout, overall and per
    slice, and decide."""
    from recops.training.registry import load_booster

    purchases = purchases_before(settings, holdout.users, holdout.cutoff)
    slices = assign_slices(
        purchases,
        cold_max_purchases=settings.promotion_cold_user_max_purchases,
        light_quantile=settings.promotion_light_buyer_quantile,
        heavy_quantile=settings.promotion_heavy_buyer_quantile,
    )
    champion = (
        model_report(load_booster(settings, champion_version), holdout, slices)
        if champion_version is not None
        else None
    )
    return decide(
        model_report(booster, holdout, slices),
        champion,
        candidate_version=version,
        champion_version=champion_version,
        thresholds=Thresholds.from_settings(settings),
    )


def gate_candidate(
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

    from recops.training.registry import alias_version, promote, reject, set_alias

    version = str(candidate["version"])
    run_dir = Path(candidate["run_dir"])
    links = mlflow_links(
        settings, experiment_id=candidate["experiment_id"], run_id=candidate["run_id"], version=version
    )
    champion_version = alias_version(settings, CHAMPION_ALIAS)
    if champion_version == version:  # a re-run after this very version was promoted
        return {"version": version, "action": ALREADY_CHAMPION, "gate": None, "approval": None, "links": links}

    holdout = load_holdout(run_dir)
    decision = judge(settings, lgb.Booster(model_file=str(run_dir / MODEL_FILE)), version, holdout, champion_version)
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


def airflow_admins(users_setting: str) -> list[str]:
    """The admin user names of Airflow's simple auth manager setting (``user:role,user:role``)."""
    admins = []
    for entry in users_setting.split(","):
        name, _, role = entry.strip().partition(":")
        if name and role.strip().lower() == "admin":
            admins.append(name.strip())
    return admins


def approvers_for(
    approvers: list[str], *, triggered_by: str | None, separate_duties: bool, admins: list[str]
) -> list[str]:
    """Who may answer a run's approval request (an empty list: anyone with access to the DAG).

    With separation of duties, a run without listed approvers asks the admins, and whoever
    triggered the run is never among those asked; raises :class:`PromotionError` when that leaves
    nobody (the run's own trigger was the only one allowed to approve)."""
    listed = list(dict.fromkeys(u.strip() for u in approvers if u and u.strip()))
    if not separate_duties:
        return listed
    allowed = [u for u in (listed or admins) if u != triggered_by]
    if not allowed:
        asked = f"approvers {', '.join(listed)}" if listed else "no admins besides them"
        raise PromotionError(
            f"separation of duties (RECOPS_APPROVAL_SEPARATE_DUTIES): {triggered_by!r} triggered this run "
            f"and may not approve its model, and nobody else may ({asked}); "
            "name other approvers in the run's params"
        )
    return allowed


def _version_tag(settings: Settings, version: str, key: str) -> str | None:
    from recops.training.registry import client

    return client(settings).get_model_version(settings.model_name, version).tags.get(key)


def _responder(approval: dict[str, Any] | None) -> str | None:
    user = (approval or {}).get("responded_by_user") or {}
    return user.get("name") or user.get("id")


def _note(approval: dict[str, Any] | None) -> str:
    return str(((approval or {}).get("params_input") or {}).get("reason") or "").strip()


def approve_candidate(
    decision: dict[str, Any],
    approval: dict[str, Any],
    *,
    settings: Settings,
    origin: str = "cli",
) -> dict[str, Any]:
    """A human approved: ``champion`` moves to the candidate, the old champion keeps ``previous``.

    Refuses (``PromotionError``) when the champion moved since the gate judged the candidate: the
    approver saw a comparison with a model that no longer serves."""
    from recops.training.registry import alias_version, client, promote

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


def record_rejection(
    decision: dict[str, Any],
    approval: dict[str, Any] | None,
    *,
    settings: Settings,
    origin: str = "cli",
) -> dict[str, Any]:
    """A human rejected, or nobody answered in time: nothing moves; the reason is recorded (tags
    ``recops.decision``/``recops.decision_reason``, alias ``rejected``)."""
    from recops.training.registry import reject

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


def rollback_champion(
    *,
    settings: Settings,
    to_version: str | None = None,
    actor: str | None = None,
    reason: str | None = None,
    origin: str = "cli",
) -> dict[str, Any]:
    """Move ``champion`` back (default: to ``previous``), recorded like every alias move."""
    from recops.training.registry import rollback

    move = rollback(settings, to_version=to_version, actor=actor, reason=reason, origin=origin)
    return move.model_dump()


def champion_summary(settings: Settings) -> dict[str, str | None]:
    """Where the aliases point now."""
    from recops.training.registry import alias_version

    return {
        alias: alias_version(settings, alias)
        for alias in (CHAMPION_ALIAS, PREVIOUS_ALIAS, CHALLENGER_ALIAS, REJECTED_ALIAS)
    }

