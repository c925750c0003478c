"""The DAG task adapters: one function per task of ``recops_pipeline`` and ``recops_rollback``.

Each adapter parses what Airflow hands over (params, XCom dicts, the data interval) once, into
typed values, and calls exactly one stage function; it returns that function's small JSON-able
dict for XCom. A failed quality gate becomes Airflow's ``AirflowFailException``: the same data
would fail the same way, so a retry would only wait, validate again and alert twice.

The DAG files import this module inside their task bodies; the ``recops`` CLI calls the same stage
functions directly. ``settings`` defaults to the process settings (an Airflow task's environment).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from recops.core.constants import PIPELINE_ACTOR, PIPELINE_DAG_ID, ROLLBACK_DAG_ID
from recops.core.settings import Settings, get_settings
from recops.core.timeutil import parse_date, utc_aware, utc_naive


def _settings(settings: Settings | None) -> Settings:
    return settings or get_settings()


def _instant(value: Any) -> datetime | None:
    """An Airflow datetime (pendulum or ISO text) as aware UTC, or ``None``."""
    return None if value is None or value == "" else utc_aware(value)


@contextmanager
def _gate_fails_for_good() -> Iterator[None]:
    from recops.quality.results import QualityGateError

    try:
        yield
    except QualityGateError as exc:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(str(exc)) from exc


def _origin(dag_id: str, run_id: str | None) -> str:
    return f"{dag_id}/{run_id}" if run_id else "cli"


# --- the run's data interval -----------------------------------------------------------------------
def run_interval(
    asset_extras: list[dict[str, Any]],
    *,
    interval_start: Any,
    interval_end: Any,
    settings: Settings | None = None,
) -> dict[str, str | None]:
    """The run's data interval ``[start, end)`` (ISO, aware UTC). Airflow 3.3 gives an
    Asset-triggered run none: it comes from the consumed asset events (their batches' span, end
    at the midnight after the newest event). A cron or manual run has its own; without any, the
    warehouse's data end stands in."""
    from recops.core.marts import NoDataError, data_end
    from recops.core.timeutil import midnight

    ends = [utc_aware(e["end"]) for e in asset_extras if e.get("end")]
    if ends:
        starts = [utc_aware(e["start"]) for e in asset_extras if e.get("start")]
        end = midnight(max(ends).date()) + timedelta(days=1)
        return {"start": min(starts).isoformat() if starts else None, "end": end.isoformat(), "by": "asset"}
    if _instant(interval_end) is not None:
        start = _instant(interval_start)
        return {"start": start.isoformat() if start else None, "end": _instant(interval_end).isoformat(), "by": "schedule"}
    try:
        return {"start": None, "end": data_end(_settings(settings)).isoformat(), "by": "data"}
    except NoDataError:
        return {"start": None, "end": None, "by": "none"}


def ingest_inbox(*, settings: Settings | None = None) -> dict[str, Any]:
    """recops_ingest: the inbox's files and the API's closed logs."""
    from recops.ingestion.inbox import ingest_inbox as collect

    return collect(_settings(settings))


# --- ingest and the raw gate ---------------------------------------------------------------------
def ingest(
    *, source: str, data_path: str | None, catalog_path: str | None, settings: Settings | None = None
) -> dict[str, Any]:
    """The run's file (if any) and every pending API feedback file."""
    from recops.ingestion import BatchWriteError, IngestError
    from recops.ingestion.sources import Source, ingest_run_inputs

    try:
        return ingest_run_inputs(
            _settings(settings),
            Source(source),
            Path(data_path) if data_path else None,
            Path(catalog_path) if catalog_path else None,
        )
    except BatchWriteError:
        raise  # the warehouse failed mid-write (rolled back): the task's retry may succeed
    except IngestError as exc:  # the file itself cannot be read: a retry would fail the same way
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(str(exc)) from exc


def validate_raw(
    ingested: dict[str, Any], *, run_id: str, interval_end: Any, settings: Settings | None = None
) -> dict[str, Any]:
    """Gate the newly ingested batches and every batch not gated yet (loaded by the CLI, the inbox
    DAG, the API's logs). A run without an interval end: the data's own end stands in for it."""
    from recops.core.marts import NoDataError, data_end
    from recops.quality.checkpoints import raw_gate

    s = _settings(settings)
    batch_ids = list(ingested.get("batch_ids", []))
    as_of = _instant(interval_end)
    if as_of is None:
        try:
            as_of = data_end(s)
        except NoDataError:
            as_of = None
    with _gate_fails_for_good():
        return raw_gate(s, batch_ids, run_id=run_id, as_of=utc_naive(as_of) if as_of else None)


# --- dbt and the marts gate ------------------------------------------------------------------------
def dbt_build(*, cutoff: str | None, interval_end: Any = None, settings: Settings | None = None) -> dict[str, Any]:
    """``dbt build`` of what the warehouse held before the run's interval end (a backfill sees no
    later data), for the run's cutoff (empty: the newest such event minus ``holdout_days``)."""
    from recops.core.dbt import build_marts
    from recops.core.marts import default_cutoff

    s = _settings(settings)
    as_of = _instant(interval_end)
    return build_marts(s, parse_date(cutoff, name="cutoff") or default_cutoff(s, before=as_of), as_of=as_of)


def validate_marts(*, run_id: str, settings: Settings | None = None) -> dict[str, Any]:
    from recops.quality.checkpoints import marts_gate

    with _gate_fails_for_good():
        return marts_gate(_settings(settings), run_id=run_id)


# --- features ----------------------------------------------------------------------------------
def features(*, settings: Settings | None = None) -> dict[str, Any]:
    """Export the ML marts and ``feast apply`` (the offline store for the training set; the
    online store is published after the gates)."""
    from recops.core.feature_store import prepare_features

    return prepare_features(_settings(settings))


def publish(*, interval_end: Any, interval_start: Any = None, settings: Settings | None = None) -> dict[str, Any]:
    """After the promotion decision: materialise the run's interval into the online store (a
    manual run without one: up to the data's own end) and publish the serving versions."""
    from recops.core.marts import data_end
    from recops.training.publish import publish_serving

    s = _settings(settings)
    return publish_serving(s, interval_end=_instant(interval_end) or data_end(s), interval_start=_instant(interval_start))


# --- training ----------------------------------------------------------------------------------
def build_training_set(
    transformed: dict[str, Any], *, run_id: str, settings: Settings | None = None
) -> dict[str, Any]:
    from recops.training.runs import training_set_file

    cutoff = parse_date(transformed["cutoff"], name="cutoff")
    return training_set_file(_settings(settings), cutoff=cutoff, run_id=run_id)


def validate_training_set(
    training_set: dict[str, Any], *, run_id: str, settings: Settings | None = None
) -> dict[str, Any]:
    from recops.quality.checkpoints import training_set_gate

    with _gate_fails_for_good():
        return training_set_gate(_settings(settings), Path(training_set["path"]), run_id=run_id)


def train_evaluate(training_set: dict[str, Any], *, settings: Settings | None = None) -> dict[str, Any]:
    from recops.training.runs import train_run

    return train_run(
        _settings(settings),
        training_set=Path(training_set["path"]),
        cutoff=parse_date(training_set["cutoff"], name="cutoff"),
        run_id=training_set["run_id"],
    )


def register_model(
    trained: dict[str, Any],
    *,
    transformed: dict[str, Any],
    checked: dict[str, Any],
    interval_start: Any,
    interval_end: Any,
    settings: Settings | None = None,
) -> dict[str, Any]:
    from recops.training.runs import register_run

    context = {
        "data_interval_start": _instant(interval_start),
        "data_interval_end": _instant(interval_end),
        "dbt": transformed,
        "quality": checked,
    }
    return register_run(_settings(settings), trained, context=context)


# --- promotion ---------------------------------------------------------------------------------
def promotion_gate(
    candidate: dict[str, Any], *, auto_promote: bool, run_id: str | None, settings: Settings | None = None
) -> dict[str, Any]:
    """The automatic gate against the champion; then reject, promote, or ask the approvers."""
    from recops.training.approval import gate_candidate

    return gate_candidate(
        candidate,
        auto_promote=bool(auto_promote),
        settings=_settings(settings),
        actor=PIPELINE_ACTOR,
        run_id=run_id,
        origin=_origin(PIPELINE_DAG_ID, run_id),
    )


def promote_champion(
    decision: dict[str, Any], approval: dict[str, Any], *, run_id: str, settings: Settings | None = None
) -> dict[str, Any]:
    from recops.training.approval import approve_candidate

    return approve_candidate(
        decision, approval, settings=_settings(settings), origin=_origin(PIPELINE_DAG_ID, run_id)
    )


def record_rejection(
    decision: dict[str, Any], response: dict[str, Any] | None, *, run_id: str, settings: Settings | None = None
) -> dict[str, Any]:
    from recops.training.approval import record_rejection as record

    return record(decision, response, settings=_settings(settings), origin=_origin(PIPELINE_DAG_ID, run_id))


def promotion_outcome(*, settings: Settings | None = None) -> dict[str, Any]:
    from recops.training.approval import champion_summary

    return champion_summary(_settings(settings))


def rollback(
    *, version: str | None, actor: str, reason: str | None, run_id: str, settings: Settings | None = None
) -> dict[str, Any]:
    from recops.training.approval import rollback_champion
    from recops.training.publish import ensure_published

    s = _settings(settings)
    move = rollback_champion(
        settings=s, to_version=version or None, actor=actor, reason=reason or None, origin=_origin(ROLLBACK_DAG_ID, run_id)
    )
    return {**move, "published": ensure_published(s, move["version"])}  # an older version may need it


# --- failure alerts ----------------------------------------------------------------------------
def alert_failed_task(context: dict[str, Any]) -> None:
    """Airflow ``on_failure_callback``: alert through the alert channels (a failed quality gate
    has alerted already, with every failed expectation)."""
    from recops.core.alerts import alert_task_failure
    from recops.quality.paths import data_docs_index
    from recops.quality.results import QualityGateError

    exception = context.get("exception")
    if isinstance(exception, QualityGateError) or isinstance(
        getattr(exception, "__cause__", None), QualityGateError
    ):
        return
    settings = get_settings()
    ti = context.get("task_instance") or context.get("ti")
    index = data_docs_index(settings)
    alert_task_failure(
        settings,
        dag_id=getattr(ti, "dag_id", PIPELINE_DAG_ID),
        run_id=str(context.get("run_id")),
        task_id=getattr(ti, "task_id", "unknown"),
        exception=str(exception),
        log_url=getattr(ti, "log_url", None),
        data_docs=str(index) if index.exists() else None,
    )



# --- quarantine ------------------------------------------------------------------------------
def release_batch(
    *, batch_id: str, reason: str, actor: str, run_id: str, settings: Settings | None = None
) -> dict[str, Any]:
    """The ``recops_quarantine`` DAG: release a quarantined batch (recorded with the run)."""
    from recops.quality.quarantine import release_batch as release

    return release(_settings(settings), batch_id, reason=reason, actor=actor, origin=f"recops_quarantine/{run_id}")


# --- the online monitor ------------------------------------------------------------------------
def online_marts(*, run_id: str, settings: Settings | None = None) -> dict[str, Any]:
    """recops_monitor and ``recops metrics online --refresh``: load the API's closed logs, gate
    them like every batch, then rebuild the online metrics marts (``dbt run``)."""
    from recops.core.dbt import run_online_marts
    from recops.core.marts import data_end
    from recops.ingestion.sources import ingest_pending_feedback
    from recops.quality.checkpoints import raw_gate

    s = _settings(settings)
    loaded = [b.batch_id for b in ingest_pending_feedback(s) if not b.duplicate_batch]
    with _gate_fails_for_good():
        gate = raw_gate(s, loaded, run_id=run_id, as_of=utc_naive(data_end(s)))
    return {"loaded": loaded, "gate": gate, **run_online_marts(s)}


def check_online_metrics(*, run_id: str, settings: Settings | None = None) -> dict[str, Any]:
    """recops_monitor: the champion's CTR of the newest served day against its trailing week."""
    from recops.quality.monitor import monitor_online

    return monitor_online(_settings(settings), run_id=run_id)
