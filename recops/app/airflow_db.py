"""Read-only look into a home's Airflow metadata database (SQLite or PostgreSQL): the task states
and XCom results of one DAG run, for ``recops run``'s progress display."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from recops.app.airflow_runtime import airflow_env
from recops.core.settings import Settings


@dataclass
class TaskState:
    task_id: str
    state: str | None
    start: datetime | None
    end: datetime | None
    result: Any = None

    @property
    def seconds(self) -> float | None:
        if self.start is None or self.end is None:
            return None
        return (self.end - self.start).total_seconds()


@dataclass
class RunSnapshot:
    run_id: str | None = None
    state: str | None = None
    tasks: dict[str, TaskState] = field(default_factory=dict)


def _engine(settings: Settings):
    from sqlalchemy import create_engine

    url = airflow_env(settings)["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    if url.startswith("sqlite:///"):
        return create_engine(url.replace("sqlite:///", "sqlite:///file:") + "?mode=ro&uri=true")
    return create_engine(url, pool_pre_ping=True)


def _stamp(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


class RunWatcher:
    """Finds the newest run of a DAG created after :meth:`mark` and reads its tasks."""

    def __init__(self, settings: Settings, dag_id: str) -> None:
        self.settings = settings
        self.dag_id = dag_id
        self._engine = None
        self._after_id = 0

    def _connect(self):
        if self._engine is None:
            self._engine = _engine(self.settings)
        return self._engine.connect()

    def mark(self) -> None:
        """Remember the newest run id so far: later snapshots only look at newer runs."""
        from sqlalchemy import text

        try:
            with self._connect() as con:
                value = con.execute(
                    text("select max(id) from dag_run where dag_id = :d"), {"d": self.dag_id}
                ).scalar()
        except Exception:  # no database or table yet: every run is newer
            value = None
        self._after_id = int(value or 0)

    def snapshot(self) -> RunSnapshot:
        """The newest run's tasks (empty while the run does not exist; never raises)."""
        from sqlalchemy import text

        try:
            with self._connect() as con:
                run = con.execute(
                    text(
                        "select run_id, state from dag_run where dag_id = :d and id > :i "
                        "order by id desc limit 1"
                    ),
                    {"d": self.dag_id, "i": self._after_id},
                ).first()
                if run is None:
                    return RunSnapshot()
                params = {"d": self.dag_id, "r": run.run_id}
                rows = con.execute(
                    text(
                        "select task_id, state, start_date, end_date from task_instance "
                        "where dag_id = :d and run_id = :r"
                    ),
                    params,
                ).all()
                results = con.execute(
                    text(
                        "select task_id, value from xcom where dag_id = :d and run_id = :r "
                        "and key = 'return_value'"
                    ),
                    params,
                ).all()
        except Exception:  # a locked SQLite file or a database being created: try again later
            return RunSnapshot()
        values = {task: json.loads(v) if isinstance(v, str) else v for task, v in results}
        tasks = {
            r.task_id: TaskState(r.task_id, r.state, _stamp(r.start_date), _stamp(r.end_date), values.get(r.task_id))
            for r in rows
        }
        return RunSnapshot(run_id=run.run_id, state=run.state, tasks=tasks)

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
