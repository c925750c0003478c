"""Pipeline benchmark: wall time and peak memory of every stage, and in total.

Runs the same stage functions the ``recops_pipeline`` tasks call, each in a fresh child process
(so each stage's peak RSS is its own), on a temporary ``RECOPS_HOME``:

    python benchmarks/pipeline.py --events 100000        # synthetic shop of ~100k events
    python benchmarks/pipeline.py --source online_retail --data PATH --cutoff 2010-11-01
    python benchmarks/pipeline.py --quick                # small synthetic shop (CI)
    python benchmarks/pipeline.py --events 1000000 --json  # only the JSON document on stdout
    python benchmarks/pipeline.py --events 10000000 --until training_set  # the stages up to it
    RECOPS_PROFILE=production RECOPS_POSTGRES_DB=recops_bench python benchmarks/pipeline.py --events 1000000

Prints a table and a JSON document (also written with --json-out). ``RECOPS_*`` variables apply
to every stage (e.g. ``RECOPS_TRAINING_PARTITION_USERS``, ``RECOPS_TRAIN_BACKEND``). Peak RSS is
per stage: its own process and, separately, the largest process it started (Dask workers).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import queue as queue_module
import re
import resource
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

QUALITY_STAGES = {"validate_raw", "validate_marts", "validate_training_set"}
STAGES = ("ingest", "validate_raw", "dbt_build", "validate_marts", "features", "training_set",
          "validate_training_set", "train_evaluate", "register", "promotion_gate", "publish_online")
SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|SALT|KEY|URI|URL", re.IGNORECASE)


def _child(stage: str, kwargs: dict[str, Any], home: str, queue: mp.Queue) -> None:
    from recops.app import tasks
    from recops.core.settings import Settings
    from recops.ingestion.shop_files import write_shop

    start = time.perf_counter()
    try:
        if stage == "generate":
            out = write_shop(Path(kwargs["out"]), users=kwargs["users"], items=kwargs["items"],
                             days=kwargs["days"], seed=42, fmt="parquet")
        else:
            out = getattr(tasks, kwargs.pop("_fn"))(**kwargs, settings=Settings(home=Path(home)))
        error = None
    except Exception as exc:  # reported, then the benchmark stops
        out, error = None, f"{type(exc).__name__}: {exc}"
    wall = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    queue.put({"stage": stage, "wall_s": wall, "peak_mb": peak_mb, "child_peak_mb": child_mb, "result": out,
               "error": error})


def run_stage(stage: str, kwargs: dict[str, Any], home: Path) -> dict[str, Any]:
    """Run one stage in a fresh process; its figures, and ``error`` when it failed or died."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(stage, kwargs, str(home), queue))
    start = time.perf_counter()
    proc.start()
    while True:
        try:
            out = queue.get(timeout=5)
            break
        except queue_module.Empty:
            if not proc.is_alive():  # killed (e.g. by the kernel, out of memory) before it could report
                out = {"stage": stage, "wall_s": time.perf_counter() - start, "peak_mb": None,
                       "child_peak_mb": None, "result": None,
                       "error": f"the stage's process died with exit code {proc.exitcode}"}
                break
    proc.join()
    return out


def shop_size(events: int) -> dict[str, int]:
    """Users, items and days for a synthetic shop of about ``events`` events (~0.5 x users x days)."""
    days = 120
    users = max(50, int(events / (0.5 * days)))
    return {"users": users, "items": max(50, min(20000, users // 2)), "days": days}


def benchmark(args: argparse.Namespace, home: Path) -> list[dict[str, Any]]:
    from recops.app.airflow_runtime import create_production_databases
    from recops.core.constants import Source
    from recops.core.settings import Settings
    from recops.ingestion.sources import newest_event_in_source

    rows: list[dict[str, Any]] = []
    create_production_databases(Settings(home=home))  # RECOPS_PROFILE=production: its databases, once
    if args.source == "events":
        shop = home / "shop"
        rows.append(run_stage("generate", {"out": str(shop), **shop_size(args.events)}, home))
        if rows[-1]["error"]:
            return rows
        data, catalog = str(shop / "events.parquet"), str(shop / "catalog.parquet")
    else:
        data, catalog = str(Path(args.data).resolve()), None
    newest = newest_event_in_source(Source(args.source), Path(data))
    end = datetime.combine(newest.date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    run_id = f"bench-{int(time.time())}"

    def stage(name: str, fn: str, **kwargs: Any) -> Any:
        out = run_stage(name, {"_fn": fn, **kwargs}, home)
        rows.append(out)
        if out["error"] or name == args.until:
            raise _Until
        return out["result"]

    with contextlib.suppress(_Until):
        _stages(stage, args, data, catalog, run_id, end.isoformat())
    return rows


class _Until(Exception):
    """The stage named by ``--until`` has run, or a stage failed: the benchmark stops there."""


def _stages(stage: Any, args: argparse.Namespace, data: str, catalog: str | None, run_id: str, interval_end: str) -> None:
    """The DAG's tasks in the DAG's order; ``stage(name, task function, **kwargs)`` runs one."""
    # the DAG's tasks in the DAG's order (dags/recops_pipeline.py), each in a fresh process
    ingested = stage("ingest", "ingest", source=args.source, data_path=data, catalog_path=catalog)
    stage("validate_raw", "validate_raw", ingested=ingested, run_id=run_id, interval_end=interval_end)
    transformed = stage("dbt_build", "dbt_build", cutoff=args.cutoff, interval_end=interval_end)
    stage("validate_marts", "validate_marts", run_id=run_id)
    stage("features", "features")
    ts = stage("training_set", "build_training_set", transformed=transformed, run_id=run_id)
    checked = stage("validate_training_set", "validate_training_set", training_set=ts, run_id=run_id)
    trained = stage("train_evaluate", "train_evaluate", training_set=ts)
    candidate = stage("register", "register_model", trained=trained, transformed=transformed, checked=checked,
                      interval_start=None, interval_end=interval_end)
    stage("promotion_gate", "promotion_gate", candidate=candidate, auto_promote=True, run_id=run_id)
    stage("publish_online", "publish", interval_end=interval_end, interval_start=None)


def _brief(result: Any) -> Any:
    """A stage's returned dict without long lists (metric curves, per-retriever tables)."""
    if not isinstance(result, dict):
        return result
    return {k: v for k, v in result.items() if not isinstance(v, list) or len(v) <= 20}


def _mb(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def report(rows: list[dict[str, Any]], meta: dict[str, Any]) -> dict[str, Any]:
    total = sum(r["wall_s"] for r in rows if r["stage"] != "generate")
    quality = sum(r["wall_s"] for r in rows if r["stage"] in QUALITY_STAGES)
    ranker = next((r["result"]["metrics"]["ranker"] for r in rows if r["stage"] == "train_evaluate" and r["result"]), {})
    return {
        **meta,
        "stages": [{"stage": r["stage"], "wall_s": round(r["wall_s"], 2), "peak_mb": _mb(r["peak_mb"]),
                    "child_peak_mb": _mb(r["child_peak_mb"]), "result": _brief(r["result"]),
                    **({"error": r["error"]} if r["error"] else {})} for r in rows],
        "failed_stage": next((r["stage"] for r in rows if r["error"]), None),
        "pipeline_wall_s": round(total, 2),
        "pipeline_peak_mb": _mb(max((max(r["peak_mb"] or 0, r["child_peak_mb"] or 0) for r in rows), default=0.0)),
        "quality_wall_s": round(quality, 2),
        "quality_share": round(quality / total, 4) if total else None,
        "ranker": ranker,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000, help="Synthetic shop size (events).")
    parser.add_argument("--source", default="events", choices=["events", "online_retail", "movielens"])
    parser.add_argument("--data", help="Input file/folder for --source online_retail/movielens.")
    parser.add_argument("--cutoff", help="Evaluation cutoff (YYYY-MM-DD).")
    parser.add_argument("--quick", action="store_true", help="A small synthetic shop (~15k events).")
    parser.add_argument("--until", choices=STAGES, help="Stop after this stage (e.g. training_set).")
    parser.add_argument("--json", action="store_true", help="Print only the JSON document (table on stderr).")
    parser.add_argument("--json-out", type=Path)
    parser.add_argument("--keep", action="store_true", help="Keep the temporary RECOPS_HOME.")
    args = parser.parse_args()
    if args.quick:
        args.events, args.source = 15_000, "events"
    if args.source != "events" and not args.data:
        parser.error("--data is required with --source online_retail/movielens")
    home = Path(tempfile.mkdtemp(prefix="recops-bench-"))
    console = Console(stderr=True)
    with console.status(f"benchmarking the pipeline in {home} ..."):
        rows = benchmark(args, home)
    meta = {"source": args.source, "events": args.events if args.source == "events" else None,
            "data": args.data, "cutoff": args.cutoff, "cpu_count": os.cpu_count(),
            "settings": {k: v for k, v in sorted(os.environ.items())  # the RECOPS_ variables in force, no secrets
                         if k.startswith("RECOPS_") and not SECRET_NAME.search(k)}}
    result = report(rows, meta)
    table = Table(title=f"recops pipeline benchmark ({args.source}{'' if args.data else f', {args.events:,} events'})")
    for col in ("stage", "wall s", "peak MB", "child peak MB"):
        table.add_column(col, justify="right" if col != "stage" else "left")
    for r in result["stages"]:
        peaks = [f"{v:.0f}" if v is not None else "?" for v in (r["peak_mb"], r["child_peak_mb"])]
        table.add_row(r["stage"] + (" FAILED" if r.get("error") else ""), f"{r['wall_s']:.2f}", *peaks)
    table.add_row("total (without generate)", f"{result['pipeline_wall_s']:.2f}", f"{result['pipeline_peak_mb']:.0f}", "")
    out = Console(stderr=args.json)
    out.print(table)
    out.print(f"quality checks: {result['quality_wall_s']:.2f} s = {100 * (result['quality_share'] or 0):.1f}% of the pipeline")
    print(json.dumps(result, indent=2, default=str))
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2, default=str))
    if not args.keep:
        import shutil

        shutil.rmtree(home, ignore_errors=True)
    if result["failed_stage"]:
        failed = next(r for r in result["stages"] if r["stage"] == result["failed_stage"])
        raise SystemExit(f"stage {failed['stage']} failed after {failed['wall_s']:.0f} s: {failed['error']}")


if __name__ == "__main__":
    main()
