"""Fixtures of the deployment tests: Debian's ``docker-compose`` (v1) reading docker-compose.yml,
and the stack's commands run in this virtual environment.

No Docker engine runs here, so what a container would do is checked where it can be: the file
as compose resolves it (``docker-compose config``), and each service's command started with
``--help`` in our environment with the service's variables (its container paths mapped into a
temporary folder: ``/data`` -> tmp, ``/app`` -> the repo).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"
VENV_BIN = Path(sys.executable).parent
TOOLS = frozenset({"airflow", "celery", "mlflow", "python", "recops"})
"""Executables of the image that this virtual environment has too."""
CONTAINER_ROOTS = ("/data", "/app")


@dataclass(frozen=True)
class Compose:
    """``docker-compose -f docker-compose.yml config`` with an explicit environment (nothing
    inherited but ``PATH``; an empty env file, so a developer's ``.env`` is not read)."""

    executable: str
    empty_env_file: Path

    def config(self, variables: Mapping[str, str]) -> subprocess.CompletedProcess:
        env = {"PATH": os.environ.get("PATH", ""), **variables}
        args = [self.executable, "-f", str(COMPOSE_FILE), "--env-file", str(self.empty_env_file), "config"]
        return subprocess.run(args, env=env, capture_output=True, text=True, timeout=60, cwd=REPO)


@pytest.fixture(scope="session")
def compose(needs_service, tmp_path_factory: pytest.TempPathFactory) -> Compose:
    """Debian's docker-compose; fails in CI, skips elsewhere, when it is not installed."""
    exe = shutil.which("docker-compose")
    needs_service("docker-compose", exe is not None, "not on PATH (apt-get install docker-compose)")
    empty = tmp_path_factory.mktemp("compose") / "empty.env"
    empty.write_text("")
    return Compose(str(exe), empty)


@pytest.fixture(scope="session")
def compose_secrets() -> dict[str, str]:
    """A dummy value for every variable of ``.env.example`` (the secrets the stack requires);
    the Fernet key is a real one, since Airflow parses it."""
    from cryptography.fernet import Fernet

    names = re.findall(r"^([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), flags=re.MULTILINE)
    values = {name: f"test-{name.lower().replace('_', '-')}" for name in names}
    values["AIRFLOW_FERNET_KEY"] = Fernet.generate_key().decode()
    return values


@pytest.fixture(scope="session")
def stack(compose: Compose, compose_secrets: dict[str, str]) -> dict:
    """The resolved compose file (``docker-compose config``) with every secret set."""
    proc = compose.config(compose_secrets)
    assert proc.returncode == 0, proc.stderr
    return yaml.safe_load(proc.stdout)


def shell_words(test: list[str]) -> list[str]:
    """A healthcheck's command as words: ``CMD`` as is, ``CMD-SHELL`` split like ``sh`` would
    (``$$`` is compose's escape of ``$``; ``$HOSTNAME`` becomes ``localhost``)."""
    kind, *rest = test
    if kind == "CMD":
        return rest
    line = rest[0].replace("$$", "$").replace("${HOSTNAME}", "localhost").replace("$HOSTNAME", "localhost")
    return shlex.split(line)


def local_value(value: str, data_root: Path) -> str:
    """A container path (``/data/...``, ``/app/...``) as its counterpart on this machine."""
    for root, local in (("/data", data_root), ("/app", REPO)):
        if value == root or value.startswith(root + "/"):
            return str(local) + value[len(root):]
    return value


def tool_commands(service: dict) -> list[list[str]]:
    """The service's command and healthcheck when they start one of :data:`TOOLS` (a
    ``python -c`` healthcheck needs the running service: it is only compiled, by the test)."""
    commands = [service.get("command") or []]
    test = (service.get("healthcheck") or {}).get("test")
    if test and test[0] in ("CMD", "CMD-SHELL") and shell_words(test)[0] != "python":
        commands.append(shell_words(test))
    return [c for c in commands if c and c[0] in TOOLS]


def probe_argv(command: list[str]) -> list[str]:
    """``python -c CODE`` runs as is (an import check); any other tool gets ``--help`` appended,
    so its parser reads every option the compose command passes and then stops."""
    return command if command[0] == "python" else [*command, "--help"]


@dataclass(frozen=True)
class Probe:
    """One tool command of a service (``command``, as compose has it) started here as ``argv``."""

    command: list[str]
    argv: list[str]
    returncode: int
    output: str


@pytest.fixture(scope="session")
def probes(stack: dict, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Probe]]:
    """Every tool command of the stack (service commands and healthchecks) started in this
    virtual environment with its service's environment, all at once; by service. Airflow and
    MLflow take several seconds each to import, hence the parallel runs."""
    data_root = tmp_path_factory.mktemp("container-data")
    home = tmp_path_factory.mktemp("container-home")
    jobs: list[tuple[str, list[str], list[str], dict[str, str]]] = []
    for name, service in stack["services"].items():
        env = {k: local_value(str(v), data_root) for k, v in (service.get("environment") or {}).items()}
        env |= {"PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}", "HOME": str(home)}
        for command in tool_commands(service):
            argv = [local_value(word, data_root) for word in probe_argv(command)]
            jobs.append((name, command, argv, env))

    def run(job: tuple[str, list[str], list[str], dict[str, str]]) -> tuple[str, Probe]:
        name, command, argv, env = job
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, cwd=home)
        return name, Probe(command, argv, proc.returncode, proc.stdout + proc.stderr)

    by_service: dict[str, list[Probe]] = {name: [] for name in stack["services"]}
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:  # more only thrash
        for name, probe in pool.map(run, jobs):
            by_service[name].append(probe)
    return by_service


@pytest.fixture(scope="session")
def top_level_help(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], str]:
    """``top_level_help(tool)``: ``TOOL --help`` (options given before a subcommand, such as
    celery's ``--app``, are listed there and not in the subcommand's help)."""
    home = tmp_path_factory.mktemp("tool-home")
    env = {"PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}", "HOME": str(home),
           "AIRFLOW_HOME": str(home / "airflow")}
    cache: dict[str, str] = {}

    def get(tool: str) -> str:
        if tool not in cache:
            proc = subprocess.run([tool, "--help"], env=env, capture_output=True, text=True, timeout=120, cwd=home)
            cache[tool] = proc.stdout + proc.stderr
        return cache[tool]

    return get
