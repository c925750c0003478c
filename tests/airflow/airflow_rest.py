"""A small client for Airflow 3's public REST API (``/api/v2``), the API the UI itself uses.

Reads ``$RECOPS_HOME/airflow/endpoint.json`` (written by ``recops airflow up``) and logs in
through the simple auth manager (``POST /auth/token``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx

FINISHED = {"success", "failed"}


class AirflowREST:
    """Token-authenticated calls to one running Airflow."""

    def __init__(self, endpoint_file: Path) -> None:
        endpoint = json.loads(Path(endpoint_file).read_text())
        self.url: str = endpoint["url"]
        self.username: str = endpoint["username"]
        self.password: str = endpoint["password"]
        token = httpx.post(
            f"{self.url}/auth/token",
            json={"username": self.username, "password": self.password},
            timeout=30,
        )
        token.raise_for_status()
        self.http = httpx.Client(
            base_url=f"{self.url}/api/v2",
            headers={"Authorization": f"Bearer {token.json()['access_token']}"},
            timeout=60,
        )

    def close(self) -> None:
        self.http.close()

    # --- DAGs and runs --------------------------------------------------------------------------
    def wait_for_dags(self, dag_ids: set[str], timeout_s: float = 180) -> dict[str, dict]:
        """Wait until the DAG processor has parsed ``dag_ids`` (and nothing failed to import)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            errors = self.http.get("/importErrors").json()
            assert errors["total_entries"] == 0, errors
            dags = {d["dag_id"]: d for d in self.http.get("/dags").json()["dags"]}
            if dag_ids <= dags.keys():
                return dags
            time.sleep(2)
        raise TimeoutError(f"DAGs {dag_ids} not parsed within {timeout_s} s")

    def trigger(
        self, dag_id: str, *, conf: dict[str, Any], logical_date: str | None = None, run_id: str | None = None
    ) -> httpx.Response:
        """``POST /dags/{dag_id}/dagRuns``: what the UI's trigger dialog sends."""
        body: dict[str, Any] = {"logical_date": logical_date, "conf": conf}
        if run_id:
            body["dag_run_id"] = run_id
        return self.http.post(f"/dags/{dag_id}/dagRuns", json=body)

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self.http.get(f"/dags/{dag_id}/dagRuns/{run_id}").json()

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        tis = self.http.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances").json()["task_instances"]
        return {t["task_id"]: t["state"] for t in tis}

    def wait(
        self,
        dag_id: str,
        run_id: str,
        *,
        task_id: str | None = None,
        task_state: str | None = None,
        timeout_s: float = 600,
    ) -> dict[str, str | None]:
        """Wait until the run finishes, or until ``task_id`` reaches ``task_state``; return the
        task states. Fails early when the run ends before the task gets there."""
        deadline = time.monotonic() + timeout_s
        states: dict[str, str | None] = {}
        while time.monotonic() < deadline:
            states = self.task_states(dag_id, run_id)
            state = self.run(dag_id, run_id)["state"]
            if task_id and states.get(task_id) == task_state:
                return states
            if state in FINISHED:
                if task_id:
                    raise AssertionError(f"{dag_id}/{run_id} ended {state} before {task_id} was {task_state}: {states}")
                return states
            time.sleep(2)
        raise TimeoutError(f"{dag_id}/{run_id} still running after {timeout_s} s: {states}")

    def clear(self, dag_id: str, run_id: str, task_ids: list[str]) -> list[str]:
        """Clear tasks and everything downstream in a run (the UI's "Clear" button)."""
        response = self.http.post(
            f"/dags/{dag_id}/clearTaskInstances",
            json={
                "dry_run": False,
                "dag_run_id": run_id,
                "task_ids": task_ids,
                "include_downstream": True,
                "only_failed": False,
                "reset_dag_runs": True,
            },
        )
        response.raise_for_status()
        return sorted(t["task_id"] for t in response.json()["task_instances"])

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        response = self.http.get(
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}",
            params={"deserialize": True, "stringify": False},
        )
        response.raise_for_status()
        return response.json()["value"]

    # --- human in the loop ----------------------------------------------------------------------
    def hitl(self, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
        """The approval request of a task (subject, body, options, assigned users, response)."""
        response = self.http.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/-1/hitlDetails")
        response.raise_for_status()
        return response.json()

    def respond(
        self, dag_id: str, run_id: str, task_id: str, option: str, params_input: dict[str, Any]
    ) -> httpx.Response:
        """Answer it, as the Approve/Reject buttons of Required Actions do."""
        return self.http.patch(
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/-1/hitlDetails",
            json={"chosen_options": [option], "params_input": params_input},
        )
