"""Running Airflow for the tests: ``recops airflow up`` on a temporary ``RECOPS_HOME`` and port,
and its REST API as the UI uses it; with the headless Chromium of ``browser_tools`` (the approval
screenshot), exposed to the test modules as the ``airflow_tools`` fixture."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

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

    def failures(self, dag_id: str, run_id: str, tail: int = 4000) -> str:
        """The failed tasks of a run with the end of each one's log: what an assertion on a run's
        state shows when it fails."""
        tis = self.http.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances").json()["task_instances"]
        report = []
        for ti in tis:
            if ti["state"] not in ("failed", "upstream_failed", "up_for_retry"):
                continue
            report.append(f"--- {ti['task_id']}: {ti['state']} (try {ti['try_number']})")
            if ti["state"] == "upstream_failed":
                continue
            for try_number in range(1, (ti["try_number"] or 1) + 1):
                log = self.http.get(
                    f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{ti['task_id']}/logs/{try_number}",
                    params={"full_content": True},
                )
                content = log.json().get("content") if log.status_code == 200 else log.text
                lines = [
                    " ".join(str(e.get(k, "")) for k in ("timestamp", "level", "event", "error_detail") if e.get(k))
                    if isinstance(e, dict) else str(e)
                    for e in (content if isinstance(content, list) else [content])
                ]
                report.append(f"[try {try_number}] " + "\n".join(lines)[-tail:])
        return "\n".join(report) or f"no failed task in {dag_id}/{run_id}"

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



REPO = Path(__file__).resolve().parents[3]
ARTIFACTS = REPO / "test-artifacts"
RECOPS = str(Path(sys.executable).with_name("recops"))


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def recops_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a ``recops`` child process on ``home`` (never the repo's .recops/)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RECOPS_", "AIRFLOW"))}
    env.update({"RECOPS_HOME": str(home), "RECOPS_USER_SALT": os.environ["RECOPS_USER_SALT"], "NO_PROXY": "*",
                # the scenario triggers every run itself: no cron or inbox runs in between
                "RECOPS_PIPELINE_SCHEDULE": "", "RECOPS_PIPELINE_ON_NEW_DATA": "false",
                "RECOPS_INGEST_SCHEDULE": "", "RECOPS_MONITOR_SCHEDULE": ""})
    env.update(extra)
    return env


class AirflowUp:
    """``recops airflow up`` as a child process; ``stop()`` is Ctrl-C (SIGINT)."""

    def __init__(self, home: Path, port: int) -> None:
        self.home = home
        self.port = port
        self.endpoint_file = home / "airflow" / "endpoint.json"
        self.proc: subprocess.Popen | None = None
        self.rest: AirflowREST | None = None
        self.starts = 0

    def start(self, timeout_s: float = 300, **env: str) -> AirflowREST:
        log = open(self.home / f"airflow-up-{self.starts}.log", "wb")  # noqa: SIM115 - the child's
        self.starts += 1
        self.proc = subprocess.Popen(
            [RECOPS, "airflow", "up"],
            env=recops_env(self.home, RECOPS_AIRFLOW_PORT=str(self.port), **env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout_s
        while not self.endpoint_file.exists():
            if self.proc.poll() is not None:
                raise RuntimeError(f"recops airflow up exited with {self.proc.returncode}: see {log.name}")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"Airflow did not come up within {timeout_s} s: see {log.name}")
            time.sleep(1)
        self.rest = AirflowREST(self.endpoint_file)
        return self.rest

    def answer(
        self, dag_id: str, run_id: str, task_id: str, option: str, params_input: dict[str, Any],
        timeout_s: float = 120,
    ) -> httpx.Response:
        """Answer an approval request once the scheduler has taken in that the task is waiting.

        The task process that defers reports "success" to the executor; if the answer resumes the
        task before the scheduler has handled that report, Airflow 3.3 sees a running task the
        executor calls finished and fails it ("executor reported that the task instance finished
        with state success, but the task instance's state attribute is running"). A person never
        answers that fast; a test would. So wait for the scheduler's ``TaskInstance Finished``
        line of this try in ``awaiting_input`` (its log, as the UI's task log shows it)."""
        assert self.rest is not None
        tis = self.rest.http.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances").json()["task_instances"]
        try_number = next(t["try_number"] for t in tis if t["task_id"] == task_id)
        settled = re.compile(
            rf"TaskInstance Finished: dag_id={re.escape(dag_id)}, task_id={re.escape(task_id)}, "
            rf"run_id={re.escape(run_id)}, .*state=awaiting_input, .*try_number={try_number},"
        )
        log = self.home / "airflow" / "logs" / "scheduler.log"
        deadline = time.monotonic() + timeout_s
        while not (log.exists() and any(settled.search(line) for line in log.read_text().splitlines())):
            assert time.monotonic() < deadline, f"the scheduler never recorded {task_id} try {try_number} waiting"
            time.sleep(0.5)
        return self.rest.respond(dag_id, run_id, task_id, option, params_input)

    def stop(self, timeout_s: float = 90) -> int:
        """Ctrl-C; return the exit code once every component has stopped."""
        if self.rest is not None:
            self.rest.close()
            self.rest = None
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            code = self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self.proc = None
        return code




def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The approval scenario is one story against one running Airflow: its steps build on each
    other, so they keep their file order even when the rest of the suite is shuffled
    (pytest-randomly). Every other module stays shuffled."""
    story = [i for i in items if i.module is not None and i.module.__name__.endswith("test_airflow_approvals")]
    slots = [n for n, i in enumerate(items) if i in story]
    for slot, item in zip(slots, sorted(story, key=lambda i: i.location[1]), strict=True):
        items[slot] = item


@pytest.fixture(scope="session")
def airflow_tools(browser_tools):
    """The helpers above (helpers are fixtures), and the headless Chromium of ``browser_tools``."""
    from types import SimpleNamespace

    return SimpleNamespace(
        ARTIFACTS=ARTIFACTS, RECOPS=RECOPS, AirflowUp=AirflowUp, AirflowREST=AirflowREST,
        free_port=browser_tools.free_port, port_open=port_open, recops_env=recops_env,
        Browser=browser_tools.Browser, chromium_path=browser_tools.chromium_path,
    )
