"""Reading the MLflow model registry: the client, where an alias points, a version's tags and
artifacts, and its booster (checked against the SHA-256 recorded when it was registered).

Writes (registering a candidate, moving aliases) live in :mod:`recops.training.registry`; the API
only reads. Only MLflow's client API is used, never the fluent API: ``mlflow.set_tracking_uri``
would write ``MLFLOW_TRACKING_URI`` into the process environment.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from recops.core.constants import PIPELINE_DAG_ID
from recops.core.settings import Settings

if TYPE_CHECKING:
    from lightgbm import Booster
    from mlflow import MlflowClient

MODEL_ARTIFACT = "model"
BOOSTER_FILE = "model.lgb"  # what mlflow.lightgbm.save_model writes
MODEL_SHA_TAG = "recops.sha256.model"
BUNDLE_SHA_TAG = "recops.sha256.bundle"


class RegistryError(RuntimeError):
    """A registry action could not be carried out (missing version, alias, model)."""


class IntegrityError(RegistryError):
    """An artifact's SHA-256 differs from the one recorded when its version was registered."""


def client(settings: Settings) -> MlflowClient:
    """An MlflowClient on the profile's tracking URI (artifact root under ``RECOPS_HOME``)."""
    from mlflow import MlflowClient

    if settings.profile == "embedded":
        settings.mlflow_dir.mkdir(parents=True, exist_ok=True)
    return MlflowClient(tracking_uri=settings.mlflow_tracking_uri, registry_uri=settings.mlflow_tracking_uri)


def alias_version(settings: Settings, alias: str) -> str | None:
    """The version an alias points at, or ``None``."""
    try:
        return str(client(settings).get_model_version_by_alias(settings.model_name, alias).version)
    except Exception as exc:  # mlflow raises MlflowException (RESOURCE_DOES_NOT_EXIST)
        text = str(exc)
        if "not found" in text.lower() or "does not exist" in text.lower() or "RESOURCE_DOES_NOT_EXIST" in text:
            return None
        raise


def version_ref(settings: Settings, ref: str) -> str:
    """A version number for a version number or an alias."""
    if ref.isdigit():
        return ref
    version = alias_version(settings, ref)
    if version is None:
        raise RegistryError(f"{settings.model_name} has no alias {ref!r}")
    return version


def version_tags(settings: Settings, version: str) -> dict[str, str]:
    return dict(client(settings).get_model_version(settings.model_name, version).tags)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def download_run_artifact(settings: Settings, version: str, artifact_path: str, dst: Path | None = None) -> Path:
    """Download one artifact of the run that produced ``version`` (into ``dst`` or a new
    temporary folder)."""
    c = client(settings)
    run_id = c.get_model_version(settings.model_name, version).run_id
    target = dst or Path(tempfile.mkdtemp(prefix="recops-artifact-"))
    target.mkdir(parents=True, exist_ok=True)
    return Path(c.download_artifacts(run_id, artifact_path, str(target)))


def verified_artifact(settings: Settings, version: str, artifact_path: str, tag: str, dst: Path) -> Path:
    """Download an artifact and check its SHA-256 against the version's ``tag``; raise
    :class:`IntegrityError` on a mismatch (or a missing tag) before anyone loads it."""
    path = download_run_artifact(settings, version, artifact_path, dst)
    expected = version_tags(settings, version).get(tag)
    actual = sha256_file(path)
    if expected != actual:
        raise IntegrityError(
            f"{settings.model_name} v{version}: {artifact_path} has SHA-256 {actual}, "
            f"the registry recorded {expected or 'none'}: refusing to load it"
        )
    return path


def booster_file(settings: Settings, ref: str, dst: Path) -> Path:
    """The verified LightGBM model file of a version (or alias), downloaded into ``dst``."""
    version = version_ref(settings, ref)
    return verified_artifact(settings, version, f"{MODEL_ARTIFACT}/{BOOSTER_FILE}", MODEL_SHA_TAG, dst)


def load_booster(settings: Settings, ref: str) -> Booster:
    """Load a registered Booster by alias (``champion``) or version number (SHA-256 checked)."""
    import lightgbm as lgb

    with tempfile.TemporaryDirectory() as tmp:
        return lgb.Booster(model_file=str(booster_file(settings, ref, Path(tmp))))


# --- what people read: links and the versions' records -------------------------------------------
MOVES_TAG = "recops.alias_moves"
GATE_TAGS = ("recops.cutoff", "recops.data_interval", "recops.dbt", "recops.gx", "recops.gate",
             "recops.gate_reason", "recops.decision", "recops.decision_reason")


def mlflow_links(settings: Settings, *, experiment_id: str, run_id: str, version: str) -> dict[str, str]:
    """Links to a version's MLflow run and model version (``settings.mlflow_ui_url``)."""
    base = settings.mlflow_ui_url.rstrip("/")
    return {
        "run": f"{base}/#/experiments/{experiment_id}/runs/{run_id}",
        "model_version": f"{base}/#/models/{settings.model_name}/versions/{version}",
    }


def airflow_run_link(settings: Settings, origin: str | None) -> str | None:
    """The Airflow UI page of the DAG run behind an alias move's ``origin`` (``dag_id/run_id``)."""
    if not origin or "/" not in origin:
        return None
    dag_id, _, run_id = origin.partition("/")
    return f"{settings.airflow_url}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"


def pipeline_origin(tags: dict[str, str]) -> str | None:
    """The ``recops_pipeline/<run_id>`` that registered a version: the origin of its first alias
    move by the pipeline (its gate decision), from the moves list or the per-alias tags."""
    try:
        moves = json.loads(tags.get(MOVES_TAG) or "[]")
    except ValueError:
        moves = []
    origins = [m.get("origin") for m in moves if isinstance(m, dict)]
    origins += [v for k, v in sorted(tags.items()) if k.startswith("alias.") and k.endswith(".origin")]
    return next((o for o in origins if o and o.startswith(f"{PIPELINE_DAG_ID}/")), None)


def recent_versions(settings: Settings, limit: int = 10) -> list[dict[str, Any]]:
    """The newest registered versions (one per pipeline run that got as far as registering a
    model), newest first: aliases, gate and decision tags, offline NDCG@10, the Airflow run,
    and links to Airflow and MLflow."""
    c = client(settings)
    try:
        aliases = dict(c.get_registered_model(settings.model_name).aliases)
    except Exception as exc:  # no model registered yet
        if "not found" in str(exc).lower() or "RESOURCE_DOES_NOT_EXIST" in str(exc):
            return []
        raise
    by_version: dict[str, list[str]] = {}
    for alias, version in aliases.items():
        by_version.setdefault(str(version), []).append(alias)
    versions = c.search_model_versions(f"name = '{settings.model_name}'", max_results=200)
    newest = sorted(versions, key=lambda mv: int(mv.version), reverse=True)[:limit]
    out = []
    for mv in newest:
        tags = dict(mv.tags)
        run = c.get_run(mv.run_id) if mv.run_id else None
        origin = pipeline_origin(tags)
        out.append({
            "version": str(mv.version),
            "registered_at": datetime.fromtimestamp(mv.creation_timestamp / 1000, UTC).isoformat(timespec="seconds"),
            "aliases": sorted(by_version.get(str(mv.version), [])),
            "mlflow_run_id": mv.run_id,
            "airflow_run_id": origin.partition("/")[2] if origin else None,
            "ndcg_at_10": float(tags["metric.ndcg_at_10"]) if tags.get("metric.ndcg_at_10") else None,
            **{key.removeprefix("recops."): tags.get(key) for key in GATE_TAGS},
            "links": {
                "airflow_run": airflow_run_link(settings, origin),
                **(mlflow_links(settings, experiment_id=run.info.experiment_id, run_id=mv.run_id,
                                version=str(mv.version)) if run else {}),
            },
        })
    return out
