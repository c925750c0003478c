"""The stages of ``recops_pipeline``: one function per Airflow task, also called by the CLI.

Each stage takes plain values (paths, dates, run ids), reads and writes under ``RECOPS_HOME`` and
returns a small JSON-able dict for XCom. No DataFrame crosses a task boundary.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from recops.constants import CHAMPION_ALIAS
from recops.settings import Settings, get_settings

TRAINING_SET_FILE = "training_set.parquet"


# --- helpers -----------------------------------------------------------------------------------
def _s(settings: Settings | None) -> Settings:
    return settings or get_settings()


def run_dir(settings: Settings, run_id: str) -> Path:
    """Where one pipeline run keeps its files (training set, model, reports)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id)
    path = settings.home / "runs" / safe
    path.mkdir(parents=True, exist_ok=True)
    return path


def _as_datetime(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value
    return pd.Timestamp(value).to_pydatetime()


def _naive_utc(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(tzinfo=None) if ts.tzinfo else ts


# --- ingest ------------------------------------------------------------------------------------
def ingest_stage(
    *, source: str, data_path: str | None, catalog_path: str | None = None, settings: Settings | None = None
) -> dict[str, Any]:
    """Ingest the run's file (if any) and every pending API feedback file."""
    from recops import ingestion

    s = _s(settings)
    summaries = []
    if source != "none" and data_path:
        path = Path(data_path)
        if source == "events":
            summary = ingestion.ingest_events(s, path, Path(catalog_path) if catalog_path else None)
        elif source == "online_retail":
            summary = ingestion.ingest_online_retail(s, path)
        elif source == "movielens":
            summary = ingestion.ingest_movielens(s, path)
        elif source == "feedback":
            summary = ingestion.ingest_feedback(s, path)
        else:
            raise ValueError(f"unknown source {source!r}")
        summaries.append(summary.model_dump())
    summaries.extend(_ingest_pending_feedback(s))
    new_batches = [x["batch_id"] for x in summaries if not x["duplicate_batch"]]
    return {"source": source, "summaries": summaries, "batch_ids": new_batches}


def _ingest_pending_feedback(settings: Settings) -> list[dict[str, Any]]:
    from recops.ingestion import ingest_feedback

    out = []
    if not settings.feedback_dir.exists():
        return out
    done = settings.feedback_dir / "ingested"
    for path in sorted(settings.feedback_dir.glob("feedback-*.jsonl")):
        out.append(ingest_feedback(settings, path).model_dump())
        done.mkdir(exist_ok=True)
        shutil.move(str(path), done / f"{path.stem}-{int(time.time() * 1000)}.jsonl")
    return out


def _enforce(result: Any, settings: Settings, *, stage: str) -> Any:
    """``recops.quality.checkpoints.enforce`` for a task: a failed gate fails the task for good.

    The same data would fail the same way, so a retry would only wait, validate again and alert
    twice: the ``QualityGateError`` is re-raised as Airflow's ``AirflowFailException`` (no retry),
    with the gate error as its ``__cause__``.
    """
    from recops.quality.checkpoints import enforce
    from recops.quality.results import QualityGateError

    try:
        return enforce(result, settings, stage=stage)
    except QualityGateError as exc:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(str(exc)) from exc


def validate_raw_stage(
    ingested: dict[str, Any], *, run_id: str, as_of: Any, settings: Settings | None = None
) -> dict[str, Any]:
    """Gate the newly ingested batches (GX raw-batch suite)."""
    from recops.quality.checkpoints import validate_raw_batches

    s = _s(settings)
    batch_ids = ingested.get("batch_ids", [])
    if not batch_ids:
        return {"validated": [], "success": True}
    # A manual run without a logical date has no interval: the data's own end stands in for it.
    as_of_dt = _as_datetime(as_of) or _data_end(s)
    result = validate_raw_batches(s, batch_ids, run_id=run_id, as_of=_naive_utc(as_of_dt))
    _enforce(result, s, stage="raw")
    return {"validated": batch_ids, "success": result.success, "failures": len(result.failures)}


def _data_end(settings: Settings) -> datetime:
    """Midnight (UTC) after the newest loaded event: the data's own interval end."""
    day = newest_event_at(settings).date() + timedelta(days=1)
    return datetime.combine(day, datetime.min.time(), tzinfo=UTC)


# --- dbt ---------------------------------------------------------------------------------------
def newest_event_at(settings: Settings) -> datetime:
    """The newest event of the loaded batches in the warehouse."""
    from recops.warehouse import Warehouse

    with Warehouse(settings, read_only=settings.profile == "embedded") as wh:
        value = wh.scalar(
            "select max(e.event_at) from raw.events e join raw.batches b on e.batch_id = b.batch_id "
            "where b.status = 'loaded'"
        )
    if value is None or pd.isna(value):
        raise RuntimeError("the warehouse holds no events: ingest data first (recops ingest ...)")
    return pd.Timestamp(value).to_pydatetime()


def resolve_cutoff(settings: Settings, cutoff: str | date | None) -> date:
    """The evaluation cutoff: as given, or the day after the newest event minus ``holdout_days``."""
    if cutoff:
        return cutoff if isinstance(cutoff, date) else date.fromisoformat(str(cutoff))
    return newest_event_at(settings).date() + timedelta(days=1) - timedelta(days=settings.holdout_days)


def transform_stage(*, cutoff: str | None, settings: Settings | None = None) -> dict[str, Any]:
    """``dbt build`` (staging, marts, ML feature tables, dbt tests) for the run's cutoff."""
    from recops.transform import mart_row_counts, run_dbt

    s = _s(settings)
    resolved = resolve_cutoff(s, cutoff)
    result = run_dbt(
        s,
        "build",
        vars={
            "cutoff": resolved.isoformat(),
            "feature_snapshot_days": s.feature_snapshot_days,
            "label_window_days": s.label_window_days,
            "label_windows": s.label_windows,
        },
    )
    return {
        "cutoff": resolved.isoformat(),
        "success": result.success,
        "elapsed_s": round(result.elapsed, 2),
        "rows": mart_row_counts(s),
    }


def validate_marts_stage(*, run_id: str, settings: Settings | None = None) -> dict[str, Any]:
    """Gate the staging and mart tables (GX)."""
    from recops.quality.checkpoints import validate_marts

    s = _s(settings)
    result = _enforce(validate_marts(s, run_id=run_id), s, stage="marts")
    return {"success": result.success, "failures": len(result.failures), "data_docs": result.data_docs_path}


# --- features ----------------------------------------------------------------------------------
def features_stage(
    *, interval_start: Any, interval_end: Any, settings: Settings | None = None
) -> dict[str, Any]:
    """Export the ML marts, ``feast apply``, and materialize up to the run's interval end."""
    from recops.feature_store import apply_features, export_feature_tables, materialize_interval

    s = _s(settings)
    # A manual run without a logical date has no interval: the data's own end stands in for it.
    end = _as_datetime(interval_end) or _data_end(s)
    rows = export_feature_tables(s)
    applied = apply_features(s)
    window = materialize_interval(s, end - timedelta(days=s.feature_ttl_days), end)
    return {"rows": rows, "feature_views": applied.feature_views, "materialized": window}


# --- training ----------------------------------------------------------------------------------
def _load_marts(settings: Settings) -> tuple[pd.DataFrame, pd.DataFrame]:
    from recops.warehouse import Warehouse

    schema = "public" if settings.profile == "production" else "main"
    with Warehouse(settings, read_only=settings.profile == "embedded") as wh:
        interactions = wh.query_df(f"select * from {schema}.fct_interactions")
        items = wh.query_df(f"select * from {schema}.dim_items")
    return interactions, items


def _feature_fetcher(settings: Settings):
    from recops.feature_store import get_store, historical_features

    store = get_store(settings)
    return lambda entity_df: historical_features(settings, entity_df, store=store)


def training_set_stage(*, cutoff: str, run_id: str, settings: Settings | None = None) -> dict[str, Any]:
    """Build the point-in-time training set (candidates, labels, Feast features) to a Parquet file."""
    from recops.training.train import TrainConfig, build_training_set

    s = _s(settings)
    interactions, items = _load_marts(s)
    cfg = TrainConfig.from_settings(s)
    frame = build_training_set(cfg, interactions, items, date.fromisoformat(cutoff), _feature_fetcher(s))
    out = run_dir(s, run_id) / TRAINING_SET_FILE
    frame.to_parquet(out, index=False)
    return {
        "path": str(out),
        "run_id": run_id,
        "cutoff": cutoff,
        "rows": int(len(frame)),
        "queries": int(frame["query_id"].nunique()) if len(frame) else 0,
        "positives": int((frame["label"] > 0).sum()) if len(frame) else 0,
    }


def validate_training_set_stage(training_set: dict[str, Any], *, run_id: str, settings: Settings | None = None) -> dict[str, Any]:
    """Gate the training set: label rate, query groups, leakage, drift against the last good run."""
    from recops.quality.checkpoints import validate_training_set

    s = _s(settings)
    frame = pd.read_parquet(training_set["path"])
    result = _enforce(validate_training_set(s, frame, run_id=run_id), s, stage="training_set")
    return {"success": result.success, "failures": len(result.failures), "data_docs": result.data_docs_path}


def train_stage(training_set: dict[str, Any], *, settings: Settings | None = None) -> dict[str, Any]:
    """Train the LambdaRank ranker, evaluate it and every retriever (protocol v1), and write the
    model, serving bundle, holdout frame, report and pictures into the run folder."""
    from recops.training.train import TrainConfig, train_from_training_set

    s = _s(settings)
    interactions, items = _load_marts(s)
    cfg = TrainConfig.from_settings(s)
    out_dir = run_dir(s, training_set["run_id"])
    report = train_from_training_set(
        cfg,
        pd.read_parquet(training_set["path"]),
        interactions,
        items,
        date.fromisoformat(training_set["cutoff"]),
        _feature_fetcher(s),
        out_dir=out_dir,
    )
    report["training_set"] = {k: training_set[k] for k in ("rows", "queries", "positives")}
    (out_dir / "evaluation.json").write_text(json.dumps(report, indent=2, default=str))
    return {"run_dir": str(out_dir), "cutoff": training_set["cutoff"], "metrics": report["metrics"]}


# --- registry ----------------------------------------------------------------------------------
def register_stage(trained: dict[str, Any], *, context: dict[str, Any], settings: Settings | None = None) -> dict[str, Any]:
    """Log the run to MLflow and register the Booster as a new model version (with tags)."""
    import lightgbm as lgb

    from recops.training.registry import log_candidate

    s = _s(settings)
    out_dir = Path(trained["run_dir"])
    report = json.loads((out_dir / "evaluation.json").read_text())
    booster = lgb.Booster(model_file=str(out_dir / "model.txt"))
    start, end = context.get("data_interval_start"), context.get("data_interval_end")
    tags = {
        "recops.cutoff": trained["cutoff"],
        "recops.data_interval": f"{start}/{end}",
        "recops.feature_service": "ranker_v1",
        "recops.dbt": "success" if context.get("dbt", {}).get("success") else "unknown",
        "recops.gx": "success" if context.get("quality", {}).get("success") else "unknown",
        "recops.profile": s.profile,
    }
    feature_cols = report.get("feature_cols", [])
    params = {
        **report.get("params", {}),
        "cutoff": trained["cutoff"],
        "feature_service": "ranker_v1",
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
        "evaluation": out_dir / "evaluation.json",
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
        s,
        booster=booster,
        params=params,
        metrics=metrics,
        artifacts={k: v for k, v in artifacts.items() if v.exists()},
        tags=tags,
        run_name=f"pipeline-{trained['cutoff']}-{out_dir.name}",
    )
    return {**info.model_dump(), "run_dir": str(out_dir), "cutoff": trained["cutoff"], "metrics": report["metrics"]}


def gate_stage(
    candidate: dict[str, Any],
    *,
    auto_promote: bool,
    actor: str = "recops-pipeline",
    run_id: str | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Automatic gate against the champion (same holdout, overall and per slice); then reject
    (with an alert), promote, or hand the candidate to the approvers as ``challenger``."""
    from recops.promotion import run_gate

    origin = f"recops_pipeline/{run_id}" if run_id else "cli"
    return run_gate(candidate, auto_promote=auto_promote, settings=_s(settings), actor=actor, run_id=run_id, origin=origin)


# --- failure alerts ----------------------------------------------------------------------------
def alert_failed_task(context: dict[str, Any]) -> None:
    """Airflow ``on_failure_callback``: alert through the quality notifiers."""
    from recops.quality.notifiers import alert_task_failure
    from recops.quality.results import QualityGateError

    exception = context.get("exception")
    if isinstance(exception, QualityGateError) or isinstance(
        getattr(exception, "__cause__", None), QualityGateError
    ):
        return  # the gate has alerted already, with every failed expectation
    ti = context.get("task_instance") or context.get("ti")
    alert_task_failure(
        get_settings(),
        dag_id=getattr(ti, "dag_id", "recops_pipeline"),
        run_id=str(context.get("run_id")),
        task_id=getattr(ti, "task_id", "unknown"),
        exception=str(context.get("exception")),
        log_url=getattr(ti, "log_url", None),
    )


# --- whole pipeline (CLI) ----------------------------------------------------------------------
def newest_event_in_file(source: str, path: Path) -> datetime:
    """Newest event time in an input file, to date the run's data interval before ingesting it."""
    from recops.ingestion import newest_event_at as newest_generic

    if source in ("events", "feedback"):
        return newest_generic(path)
    if source == "movielens":
        stamps = pd.read_csv(path / "u.data", sep="\t", header=None, usecols=[3])[3]
        return datetime.fromtimestamp(int(stamps.max()), tz=UTC).replace(tzinfo=None)
    if source == "online_retail":
        wanted = lambda c: str(c).strip().lower() == "invoicedate"  # noqa: E731
        suffix = path.suffix.lower()
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            names = [c for c in pq.read_schema(path).names if wanted(c)]
            if not names:
                raise ValueError(f"{path}: no InvoiceDate column")
            dates = pd.read_parquet(path, columns=names).iloc[:, 0]
        elif suffix == ".csv":
            dates = pd.read_csv(path, usecols=wanted, dtype=str).iloc[:, 0]
        else:
            dates = pd.read_excel(path, usecols=wanted).iloc[:, 0]
        newest = pd.to_datetime(dates, errors="coerce").max()
        if pd.isna(newest):
            raise ValueError(f"{path}: no parseable InvoiceDate")
        return newest.to_pydatetime()
    raise ValueError(f"unknown source {source!r}")


def ensure_production_databases(settings: Settings) -> list[str]:
    """Create the production profile's PostgreSQL databases (warehouse, Airflow, MLflow) if missing."""
    from recops.warehouse import create_postgres_database

    names = [settings.postgres_db, f"{settings.postgres_db}_airflow", f"{settings.postgres_db}_mlflow"]
    for name in names:
        create_postgres_database(settings, name)
    return names


def run_pipeline(
    settings: Settings,
    *,
    cutoff: str | None = None,
    source: str = "none",
    data_path: str | None = None,
    catalog_path: str | None = None,
    auto_promote: bool = True,
) -> dict[str, Any]:
    """Run ``recops_pipeline`` in-process on the embedded default (Airflow ``dag.test()``).

    The run's logical date is the day after the newest event (the file's, or the warehouse's), so
    its data interval ends where the data does and feature materialization never reads the future.
    """
    from recops.airflow_runtime import PIPELINE_DAG_ID, run_dag_in_process

    settings.home.mkdir(parents=True, exist_ok=True)
    if settings.profile == "production":
        ensure_production_databases(settings)
    newest = newest_event_in_file(source, Path(data_path)) if data_path else newest_event_at(settings)
    logical = datetime.combine(newest.date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    conf = {
        "cutoff": cutoff,
        "source": source,
        "data_path": data_path,
        "catalog_path": catalog_path,
        "auto_promote": auto_promote,
        "approvers": [],
    }
    return run_dag_in_process(settings, PIPELINE_DAG_ID, logical_date=logical, conf=conf)


# --- reports -----------------------------------------------------------------------------------
def evaluation_report(settings: Settings, *, version: str | None = None) -> dict[str, Any]:
    """The protocol-v1 evaluation of a registered version (default: the champion)."""
    from recops.training.registry import alias_version, download_run_artifact

    version = version or alias_version(settings, CHAMPION_ALIAS)
    if version is None:
        raise RuntimeError("no champion model yet: run the pipeline first")
    report = json.loads(download_run_artifact(settings, version, "evaluation/evaluation.json").read_text())
    return {"model_version": version, **report}


def format_evaluation(report: dict[str, Any]) -> str:
    """A plain-text table of the evaluation report."""
    cols = ["ndcg@10", "recall@10", "hitrate@10", "map@10", "coverage", "n_users"]
    lines = [
        f"model v{report['model_version']}  cutoff {report.get('cutoff')}",
        "model".ljust(14) + "".join(c.rjust(12) for c in cols),
    ]
    for name, metrics in report["metrics"].items():
        cells = [f"{metrics.get(c, float('nan')):12.4f}" for c in cols[:-1]]
        lines.append(name.ljust(14) + "".join(cells) + f"{int(metrics.get('n_users', 0)):12d}")
    return "\n".join(lines)
