"""``python -m recops.app.dag_runner``: one DAG run with Airflow's ``dag.test()``, in this process.

:func:`recops.app.run.run_dag` starts it as a child process with the Airflow environment of the
home (``env=``) and its output going to the run's log file; the child writes the run's outcome as
JSON to ``--result``. Airflow reads its configuration when first imported, which is why a run
gets its own process.
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dags-folder", required=True, type=Path)
    parser.add_argument("--dag", required=True)
    parser.add_argument("--logical-date", required=True, type=datetime.fromisoformat)
    parser.add_argument("--conf", default="{}", type=json.loads)
    parser.add_argument("--result", required=True, type=Path)
    args = parser.parse_args(argv)

    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(args.dags_folder))
    if bag.import_errors:
        outcome = {"dag_id": args.dag, "state": "import_error", "errors": bag.import_errors, "tasks": {}}
    else:
        dag_run = bag.dags[args.dag].test(logical_date=args.logical_date, run_conf=args.conf)
        outcome = {
            "dag_id": args.dag,
            "run_id": dag_run.run_id,
            "state": str(dag_run.state),
            "tasks": {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()},
        }
    args.result.write_text(json.dumps(outcome, default=str))
    return 0


if __name__ == "__main__":
    from recops.app.fast_exit import exit_now

    exit_now(main())
