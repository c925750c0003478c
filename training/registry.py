"""MLflow model registry: log a candidate, move aliases, roll back.

Aliases, never registry stages: ``champion`` serves, ``challenger`` awaits approval, ``previous``
is where a rollback goes, ``rejected`` marks the newest rejected candidate. Every alias move is
recorded on the model version (tags ``alias.<alias>.at|by|reason|from_run|origin`` plus the JSON
list ``recops.alias_moves``) and on the registered model (``recops.alias_history``), so MLflow's
UI shows who moved what, when, from which run and why. The gate itself lives in
:mod:`recops.training.promotion`.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import UTC, datetime
from importlib.metadata import version as package_version
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from recops.core.constants import (
    CHALLENGER_ALIAS,
    CHAMPION_ALIAS,
    PREVIOUS_ALIAS,
    REJECTED_ALIAS,
)
from recops.core.registry import (
    BOOSTER_FILE,
    BUNDLE_SHA_TAG,
    MODEL_ARTIFACT,
    MODEL_SHA_TAG,
    MOVES_TAG,
    RegistryError,
    alias_version,
    client,
    download_run_artifact,
    load_booster,
    sha256_file,
)
from recops.core.settings import Settings

__all__ = ["RegistryError", "alias_version", "client", "download_run_artifact", "load_booster"]

if TYPE_CHECKING:
    from lightgbm import Booster

HISTORY_TAG = "recops.alias_history"
REGISTERED_MODEL_TAG_MAX = 5000
"""MLflow keeps registered-model tag values in a VARCHAR(5000): the history keeps what fits."""


class CandidateInfo(BaseModel):
    run_id: str
    version: str
    model_uri: str
    experiment_id: str


class AliasMove(BaseModel):
    """One alias move, as recorded in the registry."""

    alias: str
    version: str
    action: Literal["set", "removed"] = "set"
    previous_version: str | None = Field(default=None, description="Where the alias pointed before.")
    actor: str = Field(description="Who: an Airflow user, the pipeline, or the CLI user.")
    reason: str
    at: str = Field(description="When (UTC, ISO 8601).")
    from_run: str | None = Field(default=None, description="The MLflow run that produced the version.")
    origin: str = Field(default="cli", description="What moved it: dag_id/run_id, or 'cli'.")


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
    booster: Booster,
    params: dict[str, Any],
    metrics: dict[str, dict[str, float]],
    artifacts: dict[str, Path],
    tags: dict[str, str],
    run_name: str,
) -> CandidateInfo:
    """Log one training run (params, metrics of the ranker and each retriever, artifacts, Booster)
    and register the Booster as a new version of ``settings.model_name``."""
    import mlflow.lightgbm
    from mlflow.entities import Metric, Param, RunTag

    c = client(settings)
    experiment_id = ensure_experiment(settings)
    run = c.create_run(experiment_id, run_name=run_name, tags=tags)
    run_id = run.info.run_id
    stamp = int(datetime.now(UTC).timestamp() * 1000)
    flat = {k: (json.dumps(v) if isinstance(v, dict | list) else v) for k, v in params.items()}
    c.log_batch(
        run_id,
        metrics=[Metric(k, v, stamp, 0) for k, v in _flatten_metrics(metrics).items()],
        params=[Param(k, str(v)) for k, v in flat.items()],
        tags=[RunTag(k, v) for k, v in tags.items()],
    )
    digests: dict[str, str] = {}
    for folder, path in artifacts.items():
        if path.is_dir():
            c.log_artifacts(run_id, str(path), artifact_path=folder)
        else:
            c.log_artifact(run_id, str(path), artifact_path=folder)
            if folder == "bundle":
                digests[BUNDLE_SHA_TAG] = sha256_file(path)
    with tempfile.TemporaryDirectory() as tmp:
        # explicit requirements: inferring them runs `uv export` (seconds) for every candidate
        requirements = [f"lightgbm=={package_version('lightgbm')}"]
        mlflow.lightgbm.save_model(booster, f"{tmp}/{MODEL_ARTIFACT}", pip_requirements=requirements)
        digests[MODEL_SHA_TAG] = sha256_file(Path(tmp) / MODEL_ARTIFACT / BOOSTER_FILE)
        c.log_artifacts(run_id, f"{tmp}/{MODEL_ARTIFACT}", artifact_path=MODEL_ARTIFACT)
    c.set_terminated(run_id)
    try:
        c.create_registered_model(settings.model_name)
    except Exception as exc:  # MlflowException RESOURCE_ALREADY_EXISTS
        if "already exists" not in str(exc).lower() and "RESOURCE_ALREADY_EXISTS" not in str(exc):
            raise
    version = str(
        c.create_model_version(
            settings.model_name,
            source=f"{run.info.artifact_uri}/{MODEL_ARTIFACT}",
            run_id=run_id,
            tags={**tags, **digests},
        ).version
    )
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


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _fit_history(moves: list[dict[str, Any]], limit: int = REGISTERED_MODEL_TAG_MAX) -> str:
    """The newest moves whose JSON fits in ``limit`` characters."""
    kept = list(moves)
    text = json.dumps(kept)
    while kept and len(text) > limit:
        kept.pop(0)
        text = json.dumps(kept)
    return text


def _record(settings: Settings, move: AliasMove) -> AliasMove:
    """Write ``move`` on the model version (per-alias tags + its move list) and the model history."""
    c = client(settings)
    name = settings.model_name
    mv = c.get_model_version(name, move.version)
    if move.action == "set":
        for key, value in (
            ("at", move.at),
            ("by", move.actor),
            ("reason", move.reason),
            ("from_run", move.from_run or ""),
            ("origin", move.origin),
        ):
            c.set_model_version_tag(name, move.version, f"alias.{move.alias}.{key}", value)
    moves = json.loads(mv.tags.get(MOVES_TAG, "[]"))
    moves.append(move.model_dump())
    c.set_model_version_tag(name, move.version, MOVES_TAG, json.dumps(moves))
    history = json.loads(c.get_registered_model(name).tags.get(HISTORY_TAG, "[]"))
    history.append(move.model_dump())
    c.set_registered_model_tag(name, HISTORY_TAG, _fit_history(history))
    return move


def set_alias(
    settings: Settings, alias: str, version: str, *, actor: str, reason: str, origin: str = "cli"
) -> AliasMove:
    """Point ``alias`` at ``version`` and record who, when, from which run and why."""
    c = client(settings)
    mv = c.get_model_version(settings.model_name, version)  # raises if missing
    prev = alias_version(settings, alias)
    c.set_registered_model_alias(settings.model_name, alias, version)
    move = AliasMove(
        alias=alias, version=version, previous_version=prev, actor=actor, reason=reason,
        at=_now(), from_run=mv.run_id, origin=origin,
    )
    return _record(settings, move)


def remove_alias(
    settings: Settings, alias: str, *, actor: str, reason: str, origin: str = "cli"
) -> AliasMove | None:
    """Delete ``alias`` (if set) and record it on the version it pointed at."""
    version = alias_version(settings, alias)
    if version is None:
        return None
    c = client(settings)
    c.delete_registered_model_alias(settings.model_name, alias)
    move = AliasMove(
        alias=alias, version=version, action="removed", previous_version=version, actor=actor,
        reason=reason, at=_now(), from_run=c.get_model_version(settings.model_name, version).run_id,
        origin=origin,
    )
    return _record(settings, move)


def promote(
    settings: Settings, version: str, *, actor: str, reason: str, origin: str = "cli"
) -> AliasMove:
    """Make ``version`` the champion; the old champion keeps the alias ``previous``."""
    old = alias_version(settings, CHAMPION_ALIAS)
    if old is not None and old != version:
        set_alias(settings, PREVIOUS_ALIAS, old, actor=actor, reason=f"replaced by v{version}", origin=origin)
    move = set_alias(settings, CHAMPION_ALIAS, version, actor=actor, reason=reason, origin=origin)
    c = client(settings)
    c.set_model_version_tag(settings.model_name, version, "recops.decision", "promoted")
    c.set_model_version_tag(settings.model_name, version, "recops.decision_reason", reason)
    for stale in (CHALLENGER_ALIAS, REJECTED_ALIAS):  # e.g. re-asked after a reject, then approved
        if alias_version(settings, stale) == version:
            remove_alias(settings, stale, actor=actor, reason=f"promoted to {CHAMPION_ALIAS}", origin=origin)
    return move


def reject(
    settings: Settings, version: str, *, actor: str, reason: str, origin: str = "cli"
) -> AliasMove:
    """Mark ``version`` rejected (alias ``rejected`` + decision tags); the champion stays."""
    c = client(settings)
    c.set_model_version_tag(settings.model_name, version, "recops.decision", "rejected")
    c.set_model_version_tag(settings.model_name, version, "recops.decision_reason", reason)
    if alias_version(settings, CHALLENGER_ALIAS) == version:
        remove_alias(settings, CHALLENGER_ALIAS, actor=actor, reason="rejected", origin=origin)
    return set_alias(settings, REJECTED_ALIAS, version, actor=actor, reason=reason, origin=origin)


def served_before(settings: Settings, version: str) -> bool:
    """Whether ``version`` has ever held the alias ``champion``."""
    tags = client(settings).get_model_version(settings.model_name, version).tags
    return f"alias.{CHAMPION_ALIAS}.at" in tags


def rollback(
    settings: Settings,
    *,
    to_version: str | None = None,
    actor: str | None = None,
    reason: str | None = None,
    origin: str = "cli",
) -> AliasMove:
    """Move ``champion`` back: to ``to_version``, or by default to the ``previous`` alias.

    The target must have served before (held ``champion``); the version being replaced takes the
    alias ``previous``, so a second rollback undoes the first."""
    actor = actor or os.environ.get("USER", "recops")
    current = alias_version(settings, CHAMPION_ALIAS)
    target = str(to_version) if to_version else alias_version(settings, PREVIOUS_ALIAS)
    if current is None:
        raise RegistryError(f"{settings.model_name} has no champion to roll back")
    if target is None:
        raise RegistryError(f"no version to roll back to: {settings.model_name} has no alias '{PREVIOUS_ALIAS}'")
    if target == current:
        raise RegistryError(f"v{target} is already the champion")
    try:
        client(settings).get_model_version(settings.model_name, target)
    except Exception as exc:
        raise RegistryError(f"{settings.model_name} has no version {target}") from exc
    if not served_before(settings, target):
        raise RegistryError(f"v{target} never served as {CHAMPION_ALIAS}: promote it through the gate instead")
    why = f"rollback from v{current}" + (f": {reason}" if reason else "")
    move = set_alias(settings, CHAMPION_ALIAS, target, actor=actor, reason=why, origin=origin)
    set_alias(settings, PREVIOUS_ALIAS, current, actor=actor, reason=f"rolled back to v{target}", origin=origin)
    return move


def alias_history(settings: Settings) -> list[dict[str, Any]]:
    """The newest alias moves of the model (oldest first), as recorded on the registered model."""
    return json.loads(client(settings).get_registered_model(settings.model_name).tags.get(HISTORY_TAG, "[]"))


def version_metrics(settings: Settings, version: str) -> dict[str, float]:
    """The metrics logged in the run of ``version``."""
    c = client(settings)
    run_id = c.get_model_version(settings.model_name, version).run_id
    return dict(c.get_run(run_id).data.metrics)
