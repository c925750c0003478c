"""Drift references: quantile bins of each training set, kept per run under ``quality_dir``.

``validate_training_set`` saves the reference of the frame it checked; ``enforce`` accepts it when
the training-set gate passed. The next run compares against the last *accepted* reference, so a
drifted (rejected) training set never becomes the baseline.

Layout: ``<quality_dir>/references/training_set/<run>.json`` and ``accepted.json`` (run ids in
acceptance order, newest last).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from recops.core.settings import Settings


def safe_name(run_id: str) -> str:
    """A file-system-safe, collision-free name for a run id (Airflow's contain ':' and '+')."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id).strip("._") or "run"
    return f"{slug[:80]}-{hashlib.sha1(run_id.encode()).hexdigest()[:8]}"


def write_json_atomic(path: Path, payload: Any) -> Path:
    """Write JSON through a temporary file and a rename (readers never see half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(payload, indent=1, default=str), encoding="utf-8")
    os.replace(tmp, path)
    return path


def references_dir(settings: Settings) -> Path:
    return settings.quality_dir / "references" / "training_set"


def reference_path(settings: Settings, run_id: str) -> Path:
    return references_dir(settings) / f"{safe_name(run_id)}.json"


def save_reference(settings: Settings, run_id: str, features: dict[str, dict[str, Any]]) -> Path:
    """Store the reference of ``run_id`` (not yet accepted)."""
    return write_json_atomic(
        reference_path(settings, run_id), {"run_id": run_id, "features": features}
    )


def _accepted_file(settings: Settings) -> Path:
    return references_dir(settings) / "accepted.json"


def accepted_runs(settings: Settings) -> list[str]:
    """Run ids whose reference was accepted, oldest first."""
    path = _accepted_file(settings)
    if not path.exists():
        return []
    return list(json.loads(path.read_text(encoding="utf-8"))["runs"])


def accept_reference(settings: Settings, run_id: str) -> bool:
    """Make ``run_id``'s reference the newest baseline. False when it has no saved reference."""
    if not reference_path(settings, run_id).exists():
        return False
    runs = [r for r in accepted_runs(settings) if r != run_id] + [run_id]
    write_json_atomic(_accepted_file(settings), {"runs": runs})
    return True


def latest_reference(
    settings: Settings, *, exclude_run_id: str | None = None
) -> tuple[str, dict] | None:
    """The newest accepted reference other than ``exclude_run_id``: ``(run_id, features)``."""
    for run_id in reversed(accepted_runs(settings)):
        if run_id == exclude_run_id:
            continue
        path = reference_path(settings, run_id)
        if path.exists():
            return run_id, json.loads(path.read_text(encoding="utf-8"))["features"]
    return None
