"""Running Airflow for the tests (helpers, not fixtures): ``recops airflow up`` on a temporary ``RECOPS_HOME`` and port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from airflow_rest import AirflowREST

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
RECOPS = str(Path(sys.executable).with_name("recops"))


def free_port() -> int:
    """A TCP port nobody listens on right now (each module gets its own)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def recops_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a ``recops`` child process on ``home`` (never the repo's .recops/)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RECOPS_", "AIRFLOW"))}
    env.update({"RECOPS_HOME": str(home), "RECOPS_USER_SALT": os.environ["RECOPS_USER_SALT"], "NO_PROXY": "*"})
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
