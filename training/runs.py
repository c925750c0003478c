"""The training stage functions of ``recops_pipeline``: the point-in-time training set, training
and evaluation, and the MLflow registration. Each reads the marts and the feature store itself and
leaves its files in the run folder (``<home>/runs/<run_id>``); each returns a small JSON-able dict.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from recops.core.constants import CHAMPION_ALIAS, FEATURE_SERVICE
from recops.core.feature_store import get_store, historical_features
from recops.core.marts import interactions_and_items, served_impressions
from recops.core.settings import Settings
from recops.training.dataset import FeatureFetcher
from recops.training.train import TrainConfig, iter_training_set, train_from_training_set
from recops.training.tuned import honest_at, with_tuned_settings
from recops.training.windows import write_partitions

TRAINING_SET_FILE = "training_set.parquet"
EVALUATION_FILE = "evaluation.json"


def run_dir(settings: Settings, run_id: str) -> Path:
    """Where one pipeline run keeps its files (training set, model, reports)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id)
    path = settings.runs_dir / safe
    path.mkdir(parents=True, exist_ok=True)
    return path


def feature_fetcher(settings: Settings) -> FeatureFetcher:
    """Point-in-time ``ranker_v1`` features from the profile's Feast offline store."""
    store = get_store(settings)
    return lambda entity_df: historical_features(settings, entity_df, store=store)


def training_set_file(settings: Settings, *, cutoff: date, run_id: str) -> dict[str, Any]:
    """Build the point-in-time training set (candidates, labels, Feast features) into a Parquet
    file, one partition of users at a time (``RECOPS_TRAINING_PARTITION_USERS``)."""
    interactions, items = interactions_and_items(settings)
    cfg = TrainConfig.from_settings(with_tuned_settings(settings)[0])
    impressions = served_impressions(settings)
    out = run_dir(settings, run_id) / TRAINING_SET_FILE
    parts = iter_training_set(cfg, interactions, items, cutoff, feature_fetcher(settings), impressions)
    counts = write_partitions(parts, out)
    return {"path": str(out), "run_id": run_id, "cutoff": cutoff.isoformat(), **counts}


def train_run(settings: Settings, *, training_set: Path, cutoff: date, run_id: str) -> dict[str, Any]:
    """Train the LambdaRank ranker, evaluate it and every retriever (protocol v1), and write the
    model, serving bundle, holdout frame, report and pictures into the run folder."""
    interactions, items = interactions_and_items(settings)
    tuned, tuning = with_tuned_settings(settings)
    cfg = TrainConfig.from_settings(tuned)
    out_dir = run_dir(settings, run_id)
    report = train_from_training_set(
        cfg, training_set, interactions, items, cutoff, feature_fetcher(settings), out_dir=out_dir
    )
    counts = report["row_counts"]
    report["training_set"] = {
        "rows": counts["training_rows"], "queries": counts["training_queries"], "positives": counts["training_positives"],
    }
    if tuning is not None:  # which tuned settings, and whether their folds closed before this cutoff
        report["tuning"] = tuning | {"closed_before_cutoff": honest_at(tuning, cutoff)}
    (out_dir / EVALUATION_FILE).write_text(json.dumps(report, indent=2, default=str))
    return {"run_dir": str(out_dir), "cutoff": cutoff.isoformat(), "metrics": report["metrics"]}


def tune_run(
    settings: Settings,
    *,
    cutoff: date | None = None,
    use_features: bool = True,
    log_trials: bool = True,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """`recops tune`: the closed-window search (:mod:`recops.training.tuning`) on this home's marts
    and (``use_features``) its Feast offline store, for the evaluation at ``cutoff`` (default: the
    pipeline's); writes ``settings.tuned_settings_path``."""
    from recops.core.marts import default_cutoff
    from recops.training.tuning import tune

    interactions, items = interactions_and_items(settings)
    cutoff = cutoff or default_cutoff(settings)
    fetch = feature_fetcher(settings) if use_features else None
    return tune(settings, interactions, items, cutoff, fetch_features=fetch, log_trials=log_trials, progress=progress)


def evaluation_report(settings: Settings, *, version: str | None = None) -> dict[str, Any]:
    """The protocol-v1 evaluation of a registered version (default: the champion)."""
    from recops.training.registry import alias_version, download_run_artifact

    version = version or alias_version(settings, CHAMPION_ALIAS)
    if version is None:
        raise RuntimeError("no champion model yet: run the pipeline first")
    report = json.loads(download_run_artifact(settings, version, "evaluation/evaluation.json").read_text())
    return {"model_version": version, **report}


def format_evaluation(report: dict[str, Any], k: int) -> str:
    """A plain-text table of the evaluation report."""
    cols = [f"ndcg@{k}", f"recall@{k}", f"hitrate@{k}", f"map@{k}", "coverage", "n_users"]
    lines = [
        f"model v{report['model_version']}  cutoff {report.get('cutoff')}",
        "model".ljust(14) + "".join(c.rjust(12) for c in cols),
    ]
    for name, metrics in report["metrics"].items():
        cells = [f"{metrics.get(c, float('nan')):12.4f}" for c in cols[:-1]]
        lines.append(name.ljust(14) + "".join(cells) + f"{int(metrics.get('n_users', 0)):12d}")
    return "\n".join(lines)


def register_run(
    settings: Settings, trained: dict[str, Any], *, context: dict[str, Any]
) -> dict[str, Any]:
    """Log the run to MLflow and register the Booster as a new model version (with tags).

    ``context``: ``data_interval_start``/``end`` and the dbt and training-set gate outputs."""
    import lightgbm as lgb

    from recops.training.registry import log_candidate

    out_dir = Path(trained["run_dir"])
    report = json.loads((out_dir / EVALUATION_FILE).read_text())
    booster = lgb.Booster(model_file=str(out_dir / "model.txt"))
    start, end = context.get("data_interval_start"), context.get("data_interval_end")
    tags = {
        "recops.cutoff": trained["cutoff"],
        "recops.data_interval": f"{start}/{end}",
        "recops.feature_service": FEATURE_SERVICE,
        "recops.dbt": "success" if context.get("dbt", {}).get("success") else "unknown",
        "recops.gx": "success" if context.get("quality", {}).get("success") else "unknown",
        "recops.profile": settings.profile,
    }
    if "tuning" in report:  # settings from `recops tune`: for which cutoff, and honest at this one
        tuning = report["tuning"]
        tags["recops.tuning.cutoff"] = str(tuning.get("cutoff"))
        tags["recops.tuning.closed_before_cutoff"] = str(tuning.get("closed_before_cutoff")).lower()
    feature_cols = report.get("feature_cols", [])
    params = {
        **report.get("params", {}),
        "cutoff": trained["cutoff"],
        "feature_service": FEATURE_SERVICE,
        # the ranker_v1 features the booster reads (<view>__<feature>), and how many features in all
        "feature_service.features": [c for c in feature_cols if "__" in c],
        "n_features": len(feature_cols),
        "data_interval_start": str(start),
        "data_interval_end": str(end),
        **{f"rows.{k}": v for k, v in report.get("row_counts", {}).items()},
        **{f"training_set.{k}": v for k, v in report.get("training_set", {}).items()},
        **{f"timing.{k}": v for k, v in report.get("timings", {}).items()},
    }
    artifacts = {
        "bundle": out_dir / "bundle.joblib",
        "evaluation": out_dir / EVALUATION_FILE,
        "holdout": out_dir / "holdout.parquet",
        "plots": out_dir / "plots",
        "tables": out_dir / "tables",
    }
    # the ranker and every retriever on the evaluated users, and the cold users apart
    metrics = {
        **report["metrics"],
        **{f"cold_{model}": values for model, values in report.get("cold_metrics", {}).items()},
    }
    info = log_candidate(
        settings,
        booster=booster,
        params=params,
        metrics=metrics,
        artifacts={k: v for k, v in artifacts.items() if v.exists()},
        tags=tags,
        run_name=f"pipeline-{trained['cutoff']}-{out_dir.name}",
    )
    return {**info.model_dump(), "run_dir": str(out_dir), "cutoff": trained["cutoff"], "metrics": report["metrics"]}
