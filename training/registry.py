"""MLflow model registry: log a candidate, gate it against the champion, move aliases, roll back.

Aliases, never registry stages: ``champion`` serves, ``challenger`` awaits approval, ``previous``
is where a rollback goes, ``rejected`` marks the newest rejected candidate. Every alias move is
recorded as tags on the model version (who, when, from which run, why).
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from recops.constants import (
    CHALLENGER_ALIAS,
    CHAMPION_ALIAS,
    PREVIOUS_ALIAS,
    REJECTED_ALIAS,
)
from recops.settings import Settings

GATE_METRIC = "ndcg@10"


class RegistryError(RuntimeError):
    """A registry action could not be carried out (missing version, alias, model)."""


class CandidateInfo(BaseModel):
    run_id: str
    version: str
    model_uri: str
    experiment_id: str


class GateDecision(BaseModel):
    passed: bool
    reason: str
    candidate: dict[str, float]
    champion: dict[str, float] | None = None
    champion_version: str | None = None


class AliasMove(BaseModel):
    alias: str
    version: str
    previous_version: str | None = None
    actor: str
    reason: str
    at: str


def client(settings: Settings):  # -> mlflow.MlflowClient
    """An MlflowClient on the profile's tracking URI (artifact root under ``RECOPS_HOME``)."""
    import mlflow

    if settings.profile == "embedded":
        settings.mlflow_dir.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    mlflow.set_registry_uri(settings.mlflow_tracking_uri)
    return mlflow.MlflowClient(settings.mlflow_tracking_uri, settings.mlflow_tracking_uri)


def ensure_experiment(settings: Settings) -> str:
    """Create the experiment (artifacts under ``RECOPS_HOME``) if needed; return its id."""
    c = client(settings)
    exp = c.get_experiment_by_name(settings.experiment_name)
    if exp is not None:
        return exp.experiment_id
    return c.create_experiment(
        settings.experiment_name, artifact_location=settings.mlflow_artifact_root.as_uri()
    )


def _flatten_metrics(metrics: dict[str, dict[str, float]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for model, values in metrics.items():
        for name, value in values.items():
            if value is None:
                continue
            key = name if model == "ranker" else f"{model}.{name}"
            out[key.replace("@", "_at_")] = float(value)
    return out


def log_candidate(
    settings: Settings,
    *,
    booster: Any,
    params: dict[str, Any],
    metrics: dict[str, dict[str, float]],
    artifacts: dict[str, Path],
    tags: dict[str, str],
    run_name: str,
) -> CandidateInfo:
    """Log one training run (params, metrics of the ranker and each retriever, artifacts, Booster)
    and register the Booster as a new version of ``settings.model_name``."""
    import mlflow
    import mlflow.lightgbm

    experiment_id = ensure_experiment(settings)
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run:
        mlflow.log_params({k: (json.dumps(v) if isinstance(v, (dict, list)) else v) for k, v in params.items()})
        mlflow.log_metrics(_flatten_metrics(metrics))
        mlflow.set_tags(tags)
        for folder, path in artifacts.items():
            if path.is_dir():
                mlflow.log_artifacts(str(path), artifact_path=folder)
            else:
                mlflow.log_artifact(str(path), artifact_path=folder)
        info = mlflow.lightgbm.log_model(
            booster, name="model", registered_model_name=settings.model_name
        )
        run_id = run.info.run_id
    version = str(info.registered_model_version)
    c = client(settings)
    for key, value in tags.items():
        c.set_model_version_tag(settings.model_name, version, key, value)
    c.set_model_version_tag(settings.model_name, version, "recops.run_id", run_id)
    for key, value in _flatten_metrics(metrics).items():
        if "." not in key:
            c.set_model_version_tag(settings.model_name, version, f"metric.{key}", f"{value:.6f}")
    return CandidateInfo(
        run_id=run_id,
        version=version,
        model_uri=f"models:/{settings.model_name}/{version}",
        experiment_id=experiment_id,
    )


def alias_version(settings: Settings, alias: str) -> str | None:
    """The version an alias points at, or ``None``."""
    c = client(settings)
    try:
        return str(c.get_model_version_by_alias(settings.model_name, alias).version)
    except Exception as exc:  # mlflow raises MlflowException (RESOURCE_DOES_NOT_EXIST)
        if "not found" in str(exc).lower() or "does not exist" in str(exc).lower() or "RESOURCE_DOES_NOT_EXIST" in str(exc):
            return None
        raise


def gate(
    candidate: dict[str, float],
    champion: dict[str, float] | None,
    *,
    champion_version: str | None,
    min_gain: float,
) -> GateDecision:
    """The automatic gate: pass the first model, or one whose NDCG@10 beats the champion's on the
    same holdout by more than ``min_gain``."""
    if champion is None:
        return GateDecision(passed=True, reason="no champion yet: the first model is promoted", candidate=candidate)
    cand, champ = candidate[GATE_METRIC], champion[GATE_METRIC]
    passed = cand > champ + min_gain
    verdict = "beats" if passed else "does not beat"
    reason = (
        f"candidate {GATE_METRIC}={cand:.4f} {verdict} champion v{champion_version} "
        f"{GATE_METRIC}={champ:.4f} + min gain {min_gain:.4f} on the same holdout"
    )
    return GateDecision(
        passed=passed, reason=reason, candidate=candidate, champion=champion, champion_version=champion_version
    )


def _record(settings: Settings, version: str, alias: str, actor: str, reason: str, prev: str | None) -> AliasMove:
    c = client(settings)
    now = datetime.now(UTC).isoformat(timespec="seconds")
    move = AliasMove(alias=alias, version=version, previous_version=prev, actor=actor, reason=reason, at=now)
    run_id = c.get_model_version(settings.model_name, version).run_id
    c.set_model_version_tag(settings.model_name, version, f"alias.{alias}.at", now)
    c.set_model_version_tag(settings.model_name, version, f"alias.{alias}.by", actor)
    c.set_model_version_tag(settings.model_name, version, f"alias.{alias}.reason", reason)
    c.set_model_version_tag(settings.model_name, version, f"alias.{alias}.from_run", run_id or "")
    history = json.loads(
        c.get_registered_model(settings.model_name).tags.get("recops.alias_history", "[]")
    )
    history.append(move.model_dump())
    c.set_registered_model_tag(settings.model_name, "recops.alias_history", json.dumps(history[-50:]))
    return move


def set_alias(settings: Settings, alias: str, version: str, *, actor: str, reason: str) -> AliasMove:
    """Point ``alias`` at ``version`` and record who, when, from which run and why."""
    c = client(settings)
    c.get_model_version(settings.model_name, version)  # raises if missing
    prev = alias_version(settings, alias)
    c.set_registered_model_alias(settings.model_name, alias, version)
    return _record(settings, version, alias, actor, reason, prev)


def promote(settings: Settings, version: str, *, actor: str, reason: str) -> AliasMove:
    """Make ``version`` the champion; the old champion keeps the alias ``previous``."""
    old = alias_version(settings, CHAMPION_ALIAS)
    if old == version:
        return set_alias(settings, CHAMPION_ALIAS, version, actor=actor, reason=reason)
    if old is not None:
        set_alias(settings, PREVIOUS_ALIAS, old, actor=actor, reason=f"replaced by v{version}")
    move = set_alias(settings, CHAMPION_ALIAS, version, actor=actor, reason=reason)
    if alias_version(settings, CHALLENGER_ALIAS) == version:
        client(settings).delete_registered_model_alias(settings.model_name, CHALLENGER_ALIAS)
    return move


def reject(settings: Settings, version: str, *, actor: str, reason: str) -> AliasMove:
    """Mark ``version`` rejected (alias ``rejected`` + a decision tag); the champion stays."""
    c = client(settings)
    c.set_model_version_tag(settings.model_name, version, "recops.decision", "rejected")
    c.set_model_version_tag(settings.model_name, version, "recops.decision_reason", reason)
    if alias_version(settings, CHALLENGER_ALIAS) == version:
        c.delete_registered_model_alias(settings.model_name, CHALLENGER_ALIAS)
    return set_alias(settings, REJECTED_ALIAS, version, actor=actor, reason=reason)


def rollback(settings: Settings, *, to_version: str | None = None, actor: str | None = None) -> AliasMove:
    """Move ``champion`` back: to ``to_version``, or by default to the ``previous`` alias."""
    actor = actor or os.environ.get("USER", "recops")
    current = alias_version(settings, CHAMPION_ALIAS)
    target = to_version or alias_version(settings, PREVIOUS_ALIAS)
    if target is None:
        raise RegistryError(f"no version to roll back to: {settings.model_name} has no alias '{PREVIOUS_ALIAS}'")
    if current is None:
        raise RegistryError(f"{settings.model_name} has no champion to roll back")
    if target == current:
        raise RegistryError(f"v{target} is already the champion")
    move = set_alias(settings, CHAMPION_ALIAS, target, actor=actor, reason=f"rollback from v{current}")
    set_alias(settings, PREVIOUS_ALIAS, current, actor=actor, reason=f"rolled back to v{target}")
    return move


def load_booster(settings: Settings, ref: str):  # -> lightgbm.Booster
    """Load a registered Booster by alias (``champion``) or version number."""
    import mlflow.lightgbm

    client(settings)
    uri = f"models:/{settings.model_name}/{ref}" if ref.isdigit() else f"models:/{settings.model_name}@{ref}"
    return mlflow.lightgbm.load_model(uri)


def download_run_artifact(settings: Settings, version: str, artifact_path: str) -> Path:
    """Download one artifact of the run that produced ``version``."""
    import mlflow

    c = client(settings)
    run_id = c.get_model_version(settings.model_name, version).run_id
    return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=artifact_path, tracking_uri=settings.mlflow_tracking_uri))


def version_metrics(settings: Settings, version: str) -> dict[str, float]:
    """The metrics logged in the run of ``version``."""
    c = client(settings)
    run_id = c.get_model_version(settings.model_name, version).run_id
    return dict(c.get_run(run_id).data.metrics)
