"""``recops airflow up``: Airflow 3's api-server, scheduler, dag-processor and triggerer on this
``RECOPS_HOME``, with the project's DAGs, and with ``RECOPS_AIRFLOW_EXECUTOR=CeleryExecutor`` a
Celery worker of ``RECOPS_CELERY_WORKERS`` processes; writes ``airflow/endpoint.json`` (URL,
login, executor, workers) once the API answers."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from recops.app.airflow_runtime import airflow_env, create_production_databases, migrate_db
from recops.core.settings import Settings

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
CELERY_WORKER = "celery-worker"
ADMIN_USER = "admin"


@dataclass
class AirflowProcesses:
    """The running components and how to reach them."""

    url: str
    username: str
    password: str
    endpoint_file: Path
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    def alive(self) -> dict[str, bool]:
        return {name: p.poll() is None for name, p in self.procs.items()}


def admin_password(settings: Settings) -> str:
    """The admin password, kept in the simple auth manager's passwords file under ``airflow/``."""
    path = settings.airflow_home / "passwords.json"
    if path.exists():
        users = json.loads(path.read_text() or "{}")
        if ADMIN_USER in users:
            return users[ADMIN_USER]
    password = secrets.token_urlsafe(12)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({ADMIN_USER: password}))
    path.chmod(0o600)
    return password


def wait_for_api(url: str, timeout_s: float, procs: dict[str, subprocess.Popen]) -> None:
    """Poll the REST API's version endpoint until it answers (or a component dies)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        dead = [n for n, p in procs.items() if p.poll() is not None]
        if dead:
            raise RuntimeError(f"Airflow component(s) exited early: {dead} (see airflow/logs/*.log)")
        try:
            if httpx.get(f"{url}/api/v2/version", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise TimeoutError(f"Airflow API at {url} did not answer within {timeout_s:.0f} s")


def component_commands(settings: Settings, *, airflow: str = "airflow", workers: int = 1) -> dict[str, list[str]]:
    """The command line of each component; docker-compose.yml runs the same ones (with the
    api-server bound to every interface of its container; tests/deploy checks they match)."""
    return {
        "api-server": [airflow, "api-server", "--host", settings.airflow_host,
                       "--port", str(settings.airflow_port), "--workers", str(workers)],
        "scheduler": [airflow, "scheduler"],
        "dag-processor": [airflow, "dag-processor"],
        "triggerer": [airflow, "triggerer"],
        CELERY_WORKER: [airflow, "celery", "worker", "--concurrency", str(settings.celery_workers)],
    }


def components(settings: Settings) -> tuple[str, ...]:
    """What ``recops airflow up`` starts: the four components, plus the worker on Celery."""
    return COMPONENTS + ((CELERY_WORKER,) if settings.airflow_executor == "CeleryExecutor" else ())


def start_airflow(settings: Settings, *, timeout_s: float = 240.0) -> AirflowProcesses:
    """Start the components in the background; return once the API answers."""
    env = {**os.environ, **airflow_env(settings)}
    create_production_databases(settings)
    migrate_db(settings)
    password = admin_password(settings)
    log_dir = settings.airflow_home / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    url = f"http://{settings.airflow_host}:{settings.airflow_port}"
    running = AirflowProcesses(url, ADMIN_USER, password, settings.airflow_home / "endpoint.json")
    running.endpoint_file.unlink(missing_ok=True)
    commands = component_commands(settings, airflow=str(Path(sys.executable).with_name("airflow")))
    try:
        for name in components(settings):
            log = open(log_dir / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child
            running.procs[name] = subprocess.Popen(
                commands[name], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        wait_for_api(url, timeout_s, running.procs)
    except BaseException:
        stop_airflow(running)
        raise
    workers = settings.celery_workers if CELERY_WORKER in running.procs else 0
    running.endpoint_file.write_text(json.dumps({
        "url": url, "username": ADMIN_USER, "password": password,
        "executor": settings.airflow_executor, "celery_workers": workers,
    }))
    running.endpoint_file.chmod(0o600)
    return running


def stop_airflow(running: AirflowProcesses, timeout_s: float = 30.0) -> None:
    """Stop every component (SIGTERM to its process group, then SIGKILL)."""
    for proc in running.procs.values():
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    for proc in running.procs.values():
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    running.endpoint_file.unlink(missing_ok=True)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def airflow_up(settings: Settings) -> None:
    """Run Airflow in the foreground until Ctrl-C (or SIGTERM); then stop every component."""
    from rich.console import Console

    console = Console()
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        with console.status(f"starting Airflow ({', '.join(components(settings))})..."):
            running = start_airflow(settings)
    except KeyboardInterrupt:
        console.print("interrupted while starting; components stopped")
        return
    console.print(f"Airflow UI and REST API: [bold]{running.url}[/bold]  login: {running.username} / {running.password}")
    console.print(f"endpoint: {running.endpoint_file}  logs: {settings.airflow_home / 'logs'}  (Ctrl-C stops)")
    died = False
    try:
        while all(running.alive().values()):
            time.sleep(1)
        died = True
        console.print(f"[red]a component stopped:[/red] {running.alive()} (see {settings.airflow_home / 'logs'})")
    except KeyboardInterrupt:
        console.print("stopping Airflow...")
    finally:
        stop_airflow(running)
        console.print("Airflow stopped")
    if died:
        raise SystemExit(1)
