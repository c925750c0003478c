"""What a training run leaves in its run folder, and scoring another booster on that holdout.

Files: ``model.txt`` (LightGBM), ``bundle.joblib`` (serving bundle), ``holdout.parquet`` (the
evaluated users' candidates with features), ``holdout_truth.parquet`` (relevant items, evaluated
and cold users), ``holdout.json`` (cutoff, k, catalogue size), ``plots/`` (feature importance,
metric-by-K for the ranker and every retriever), ``tables/`` (the same as CSV).
``score_holdout`` re-reads them so the promotion gate judges the champion on exactly the
candidate's users, candidates and features.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from recops.core.constants import ITEM_COL, USER_COL
from recops.training.evaluation import PROTOCOL_VERSION

if TYPE_CHECKING:
    import lightgbm as lgb

    from recops.training.train import RecommenderBundle, TrainResult


MODEL_FILE = "model.txt"
BUNDLE_FILE = "bundle.joblib"
HOLDOUT_FILE = "holdout.parquet"
HOLDOUT_TRUTH_FILE = "holdout_truth.parquet"
HOLDOUT_META_FILE = "holdout.json"
PLOTS_DIR = "plots"
TABLES_DIR = "tables"


def json_safe(value: Any) -> Any:
    """NaN/inf -> None, recursively (strict JSON, and MLflow skips None)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def flat_params(cfg) -> dict[str, Any]:
    """The config as one flat dict (``ranker.num_leaves``, ``retrievers.als_factors``, ...)."""
    flat: dict[str, Any] = {}
    for key, value in cfg.model_dump().items():
        if isinstance(value, dict):
            flat.update(
                {f"{key}.{k}": (list(v) if isinstance(v, tuple) else v) for k, v in value.items()}
            )
        else:
            flat[key] = value
    return flat


def report(result: TrainResult) -> dict[str, Any]:
    """A JSON-able summary: metrics per model, cold-user metrics, metric-by-K, row counts,
    timings, flat params, feature columns and importance."""
    return json_safe(
        {
            "protocol": PROTOCOL_VERSION,
            "cutoff": result.cutoff.date().isoformat(),
            "metrics": result.metrics,
            "cold_metrics": result.cold_metrics,
            "metrics_by_k": result.metrics_by_k.to_dict(orient="records"),
            "row_counts": result.row_counts,
            "timings": result.timings,
            "params": flat_params(result.config),
            "feature_cols": list(result.feature_cols),
            "feature_importance": result.feature_importance.to_dict(orient="records"),
        }
    )


def plot_feature_importance(importance: pd.DataFrame, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    top = importance.head(25).iloc[::-1]
    fig, ax = plt.subplots(figsize=(7, max(2.5, 0.28 * len(top) + 1)))
    ax.barh(top["feature"], top["gain"])
    ax.set_xlabel("total gain")
    ax.set_title("Ranker feature importance")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_metrics_by_k(by_k: pd.DataFrame, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = list(dict.fromkeys(by_k["metric"]))
    fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 3.4), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        for model, rows in by_k[by_k["metric"] == metric].groupby("model", sort=False):
            ax.plot(
                rows["k"],
                rows["value"],
                marker=".",
                label=model,
                linewidth=2.5 if model == "ranker" else 1.2,
            )
        ax.set_title(f"{metric}@K")
        ax.set_xlabel("K")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_run_artifacts(
    result: TrainResult, bundle: RecommenderBundle | None, out_dir: Path
) -> dict[str, Path]:
    """Write the model, bundle, holdout and plots into ``out_dir``; return their paths."""
    import joblib

    out_dir = Path(out_dir)
    (out_dir / PLOTS_DIR).mkdir(parents=True, exist_ok=True)
    paths = {"model": out_dir / MODEL_FILE}
    result.booster.save_model(str(paths["model"]))
    if bundle is not None:
        paths["bundle"] = out_dir / BUNDLE_FILE
        joblib.dump(bundle, paths["bundle"], compress=3)
    holdout = result.holdout
    paths["holdout"] = out_dir / HOLDOUT_FILE
    holdout.frame.to_parquet(paths["holdout"], index=False)
    truth = pd.concat(
        [
            holdout.split.truth.assign(kind="evaluated"),
            holdout.split.cold_truth.assign(kind="cold"),
        ],
        ignore_index=True,
    )
    paths["holdout_truth"] = out_dir / HOLDOUT_TRUTH_FILE
    truth.to_parquet(paths["holdout_truth"], index=False)
    paths["holdout_meta"] = out_dir / HOLDOUT_META_FILE
    paths["holdout_meta"].write_text(
        json.dumps(
            {
                "protocol": PROTOCOL_VERSION,
                "cutoff": holdout.split.cutoff.isoformat(),
                "k": result.config.k,
                "n_items": holdout.split.n_items,
                "depth": holdout.depth,
            },
            indent=2,
        )
    )
    (out_dir / TABLES_DIR).mkdir(exist_ok=True)
    paths["feature_importance_table"] = out_dir / TABLES_DIR / "feature_importance.csv"
    result.feature_importance.to_csv(paths["feature_importance_table"], index=False)
    paths["metrics_by_k_table"] = out_dir / TABLES_DIR / "metrics_by_k.csv"
    result.metrics_by_k.to_csv(paths["metrics_by_k_table"], index=False)
    paths["feature_importance_plot"] = plot_feature_importance(
        result.feature_importance, out_dir / PLOTS_DIR / "feature_importance.png"
    )
    paths["metrics_by_k_plot"] = plot_metrics_by_k(
        result.metrics_by_k, out_dir / PLOTS_DIR / "metrics_by_k.png"
    )
    ndcg = result.metrics_by_k[result.metrics_by_k["metric"] == "ndcg"]
    if not ndcg.empty:
        paths["ndcg_by_k_plot"] = plot_metrics_by_k(ndcg, out_dir / PLOTS_DIR / "ndcg_by_k.png")
    return paths


@dataclass(frozen=True)
class SavedHoldout:
    """What a run folder holds to judge any booster: the evaluated users' candidates with their
    features, the relevant items (evaluated and cold users), the cutoff, k and catalogue size."""

    run_dir: Path
    frame: pd.DataFrame
    truth: pd.DataFrame
    cold_truth: pd.DataFrame
    cutoff: pd.Timestamp
    k: int
    n_items: int

    @property
    def users(self) -> list:
        return sorted(self.truth[USER_COL].unique())


def load_holdout(run_dir: Path) -> SavedHoldout:
    """Read the holdout a training run left in ``run_dir`` (the one loader the evaluation report,
    the promotion gate and the champion's rescoring share)."""
    run_dir = Path(run_dir)
    meta = json.loads((run_dir / HOLDOUT_META_FILE).read_text())
    truth = pd.read_parquet(run_dir / HOLDOUT_TRUTH_FILE)

    def kind(name: str) -> pd.DataFrame:
        return truth.loc[truth["kind"] == name, [USER_COL, ITEM_COL]].reset_index(drop=True)

    return SavedHoldout(
        run_dir=run_dir,
        frame=pd.read_parquet(run_dir / HOLDOUT_FILE),
        truth=kind("evaluated"),
        cold_truth=kind("cold"),
        cutoff=pd.Timestamp(meta["cutoff"]),
        k=int(meta["k"]),
        n_items=int(meta["n_items"]),
    )


class MissingFeaturesError(ValueError):
    """A model needs features the data it is asked to score lacks."""


def rank_saved_holdout(booster: lgb.Booster, holdout: SavedHoldout) -> pd.DataFrame:
    """``booster``'s ranking of the holdout's candidates (user_id, item_id, score).

    Raises :class:`MissingFeaturesError` when the booster needs features the holdout lacks (a
    champion trained on features since removed): scoring them as missing would bias the
    comparison against it."""
    from recops.training.train import rank_candidates

    feature_cols = booster.feature_name()
    missing = [c for c in feature_cols if c not in holdout.frame.columns]
    if missing:
        raise MissingFeaturesError(
            f"the holdout (cutoff {holdout.cutoff.date()}) lacks features {missing} this model needs: "
            "it cannot be scored on it without bias; compare models trained on the same features"
        )
    return rank_candidates(booster, feature_cols, holdout.frame)


def score_holdout(booster: lgb.Booster, holdout: SavedHoldout) -> dict[str, float | None]:
    """``booster``'s protocol-v1 metrics on a saved holdout (same keys as the ranker's metrics)."""
    from recops.training.evaluation import Split, evaluate

    split = Split(
        cutoff=holdout.cutoff,
        history=pd.DataFrame(columns=[USER_COL, ITEM_COL]),
        truth=holdout.truth,
        cold_truth=holdout.cold_truth,
        n_items=holdout.n_items,
    )
    return json_safe(evaluate(rank_saved_holdout(booster, holdout), split, holdout.k))
