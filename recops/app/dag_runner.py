"""``python -m recops.app.dag_runner``: one DAG run with Airflow's ``dag.test()``, in this process.

:func:`recops.app.run.run_dag` starts it as a child process with the Airflow environment of the
home (``env=``) and its output going to the run's log file; the child writes the run's outcome as
JSON to ``--result``. Airflow reads its configuration when first imported, which is why a run
gets its own process; the in-process Execution API that ``dag.test()`` talks to is built for the
Task SDK's own API version only (:func:`newest_api_version_only`).
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path


def newest_api_version_only() -> bool:
    """Build ``dag.test()``'s in-process Execution API for the one API version this process's
    Task SDK speaks (its newest), as Airflow's head routes: Airflow's app otherwise generates
    (cadwyn) the routes and schemas of every version since 2025-04 on its first request, about
    4 s of every run, for older workers that never call this process. The routes kept only for
    those (``only_exists_in_older_versions``) are left out with them. False, and Airflow's app
    as it is, when the SDK speaks another version or Airflow's layout differs."""
    try:
        from airflow.api_fastapi.execution_api import versions
        from airflow.api_fastapi.execution_api.routes import execution_api_router
        from airflow.sdk.api.datamodels._generated import API_VERSION
        from cadwyn import HeadVersion, Version, VersionBundle
        from cadwyn.route_generation import _DELETED_ROUTE_TAG
    except ImportError:
        return False
    bundle = getattr(versions, "bundle", None)
    newest = getattr(bundle.versions[0], "value", None) if getattr(bundle, "versions", None) else None
    if newest != API_VERSION or not isinstance(getattr(execution_api_router, "routes", None), list):
        return False
    execution_api_router.routes[:] = [
        route for route in execution_api_router.routes if _DELETED_ROUTE_TAG not in (getattr(route, "tags", None) or ())
    ]
    versions.bundle = VersionBundle(HeadVersion(), Version(API_VERSION))
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dags-folder", required=True, type=Path)
    parser.add_argument("--dag", required=True)
    parser.add_argument("--logical-date", required=True, type=datetime.fromisoformat)
    parser.add_argument("--conf", default="{}", type=json.loads)
    parser.add_argument("--result", required=True, type=Path)
    args = parser.parse_args(argv)

    from airflow.dag_processing.dagbag import DagBag

    newest_api_version_only()
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
