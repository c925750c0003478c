"""The dbt runner: the project in ``dbt_project/`` on the active profile's warehouse.

``run_dbt`` calls dbt in-process through ``dbtRunner``. Its configuration comes from the settings
directly, never from the environment: a ``profiles.yml`` rendered from the settings into
``settings.home / "dbt"`` (mode 600), the target of :attr:`Settings.dbt_target`, the salt as the
dbt var ``user_salt``, and dbt's target and log directories under ``settings.home / "dbt"``, so two
``RECOPS_HOME`` never share state and the repository stays clean.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field

from recops.core.settings import Settings
from recops.core.timeutil import utc_naive

DbtCommand = Literal["build", "run", "test", "seed"]

#: The tables of docs/CONTRACTS.md that ``dbt build`` produces, in lineage order.
MART_TABLES: tuple[str, ...] = (
    "fct_interactions",
    "dim_items",
    "dim_users",
    "ml_user_features",
    "ml_item_features",
    "ml_user_item_features",
    "ml_ltr_labels",
    "fct_served_items",
    "fct_feedback",
    "online_metrics_daily",
)

#: Node statuses that make a run fail (dbt's RunStatus / TestStatus values).
FAILED_STATUSES = frozenset({"error", "fail", "runtime error"})


class DbtFailure(BaseModel):
    """One dbt node that did not succeed (or, in ``DbtResult.warnings``, that warned)."""

    node: str = Field(description="unique_id of the node, e.g. model.recops.dim_items")
    status: str
    message: str


class DbtResult(BaseModel):
    """Outcome of one dbt invocation."""

    command: str
    success: bool
    status_counts: dict[str, int] = Field(default_factory=dict, description="node status -> count")
    failures: list[DbtFailure] = Field(default_factory=list)
    warnings: list[DbtFailure] = Field(default_factory=list, description="tests with status warn")
    elapsed: float = Field(description="wall-clock seconds of the invocation")
    target: str
    vars: dict[str, Any] = Field(default_factory=dict)


class DbtBuildError(RuntimeError):
    """dbt reported failed nodes (or could not run at all)."""

    def __init__(self, result: DbtResult, detail: str | None = None) -> None:
        self.result = result
        lines = [f"dbt {result.command} failed on target {result.target!r}"]
        if detail:
            lines.append(detail)
        lines += [f"- {f.node} [{f.status}]: {f.message}" for f in result.failures]
        super().__init__("\n".join(lines))


def dbt_state_dir(settings: Settings) -> Path:
    """Where dbt writes its target (manifest, compiled SQL) and logs for this ``RECOPS_HOME``."""
    return settings.home / "dbt"


def render_profile(settings: Settings) -> dict[str, Any]:
    """The ``recops`` dbt profile of these settings (DuckDB file or PostgreSQL database)."""
    if settings.dbt_target == "duckdb":
        output: dict[str, Any] = {
            "type": "duckdb",
            "path": str(settings.warehouse_path),
            "schema": settings.mart_schema,
            "threads": 2,
            "settings": {"memory_limit": settings.duckdb_memory_limit},
        }
    else:
        output = {
            "type": "postgres",
            "host": settings.postgres_host,
            "port": settings.postgres_port,
            "user": settings.postgres_user,
            "password": settings.postgres_password,
            "dbname": settings.postgres_db,
            "schema": settings.mart_schema,
            "sslmode": settings.postgres_sslmode,
            "threads": 2,
            "connect_timeout": 10,
        }
    return {"recops": {"target": settings.dbt_target, "outputs": {settings.dbt_target: output}}}


def write_profile(settings: Settings) -> Path:
    """Write :func:`render_profile` to ``<home>/dbt/profiles.yml`` (mode 600); return its folder
    (mode 700: dbt's logs and run results repeat the vars, the pseudonymisation salt among them)."""
    folder = dbt_state_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    path = folder / "profiles.yml"
    text = yaml.safe_dump(render_profile(settings), sort_keys=True)
    if not path.exists() or path.read_text() != text:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.chmod(0o600)
        os.replace(tmp, path)
    return folder


def dbt_args(
    settings: Settings,
    command: DbtCommand = "build",
    vars: dict[str, Any] | None = None,
    select: str | None = None,
    full_refresh: bool = False,
    exclude_resource_types: Sequence[str] = (),
) -> list[str]:
    """The command line ``run_dbt`` hands to dbt (pure; exposed for tests and logging)."""
    state = dbt_state_dir(settings)
    args = [
        command,
        "--project-dir",
        str(settings.dbt_project_dir),
        "--profiles-dir",
        str(state),
        "--target",
        settings.dbt_target,
        "--target-path",
        str(state / "target"),
        "--log-path",
        str(state / "logs"),
        "--no-version-check",
        "--no-send-anonymous-usage-stats",
        "--no-use-colors",
        "--quiet",  # errors only on the terminal; the whole log goes to <home>/dbt/logs/dbt.log
    ]
    if vars:
        args += ["--vars", json.dumps(vars, default=str, sort_keys=True)]
    if select:
        args += ["--select", select]
    if full_refresh:
        args.append("--full-refresh")
    for resource_type in exclude_resource_types:
        args += ["--exclude-resource-type", resource_type]
    return args


def check_vars(vars: dict[str, Any] | None) -> dict[str, Any]:
    """Validate the pipeline's dbt vars (fail before dbt starts); returns them JSON-ready."""
    checked = dict(vars or {})
    cutoff = checked.get("cutoff")
    if cutoff is not None:
        if isinstance(cutoff, datetime):
            raise ValueError(f"dbt var cutoff must be a date (YYYY-MM-DD), got {cutoff!r}")
        if isinstance(cutoff, str):
            try:
                cutoff = date.fromisoformat(cutoff)
            except ValueError as exc:
                raise ValueError(f"dbt var cutoff must be YYYY-MM-DD, got {cutoff!r}") from exc
        if not isinstance(cutoff, date):
            raise ValueError(f"dbt var cutoff must be YYYY-MM-DD, got {cutoff!r}")
        checked["cutoff"] = cutoff.isoformat()
    for name in ("feature_snapshot_days", "label_window_days", "label_windows", "holdout_days", "attribution_window_hours"):
        if name in checked:
            value = checked[name]
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"dbt var {name} must be a positive integer, got {value!r}")
    return checked


def run_dbt(
    settings: Settings,
    command: DbtCommand = "build",
    vars: dict[str, Any] | None = None,
    select: str | None = None,
    full_refresh: bool = False,
    exclude_resource_types: Sequence[str] = (),
) -> DbtResult:
    """Run ``dbt <command>`` on the warehouse of ``settings``; raise :class:`DbtBuildError` on failure.

    ``vars`` are dbt vars (``cutoff`` as ``YYYY-MM-DD`` or a ``date``, ``feature_snapshot_days``,
    ``label_window_days``, ``label_windows``); ``select`` is a dbt selector; ``full_refresh``
    rebuilds incremental models from scratch; ``exclude_resource_types`` (e.g. ``unit_test``)
    are left out.
    """
    from dbt.cli.main import dbtRunner

    from recops.core.privacy import user_salt

    vars = check_vars(vars)
    salt = user_salt(settings)  # before the dbt folder exists: its presence marks a pre-salt-file home
    state = write_profile(settings)
    (state / "logs").mkdir(parents=True, exist_ok=True)
    args = dbt_args(
        settings, command, {**vars, "user_salt": salt}, select, full_refresh, exclude_resource_types
    )

    started = time.perf_counter()
    try:
        res = dbtRunner().invoke(args)
    finally:
        if settings.dbt_target == "duckdb":
            _release_duckdb()
    elapsed = time.perf_counter() - started

    counts: Counter[str] = Counter()
    failures: list[DbtFailure] = []
    warnings: list[DbtFailure] = []
    node_results = getattr(res.result, "results", None) or []
    for node_result in node_results:
        status = str(getattr(node_result.status, "value", node_result.status))
        counts[status] += 1
        if status in FAILED_STATUSES or status == "warn":
            node = getattr(node_result, "node", None)
            issue = DbtFailure(
                node=getattr(node, "unique_id", None) or str(node),
                status=status,
                message=(node_result.message or "").strip(),
            )
            (warnings if status == "warn" else failures).append(issue)
    result = DbtResult(
        command=command,
        success=bool(res.success),
        status_counts=dict(counts),
        failures=failures,
        warnings=warnings,
        elapsed=round(elapsed, 3),
        target=settings.dbt_target,
        vars=dict(vars or {}),
    )
    if not result.success:
        detail = f"{type(res.exception).__name__}: {res.exception}" if res.exception else None
        raise DbtBuildError(result, detail)
    return result


def _release_duckdb() -> None:
    """Close the DuckDB database that dbt-duckdb keeps open in this process after a run.

    dbt-duckdb caches one connection per process; while it is open, DuckDB refuses any other
    connection to the file with a different configuration (e.g. ``Warehouse(read_only=True)``),
    and other processes cannot open the file at all.
    """
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # pragma: no cover - dbt-duckdb is a dependency
        return
    with DuckDBConnectionManager._LOCK:
        env = DuckDBConnectionManager._ENV
        if env is not None:
            env.close()
            DuckDBConnectionManager._ENV = None


def mart_row_counts(settings: Settings) -> dict[str, int]:
    """Rows in each table of :data:`MART_TABLES` (missing tables are absent from the dict)."""
    from recops.core.warehouse import Warehouse

    schema = settings.mart_schema
    counts: dict[str, int] = {}
    if settings.dbt_target == "duckdb" and not settings.warehouse_path.exists():
        return counts
    with Warehouse(settings, read_only=settings.dbt_target == "duckdb") as wh:
        for table in MART_TABLES:
            if wh.table_exists(schema, table):
                counts[table] = int(wh.scalar(f"select count(*) from {schema}.{table}"))
    return counts


def build_marts(settings: Settings, cutoff: date, *, as_of: datetime | None = None) -> dict[str, Any]:
    """``dbt build`` (staging, marts, ML feature tables, online metrics, dbt data tests) for an
    evaluation cutoff, of the data before ``as_of`` (the run's interval end; ``None``: all);
    returns the cutoff, the outcome and the row count of every mart.

    The models' unit tests are left out: their inputs are fixed rows, not the shop's data, so
    they belong to the test suite (``tests/dbt``) and CI, not to every run (dbt's own advice)."""
    result = run_dbt(
        settings,
        "build",
        exclude_resource_types=("unit_test",),
        vars={
            "as_of": None if as_of is None else utc_naive(as_of).isoformat(sep=" "),
            "cutoff": cutoff,
            "feature_snapshot_days": settings.feature_snapshot_days,
            "label_window_days": settings.label_window_days,
            "label_windows": settings.label_windows,
            "attribution_window_hours": settings.attribution_window_hours,
        },
    )
    return {
        "cutoff": cutoff.isoformat(),
        "success": result.success,
        "elapsed_s": round(result.elapsed, 2),
        "rows": mart_row_counts(settings),
    }


ONLINE_MARTS = "+online_metrics_daily +fct_feedback"


def run_online_marts(settings: Settings) -> dict[str, Any]:
    """``dbt run`` of the online metrics marts and what they read (no tests, no cutoff)."""
    result = run_dbt(
        settings, "run", vars={"attribution_window_hours": settings.attribution_window_hours}, select=ONLINE_MARTS
    )
    counts = mart_row_counts(settings)
    return {"success": result.success, "elapsed_s": round(result.elapsed, 2),
            "rows": {k: v for k, v in counts.items() if k in ("fct_served_items", "fct_feedback", "online_metrics_daily")}}
