"""The file of settings `recops tune` chose (``Settings.tuned_settings_path``) and how the
pipeline's training applies it.

The file is JSON: ``{"cutoff": "2010-11-01", "folds": [...], "settings": {"ranker_num_leaves": 15,
...}, ...}``. Only retriever, ranker and candidate settings may be named (:data:`TUNABLE`); each value
is validated with its setting's own type and bounds, and a wrong name or value is an error naming
the file and the setting. ``cutoff`` is the evaluation cutoff the tuning served: every fold's test
window ended before it, so the settings are honest for an evaluation at that cutoff or later.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
from pydantic import TypeAdapter, ValidationError

from recops.core.settings import Settings

# settings a tuning run may choose: the retrievers', the ranker's and the candidate depth
TUNABLE_PREFIXES = ("popularity_", "repeat_", "itemcf_", "content_", "als_", "ranker_")
TUNABLE_EXTRA = ("candidates_per_retriever",)


class TunedSettingsError(ValueError):
    """The tuned-settings file cannot be applied (unreadable, unknown setting, invalid value)."""


def tunable(name: str) -> bool:
    """Whether a tuning run may choose setting ``name``."""
    return name in Settings.model_fields and (name.startswith(TUNABLE_PREFIXES) or name in TUNABLE_EXTRA)


def validated(values: dict[str, Any], *, source: str) -> dict[str, Any]:
    """``values`` checked against their settings' types and bounds (``source`` names the file)."""
    out = {}
    for name, value in values.items():
        if not tunable(name):
            raise TunedSettingsError(f"{source}: setting {name!r} is not one tuning may choose")
        field = Settings.model_fields[name]
        adapter = TypeAdapter(Annotated[(field.annotation, *field.metadata)])
        try:
            out[name] = adapter.validate_python(value)
        except ValidationError as exc:
            raise TunedSettingsError(f"{source}: setting {name!r}: {exc.errors()[0]['msg']} ({value!r})") from exc
    return out


def read_tuned(settings: Settings) -> dict[str, Any] | None:
    """The tuned-settings file's content (``settings`` validated), or None when there is none."""
    path = settings.tuned_settings_path
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise TunedSettingsError(f"{path}: unreadable tuned settings ({exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("settings"), dict):
        raise TunedSettingsError(f"{path}: no 'settings' object")
    data["settings"] = validated(data["settings"], source=str(path))
    return data


def with_tuned_settings(settings: Settings) -> tuple[Settings, dict[str, Any] | None]:
    """``settings`` with the tuned file's values applied (they win over the environment for the
    settings they name), and a summary for the run's record (None without a file)."""
    data = read_tuned(settings)
    if data is None:
        return settings, None
    summary = {
        "file": str(settings.tuned_settings_path),
        "cutoff": data.get("cutoff"),
        "settings": data["settings"],
    }
    return settings.model_copy(update=data["settings"]), summary


def honest_at(summary: dict[str, Any] | None, cutoff: Any) -> bool | None:
    """Whether tuned settings (``summary`` of :func:`with_tuned_settings`) may be judged at
    ``cutoff``: their folds closed before it. None without tuned settings."""
    if summary is None or summary.get("cutoff") is None:
        return None
    return pd.Timestamp(summary["cutoff"]) <= pd.Timestamp(cutoff)


def write_tuned(path: Path, data: dict[str, Any]) -> Path:
    """Write a tuning result (its ``settings`` validated first) atomically to ``path``."""
    data = dict(data)
    data["settings"] = validated(data["settings"], source=str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    tmp.replace(path)
    return path
