"""What ``recops run`` and ``make demo`` show while a DAG runs: one line per finished task with
its time and its key figure (rows, gates, features, NDCG@k, model version); the tool logs go to a
file."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.markup import escape

from recops.app.airflow_db import RunSnapshot, TaskState

Figure = Callable[[dict[str, Any]], str]

DONE_STATES = {"success", "failed", "skipped", "upstream_failed"}
MARKS = {"success": "[green]✓[/green]", "failed": "[red]✗[/red]", "skipped": "[dim]-[/dim]",
         "upstream_failed": "[red]✗[/red]"}


def _n(value: Any) -> str:
    return f"{int(value):,}" if isinstance(value, int | float) else str(value)


def _ingest(out: dict[str, Any]) -> str:
    rows = out.get("summaries", [])
    if not rows:
        return "nothing new to ingest"
    total = {k: sum(int(r.get(k, 0)) for r in rows) for k in ("rows_in", "rows_loaded", "rows_quarantined")}
    known = sum(1 for r in rows if r.get("duplicate_batch"))
    text = f"{_n(total['rows_in'])} rows: {_n(total['rows_loaded'])} loaded, {_n(total['rows_quarantined'])} quarantined"
    text = (f"{len(rows)} batches, " if len(rows) > 1 else "") + text
    return text + (f", {known} known" if known else "")


def _gate(out: dict[str, Any]) -> str:
    if "validated" in out and not out["validated"]:
        return "no new batch to validate"
    failures = int(out.get("failures", 0) or 0)
    return "passed" + (f" with {failures} warning(s)" if failures else "")


def _dbt(out: dict[str, Any]) -> str:
    rows = out.get("rows", {})
    return f"cutoff {out.get('cutoff')}, {_n(rows.get('fct_interactions', 0))} interactions"


def _features(out: dict[str, Any]) -> str:
    rows = sum(int(v) for v in out.get("rows", {}).values())
    return f"{_n(rows)} feature rows, {len(out.get('feature_views', []))} views applied"


def _publish(out: dict[str, Any]) -> str:
    end = str(out.get("materialized", {}).get("end", ""))[:10]
    versions = ", ".join(f"{a} v{p['version']} ({_n(p['users'])} users)" for a, p in out.get("published", {}).items())
    return f"online to {end}; " + (versions or "nothing to serve")


def _training_set(out: dict[str, Any]) -> str:
    return f"{_n(out.get('rows', 0))} rows, {_n(out.get('queries', 0))} queries"


def _train(out: dict[str, Any]) -> str:
    metrics = out.get("metrics", {})
    key = next((k for k in metrics.get("ranker", {}) if k.startswith("ndcg@")), "ndcg@10")
    others = {m: v.get(key) for m, v in metrics.items() if m != "ranker" and v.get(key) is not None}
    ranker = metrics.get("ranker", {}).get(key)
    if ranker is None:
        return "trained"
    best = max(others, key=others.get) if others else None
    text = f"{key.upper()} ranker {ranker:.4f}"
    return text + (f", {best} {others[best]:.4f}" if best else "")


def _register(out: dict[str, Any]) -> str:
    return f"model version v{out.get('version')}"


def _decision(out: dict[str, Any]) -> str:
    action = str(out.get("action", "")).replace("_", " ")
    reason = ((out.get("gate") or {}).get("reason") or "").split(":")[0]
    return f"v{out.get('version')} {action}" + (f" ({reason})" if reason else "")


def _aliases(out: dict[str, Any]) -> str:
    return ", ".join(f"{alias} v{v}" for alias, v in out.items() if v) or "no aliases"


FIGURES: dict[str, Figure] = {
    "ingest": _ingest,
    "validate_raw": _gate,
    "dbt_build": _dbt,
    "validate_marts": _gate,
    "feast_apply": _features,
    "publish_online": _publish,
    "build_training_set": _training_set,
    "validate_training_set": _gate,
    "train_evaluate": _train,
    "register_model": _register,
    "promotion_gate": _decision,
    "promotion_outcome": _aliases,
    "promote_champion": _decision,
    "record_rejection": _decision,
}
QUIET_TASKS = {"needs_approval"}


def figure(task: TaskState) -> str:
    """The key figure of a finished task, from its XCom result."""
    if task.state != "success" or not isinstance(task.result, dict):
        return ""
    try:
        return FIGURES.get(task.task_id, lambda _: "")(task.result)
    except (KeyError, TypeError, ValueError, AttributeError):  # an unexpected shape: show no figure
        return ""


class RunProgress:
    """Prints each task once it has finished (in the order they finish)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.shown: set[str] = set()

    def update(self, snapshot: RunSnapshot) -> str | None:
        """Print newly finished tasks; return the running task's id (for a status line)."""
        done = [t for t in snapshot.tasks.values() if t.state in DONE_STATES and t.task_id not in self.shown]
        for task in sorted(done, key=lambda t: (t.end is None, t.end or 0)):
            self.shown.add(task.task_id)
            if task.task_id in QUIET_TASKS or task.state == "skipped":
                continue
            seconds = f"{task.seconds:6.1f} s" if task.seconds is not None else " " * 8
            mark = MARKS.get(task.state or "", "?")
            text = escape(figure(task)) if task.state == "success" else f"[red]{task.state}[/red]"
            self.console.print(
                f"{mark} {task.task_id:<23}{seconds}  {text}", highlight=False, no_wrap=True, overflow="ellipsis"
            )
        running = [t.task_id for t in snapshot.tasks.values() if t.state == "running"]
        return running[0] if running else None
