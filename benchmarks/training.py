"""Training + evaluation benchmark on UCI Online Retail II (protocol v1, cutoff 2010-11-01).

Times the two DAG tasks that train and evaluate, through the same stage functions Airflow calls:
``training_set_stage`` (five retrievers fitted per label window, candidates, labels, the Feast
``ranker_v1`` point-in-time features) and ``train_stage`` (LambdaRank, the holdout with every
retriever refitted on history, protocol-v1 evaluation of the ranker and each retriever, the
serving bundle, the run folder). The issue's budget for the two together is 3 minutes.

    uv run python benchmarks/training.py --home PATH   # a home a pipeline run prepared (reused;
                                                       # prepared first if it has no warehouse)
    uv run python benchmarks/training.py               # prepares a temporary home first
    uv run python benchmarks/training.py --quick       # same, on the lines from 2010-06-01 on
    uv run python benchmarks/training.py --tune        # first `recops tune` (closed folds before
                                                       # the cutoff), then train with its settings

Preparing a home (ingest, ``dbt build``, Feast export/apply/materialize) is timed apart and not
counted. Prints a table and the same figures as JSON (seconds, peak RSS, the ranker's and the
best retriever's NDCG@10).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table

from recops.core.settings import Settings

RETAIL_II = Settings().data_dir / "online_retail_ii_2009_2010" / "online_retail_ii_2009_2010.parquet"
CUTOFF = "2010-11-01"
QUICK_FROM = "2010-06-01"
BUDGET_S = 180.0


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB (Linux reports KB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def timed(step: str, run: Callable[[], Any], *, counted: bool) -> tuple[dict[str, Any], Any]:
    began = time.perf_counter()
    result = run()
    return {
        "step": step,
        "seconds": round(time.perf_counter() - began, 2),
        "counted": counted,
        "peak_rss_mb": peak_rss_mb(),
    }, result


def prepare(settings: Settings, source: Path, cutoff: str, quick: bool) -> list[dict[str, Any]]:
    """Ingest, dbt build and Feast (export, apply, materialize) into a fresh home."""
    from datetime import date

    from recops.core.dbt import build_marts
    from recops.core.feature_store import refresh_features
    from recops.core.marts import data_end
    from recops.ingestion import ingest_online_retail

    path = source
    if quick:
        lines = pd.read_parquet(source)
        lines = lines[pd.to_datetime(lines["InvoiceDate"]) >= pd.Timestamp(QUICK_FROM)]
        path = settings.home.parent / "retail_quick.parquet"
        settings.home.parent.mkdir(parents=True, exist_ok=True)
        lines.to_parquet(path, index=False)
    steps = []
    for name, run in (
        ("prepare: ingest", lambda: ingest_online_retail(settings, path)),
        ("prepare: dbt build", lambda: build_marts(settings, date.fromisoformat(cutoff))),
        ("prepare: feast apply + materialize", lambda: refresh_features(settings, data_end(settings))),
    ):
        steps.append(timed(name, run, counted=False)[0])
    return steps


def train_and_evaluate(settings: Settings, cutoff: str) -> tuple[list[dict[str, Any]], dict]:
    """The pipeline's training-set and train tasks; returns their steps and the report."""
    from datetime import date

    from recops.training.runs import train_run, training_set_file

    run_id = f"benchmark-training-{os.getpid()}"
    day = date.fromisoformat(cutoff)
    step1, training_set = timed(
        "training set (retrievers per window, candidates, Feast PIT features)",
        lambda: training_set_file(settings, cutoff=day, run_id=run_id),
        counted=True,
    )
    step2, trained = timed(
        "train + evaluate (LambdaRank, holdout, protocol v1, serving bundle)",
        lambda: train_run(settings, training_set=Path(training_set["path"]), cutoff=day, run_id=run_id),
        counted=True,
    )
    report = json.loads((Path(trained["run_dir"]) / "evaluation.json").read_text())
    return [step1, step2], report


def tune(settings: Settings, cutoff: str) -> tuple[dict[str, Any], dict]:
    """`recops tune` at ``cutoff`` (closed folds before it; writes the home's tuned settings)."""
    from datetime import date

    from recops.training.runs import tune_run

    step, result = timed(
        "tuning (closed folds before the cutoff)",
        lambda: tune_run(
            settings,
            cutoff=date.fromisoformat(cutoff),
            progress=lambda text: Console(stderr=True).print(f"  tune: {text}", highlight=False),
        ),
        counted=False,
    )
    return step, {k: result[k] for k in ("folds", "score", "retriever_baselines", "settings", "trials", "seconds")}


def summary(report: dict) -> dict[str, Any]:
    metrics = report["metrics"]
    singles = {name: m["ndcg@10"] for name, m in metrics.items() if name != "ranker"}
    best = max(singles, key=lambda name: singles[name])
    ranker = metrics["ranker"]["ndcg@10"]
    return {
        "cutoff": report["cutoff"],
        "ranker_ndcg@10": round(ranker, 4),
        "best_retriever": best,
        "best_retriever_ndcg@10": round(singles[best], 4),
        "ratio": round(ranker / singles[best], 3),
        "eval_users": int(metrics["ranker"]["n_users"]),
        "cold_users": int(report["cold_metrics"]["ranker"]["n_users"]),
        "training_rows": report["row_counts"]["training_rows"],
        "inner_timings_s": report["timings"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, help="a pipeline-prepared RECOPS_HOME to reuse (prepared if new)")
    parser.add_argument("--quick", action="store_true", help=f"only the lines from {QUICK_FROM}")
    parser.add_argument("--cutoff", default=CUTOFF)
    parser.add_argument("--tune", action="store_true", help="tune on closed folds before the cutoff first")
    parser.add_argument("--source", type=Path, default=RETAIL_II, help="Online Retail II parquet (default: under RECOPS_DATA_DIR)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="recops-bench-training-") as tmp:
        steps: list[dict[str, Any]] = []
        settings = Settings(home=args.home or Path(tmp) / "home")
        if not settings.warehouse_path.exists():  # a new home (kept when --home names it)
            steps += prepare(settings, args.source, args.cutoff, args.quick)
        tuning = None
        if args.tune:
            step, tuning = tune(settings, args.cutoff)
            steps.append(step)
        counted, report = train_and_evaluate(settings, args.cutoff)
    steps += counted
    total = round(sum(s["seconds"] for s in counted), 2)

    table = Table(
        title="RecOps training + evaluation, Online Retail II" + (" (quick)" if args.quick else "")
    )
    for col in ("step", "seconds", "counted", "peak RSS MB"):
        table.add_column(col, justify="left" if col == "step" else "right")
    for s in steps:
        table.add_row(
            s["step"],
            f"{s['seconds']:.1f}",
            "yes" if s["counted"] else "-",
            f"{s['peak_rss_mb']:,}",
        )
    table.add_row("training + evaluation", f"{total:.1f}", f"budget {BUDGET_S:.0f}", "")
    console = Console()
    console.print(table)
    result = summary(report)
    console.print(
        f"ranker NDCG@10 {result['ranker_ndcg@10']} vs best retriever ({result['best_retriever']}) "
        f"{result['best_retriever_ndcg@10']}: x{result['ratio']} on {result['eval_users']} users"
    )
    print(
        json.dumps(
            {
                "quick": args.quick,
                "home": str(args.home) if args.home else None,
                "steps": steps,
                "training_plus_evaluation_s": total,
                "within_budget": total < BUDGET_S,
                "cpus": os.cpu_count(),
                **result,
                "tuning": tuning,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
