"""Erasing one customer from what training left: the serving bundles (retrievers and history
stats that know the pseudonymised id) and the Parquet frames (training sets, holdouts) of every
run, in ``$RECOPS_HOME/runs`` and in the MLflow artifacts of every run of the experiment.
Orchestrated by :mod:`recops.app.forget`."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recops.core.privacy import ErasureError, scrub_parquet
from recops.core.settings import Settings


def _drop_row(matrix: Any, pos: int) -> Any:
    if sp.issparse(matrix):
        keep = np.ones(matrix.shape[0], dtype=bool)
        keep[pos] = False
        return matrix.tocsr()[np.flatnonzero(keep)]
    return np.delete(np.asarray(matrix), pos, axis=0)


# Per class: the attributes holding one row per entry of ``user_index``.
_USER_ROWS: dict[str, tuple[str, ...]] = {
    "Popularity": (),
    "Repeat": ("matrix",),
    "ItemCF": ("profiles",),
    "Content": ("profiles",),
    "ALS": ("user_factors",),
    "HistoryStats": ("counts", "last_day"),
}


def _scrub_user_state(obj: Any, key: str) -> int:
    """Remove ``key`` from one fitted retriever / HistoryStats in place; 1 if it knew the user."""
    name = type(obj).__name__
    index = getattr(obj, "user_index", None)
    changed = 0
    if index is not None and len(index):
        pos = index.get_indexer([key])[0]
        if pos >= 0:
            if name not in _USER_ROWS:
                raise ErasureError(f"forget does not know how to remove a user from {name}")
            for attr in _USER_ROWS[name]:
                setattr(obj, attr, _drop_row(getattr(obj, attr), pos))
            obj.user_index = index.delete(pos)
            changed = 1
    prices = getattr(obj, "user_mean_price", None)
    if isinstance(prices, pd.Series) and key in prices.index:
        obj.user_mean_price = prices.drop(index=key)
        changed = 1
    return changed


def scrub_bundle(bundle: Any, key: str) -> int:
    """Remove a pseudonymised user from a serving bundle (``RecommenderBundle``) in place.
    Returns how many of its components knew the user."""
    parts = [*getattr(bundle, "retrievers", []), getattr(bundle, "stats", None)]
    return sum(_scrub_user_state(p, key) for p in parts if p is not None)


def scrub_bundle_file(path: Path, key: str) -> int:
    import joblib

    bundle = joblib.load(path)
    changed = scrub_bundle(bundle, key)
    if changed:
        tmp = path.with_name(f".{path.name}.erasure")
        joblib.dump(bundle, tmp, compress=3)
        os.replace(tmp, path)
    return changed


def scrub_file(path: Path, key: str, original: str) -> int:
    """Rows (Parquet) or bundle components (joblib) removed from one file."""
    if path.suffix == ".parquet":
        return scrub_parquet(path, {key, original})
    if path.suffix == ".joblib":
        return scrub_bundle_file(path, key)
    return 0


def _files(root: Path, suffixes: tuple[str, ...] = (".parquet", ".joblib")) -> Iterator[Path]:
    if root.exists():
        yield from sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in suffixes)


def erase_run_files(settings: Settings, key: str, original: str) -> dict[str, int]:
    """Training sets, holdouts and bundles in ``$RECOPS_HOME/runs`` (rows / components removed)."""
    rows = bundles = 0
    for path in _files(settings.home / "runs"):
        n = scrub_file(path, key, original)
        rows, bundles = (rows + n, bundles) if path.suffix == ".parquet" else (rows, bundles + n)
    return {"runs.parquet_rows": rows, "runs.bundles": bundles}


def erase_model_artifacts(settings: Settings, key: str, original: str) -> dict[str, int]:
    """Rewrite the MLflow artifacts (bundles, holdout frames) of every run of the experiment."""
    if settings.profile == "embedded" and not (settings.mlflow_dir / "mlflow.db").exists():
        return {"mlflow.parquet_rows": 0, "mlflow.bundles": 0}
    from recops.core.registry import BUNDLE_SHA_TAG, client, sha256_file

    c = client(settings)
    experiment = c.get_experiment_by_name(settings.experiment_name)
    rows = bundles = 0
    if experiment is None:
        return {"mlflow.parquet_rows": 0, "mlflow.bundles": 0}
    token = None
    while True:
        page = c.search_runs([experiment.experiment_id], max_results=500, page_token=token)
        for run in page:
            for artifact in _artifacts(c, run.info.run_id):
                with tempfile.TemporaryDirectory() as tmp:
                    local = Path(c.download_artifacts(run.info.run_id, artifact, tmp))
                    n = scrub_file(local, key, original)
                    if n:
                        folder = os.path.dirname(artifact) or None
                        c.log_artifact(run.info.run_id, str(local), artifact_path=folder)
                        if local.suffix == ".joblib":  # an authorised rewrite: record its new digest
                            _retag_bundle(c, settings, run.info.run_id, BUNDLE_SHA_TAG, sha256_file(local))
                if local.suffix == ".parquet":
                    rows += n
                else:
                    bundles += n
        token = page.token
        if not token:
            break
    return {"mlflow.parquet_rows": rows, "mlflow.bundles": bundles}


def _retag_bundle(c, settings: Settings, run_id: str, tag: str, digest: str) -> None:
    """The registered versions of ``run_id`` get the scrubbed bundle's SHA-256 (the serving
    bundle is checked against it before it is loaded)."""
    for mv in c.search_model_versions(f"name = '{settings.model_name}' and run_id = '{run_id}'"):
        c.set_model_version_tag(settings.model_name, mv.version, tag, digest)


def _artifacts(c, run_id: str, path: str | None = None) -> Iterator[str]:
    for info in c.list_artifacts(run_id, path):
        if info.is_dir:
            yield from _artifacts(c, run_id, info.path)
        elif info.path.endswith((".parquet", ".joblib")):
            yield info.path
