"""Shared helpers for end-to-end tests: run the real CLI in a child process on a temp home."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def recops(home: Path, *args: str, timeout: float = 900, extra_env: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``recops ARGS`` with ``RECOPS_HOME=home`` (a fresh process: Airflow config is per process)."""
    env = {**os.environ, "RECOPS_HOME": str(home), **(extra_env or {})}
    exe = Path(sys.executable).with_name("recops")
    proc = subprocess.run([str(exe), *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO)
    if check and proc.returncode != 0:
        raise AssertionError(f"recops {' '.join(args)} exited {proc.returncode}\n{proc.stdout[-6000:]}\n{proc.stderr[-6000:]}")
    return proc


def last_json(stdout: str) -> dict:
    """The JSON document a recops command printed last on stdout (logs may precede it)."""
    start = stdout.rfind("\n{")
    return json.loads(stdout[start + 1 if start >= 0 else 0 :])


@pytest.fixture(scope="session")
def cli() -> Callable[..., subprocess.CompletedProcess]:
    """``cli(home, *args)`` runs the real ``recops`` command on ``home``."""
    return recops


@pytest.fixture(scope="session")
def parse_json() -> Callable[[str], dict]:
    return last_json
