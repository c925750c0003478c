"""docker-compose.yml would start: what can be proven without a Docker engine.

- Secrets have no defaults: ``docker-compose config`` refuses to run without any one of them and
  names it; with them it passes.
- One image, built once, reused by every RecOps service; dependencies wait for health or for a
  one-shot's success; every long-running service has a healthcheck and a restart policy.
- Every service's command and healthcheck starts in this environment (``--help``) with the
  service's variables, and every option they pass exists.
- The Airflow services run the components and configuration of ``recops airflow up``
  (:mod:`recops.app.airflow_services`, :func:`recops.app.airflow_runtime.airflow_env`).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
COMPOSE_TEXT = (REPO / "docker-compose.yml").read_text()

SECRETS = {
    "POSTGRES_PASSWORD", "RECOPS_USER_SALT", "RECOPS_API_TOKENS", "AIRFLOW_JWT_SECRET",
    "AIRFLOW_API_SECRET_KEY", "AIRFLOW_FERNET_KEY", "MLFLOW_CRYPTO_KEK_PASSPHRASE",
}
INFRA = {"postgres", "redis"}
ONE_SHOT = {"recops-image", "airflow-init"}
BUILDER = "recops-image"
AIRFLOW = {"airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer", "airflow-worker"}
SERVICES = INFRA | ONE_SHOT | AIRFLOW | {"mlflow", "api"}
COMPONENT_SERVICES = {
    "api-server": "airflow-apiserver", "scheduler": "airflow-scheduler",
    "dag-processor": "airflow-dag-processor", "triggerer": "airflow-triggerer",
}
AIRFLOW_NEEDS = {
    "AIRFLOW_HOME", "AIRFLOW__CORE__DAGS_FOLDER", "AIRFLOW__CORE__EXECUTOR", "AIRFLOW__CORE__FERNET_KEY",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CELERY__BROKER_URL", "AIRFLOW__CELERY__RESULT_BACKEND",
    "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY", "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
    "RECOPS_INBOX_DIR",
}
RECOPS_NEEDS = {"RECOPS_PROFILE", "RECOPS_HOME", "RECOPS_USER_SALT", "RECOPS_POSTGRES_HOST",
                "RECOPS_POSTGRES_PASSWORD", "RECOPS_REDIS_URL", "RECOPS_MLFLOW_TRACKING_URI"}
NEEDS = {
    "postgres": {"POSTGRES_PASSWORD"},
    "mlflow": {"MLFLOW_BACKEND_STORE_URI", "MLFLOW_CRYPTO_KEK_PASSPHRASE"},
    "api": RECOPS_NEEDS | {"RECOPS_API_TOKENS"},
    **{name: RECOPS_NEEDS | AIRFLOW_NEEDS for name in AIRFLOW | {"airflow-init"}},
}
"""Variables each service cannot do without (set, non-empty)."""
PENDING_SETTINGS: dict[str, str] = {}
"""``RECOPS_*`` variables compose sets that ``Settings`` does not have yet."""
NATIVE_ONLY = {"NO_PROXY"}
INTENDED_DIFFERENCES = {
    "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor: tasks run on the airflow-worker service",
    "AIRFLOW__CORE__PARALLELISM": "a server runs more tasks at once than a laptop",
    "AIRFLOW__API__HOST": "the api-server binds every interface of its container",
    "AIRFLOW__API__BASE_URL": "links in the UI use the published port",
    "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "backs the scheduler's healthcheck",
}
"""Airflow settings on which the stack and ``recops airflow up`` differ on purpose."""
SECRET_NAME = re.compile(r"PASSWORD|SECRET|SALT|TOKEN|KEY|PASSPHRASE")
INTERPOLATION = re.compile(r"(?<!\$)\$\{([^}]*)\}")


def _interpolations() -> list[tuple[str, str]]:
    """``(name, operator + rest)`` of every ``${...}`` of the file (``$${...}`` is an escape)."""
    found = []
    for body in INTERPOLATION.findall(COMPOSE_TEXT):
        name = re.match(r"[A-Za-z_][A-Za-z0-9_]*", body).group(0)
        found.append((name, body[len(name):]))
    return found


def _options(command: list[str]) -> list[str]:
    """The options a command passes (``--port=5000`` -> ``--port``)."""
    return [word.split("=", 1)[0] for word in command[1:] if word.startswith("-")]


def _lists(help_text: str, option: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", help_text) is not None


def _ancestors(services: dict, name: str) -> set[str]:
    seen: set[str] = set()
    todo = list(services[name].get("depends_on") or {})
    while todo:
        dep = todo.pop()
        if dep not in seen:
            seen.add(dep)
            todo.extend(services[dep].get("depends_on") or {})
    return seen


def _settings_of(env: dict):
    """The ``Settings`` a container builds from its ``RECOPS_*`` variables (code in ``/app``)."""
    from recops.core.settings import Settings

    kwargs = {}
    for name, field in Settings.model_fields.items():
        key = field.alias or f"RECOPS_{name.upper()}"
        if key in env:
            kwargs[field.alias or name] = str(env[key])
    return Settings(repo_root="/app", **kwargs)


# --- secrets -----------------------------------------------------------------------------------
def test_the_required_variables_are_the_secrets_of_env_example() -> None:
    required = {name for name, rest in _interpolations() if rest.startswith(":?")}
    example = (REPO / ".env.example").read_text()
    listed = dict(re.findall(r"^([A-Z][A-Z0-9_]*)=(.*)$", example, flags=re.MULTILINE))
    assert required == SECRETS
    assert listed == dict.fromkeys(SECRETS, ""), "every secret listed once, with no value"


@pytest.mark.parametrize("how", ["unset", "empty"])
@pytest.mark.parametrize("missing", sorted(SECRETS))
def test_config_refuses_a_missing_secret_and_names_it(compose, compose_secrets, missing, how) -> None:
    variables = {k: v for k, v in compose_secrets.items() if k != missing}
    if how == "empty":
        variables[missing] = ""
    proc = compose.config(variables)
    assert proc.returncode != 0, f"config passed without {missing}"
    assert proc.stderr.rstrip().endswith(f": set {missing} (see .env.example)"), proc.stderr[-600:]


def test_every_interpolation_is_required_and_no_secret_has_a_default() -> None:
    interpolations = _interpolations()
    assert interpolations
    bare = sorted({name for name, rest in interpolations if not rest})
    assert not bare, f"${{VAR}} without :? or :- becomes empty when unset: {bare}"
    defaulted = sorted({name for name, rest in interpolations if rest.lstrip(":").startswith("-")
                        and SECRET_NAME.search(name)})
    assert not defaulted, f"secrets with a default: {defaulted}"


def test_secret_settings_come_from_the_secrets(stack, compose_secrets) -> None:
    """No secret-looking variable of a service holds a literal written in the file."""
    values = set(compose_secrets.values())
    literal = sorted(
        f"{name}: {key}"
        for name, service in stack["services"].items()
        for key, value in (service.get("environment") or {}).items()
        if SECRET_NAME.search(key) and not key.endswith("_FILE") and str(value) not in values
    )
    assert not literal


def test_services_get_the_variables_they_need(stack, compose_secrets) -> None:
    services = stack["services"]
    for name, needs in NEEDS.items():
        env = services[name].get("environment") or {}
        assert {k for k in needs if str(env.get(k) or "")} == needs, f"{name} misses {needs - set(env)}"
    init_sql = (REPO / "docker" / "postgres-init.sql").read_text().lower()
    databases = {"recops", *re.findall(r"create database (\w+);", init_sql)}
    password = compose_secrets["POSTGRES_PASSWORD"]
    urls = [str(v) for s in services.values() for v in (s.get("environment") or {}).values()
            if "@postgres:5432/" in str(v)]
    assert urls
    for url in urls:
        assert f":{password}@postgres:5432/" in url, url
        assert url.rsplit("/", 1)[1] in databases, f"{url}: database not created by postgres-init.sql"


def test_recops_variables_are_settings_and_validate(stack) -> None:
    from recops.core.settings import Settings

    known = {f.alias or f"RECOPS_{n.upper()}" for n, f in Settings.model_fields.items()} | set(PENDING_SETTINGS)
    for name, service in stack["services"].items():
        env = service.get("environment") or {}
        unknown = sorted(k for k in env if k.startswith("RECOPS_") and k not in known)
        assert not unknown, f"{name}: no such setting {unknown}"
        if any(k.startswith("RECOPS_") for k in env):
            settings = _settings_of(env)
            assert settings.profile == "production"
            assert settings.user_salt != "recops-dev-salt"


# --- one image, order, health ------------------------------------------------------------------
def test_config_passes_with_one_image_built_once(stack) -> None:
    services = stack["services"]
    assert set(services) == SERVICES
    assert [n for n, s in services.items() if "build" in s] == [BUILDER]
    image = services[BUILDER]["image"]
    assert {n for n, s in services.items() if s.get("image") == image} == SERVICES - INFRA
    for name in SERVICES - INFRA - {BUILDER}:
        assert services[name].get("pull_policy") == "never", name
        assert BUILDER in _ancestors(services, name), f"{name} may start before the image is built"


def test_long_running_services_have_a_healthcheck_and_restart(stack) -> None:
    for name, service in stack["services"].items():
        if name in ONE_SHOT:
            assert service.get("restart") == "no", name
            continue
        test = (service.get("healthcheck") or {}).get("test")
        assert test and test[0] in ("CMD", "CMD-SHELL"), f"{name}: no healthcheck"
        assert service.get("restart") == "unless-stopped", name


def test_dependencies_wait_for_success_or_health(stack) -> None:
    services = stack["services"]
    for name, service in services.items():
        for dep, spec in (service.get("depends_on") or {}).items():
            expected = "service_completed_successfully" if dep in ONE_SHOT else "service_healthy"
            assert spec.get("condition") == expected, f"{name} -> {dep}"
    for name in AIRFLOW:
        assert "airflow-init" in services[name]["depends_on"], name


def test_python_healthchecks_compile(stack) -> None:
    for name, service in stack["services"].items():
        test = (service.get("healthcheck") or {}).get("test") or []
        if test[:3] == ["CMD", "python", "-c"]:
            compile(test[3], f"<{name} healthcheck>", "exec")


def test_inbox_and_state_volumes(stack) -> None:
    services = stack["services"]
    for name in AIRFLOW | {"airflow-init", "mlflow", "api"}:
        env = services[name].get("environment") or {}
        mounts = {str(v).split(":")[1] for v in services[name].get("volumes") or []}
        assert "/data/recops" in mounts, name
        if "RECOPS_HOME" in env:
            assert env["RECOPS_HOME"] == "/data/recops", name
    for name in AIRFLOW:
        assert "recops-inbox:/data/inbox:rw" in services[name]["volumes"], name
        assert services[name]["environment"]["RECOPS_INBOX_DIR"] == "/data/inbox"
    assert "recops-inbox" in stack["volumes"]


def test_mlflow_starts_no_job_workers(stack) -> None:
    """RecOps submits no MLflow server jobs: the server runs without the job runner and its seven
    Huey consumer processes (``tests/serving/test_faults.py`` starts it the same way)."""
    assert stack["services"]["mlflow"]["environment"]["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"


# --- the commands run here ---------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("service", sorted(SERVICES - INFRA))
def test_commands_start_in_our_environment(probes, top_level_help, service) -> None:
    """The service's command (and healthcheck) with ``--help``: it starts, and lists every
    option compose passes (options before a subcommand: in the tool's top-level help)."""
    assert probes[service], f"{service} runs none of our tools"
    for probe in probes[service]:
        shown = " ".join(probe.argv)
        assert probe.returncode == 0, f"{shown} exited {probe.returncode}\n{probe.output[-3000:]}"
        if probe.command[0] == "python":
            continue
        missing = [o for o in _options(probe.command)
                   if not _lists(probe.output, o) and not _lists(top_level_help(probe.command[0]), o)]
        assert not missing, f"{shown}: no such option {missing}\n{probe.output[-3000:]}"


def test_airflow_components_are_those_of_recops_airflow_up(stack) -> None:
    from recops.app.airflow_services import CELERY_WORKER, COMPONENTS, component_commands

    services = stack["services"]
    env = services["airflow-apiserver"]["environment"]
    api = services["airflow-apiserver"]["command"]
    bound = _settings_of(env).model_copy(update={"airflow_host": env["AIRFLOW__API__HOST"]})
    expected = component_commands(bound, workers=int(api[api.index("--workers") + 1]))
    assert set(COMPONENTS) == set(COMPONENT_SERVICES)
    for component, service in COMPONENT_SERVICES.items():
        assert services[service]["command"] == expected[component], service
    assert services["airflow-worker"]["command"] == expected[CELERY_WORKER]


def test_airflow_configuration_is_that_of_airflow_env(stack) -> None:
    from recops.app.airflow_runtime import airflow_env

    services = stack["services"]
    env = services["airflow-scheduler"]["environment"]
    for name in AIRFLOW | {"airflow-init"}:
        assert services[name]["environment"] == env, f"{name} has another configuration"
    native = airflow_env(_settings_of(env))
    shared = {k for k in native if not k.startswith("RECOPS_")} - NATIVE_ONLY
    assert not shared - set(env), "set by recops airflow up, missing in compose"
    differ = {k for k in shared if str(env[k]) != native[k]}
    assert differ == set(INTENDED_DIFFERENCES), {k: (env[k], native[k]) for k in differ}
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"


# --- the image ---------------------------------------------------------------------------------
def test_dockerignore_keeps_local_state_out_of_the_image() -> None:
    entries = {line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()}
    assert {".venv", ".recops", ".git", ".env", "test-artifacts", "**/__pycache__", "dbt_project/target"} <= entries


def test_dockerfile_installs_the_openmp_runtime_and_runs_unprivileged() -> None:
    text = (REPO / "Dockerfile").read_text()
    instructions = re.sub(r"\\\n\s*", " ", text)
    assert re.search(r"^FROM python:3\.11-slim$", instructions, re.MULTILINE)
    assert re.search(r"^RUN .*apt-get install .*\blibgomp1\b", instructions, re.MULTILINE)
    assert re.search(r"^RUN .*uv sync --frozen --no-dev$", instructions, re.MULTILINE)
    users = re.findall(r"^USER (\S+)$", instructions, re.MULTILINE)
    assert users and users[-1] not in ("root", "0")


def test_celery_executor_settings_reach_every_airflow_process() -> None:
    """`RECOPS_AIRFLOW_EXECUTOR=CeleryExecutor` (production only): the executor, broker, result
    backend in the Airflow database and worker concurrency of `recops airflow up`, whose worker
    command is compose's."""
    from pydantic import ValidationError

    from recops.app.airflow_runtime import airflow_env
    from recops.app.airflow_services import CELERY_WORKER, COMPONENTS, components
    from recops.core.settings import Settings

    with pytest.raises(ValidationError, match="CeleryExecutor needs RECOPS_PROFILE=production"):
        Settings(airflow_executor="CeleryExecutor")
    local = Settings(profile="production", user_salt="a-test-salt-1234")
    assert airflow_env(local)["AIRFLOW__CORE__EXECUTOR"] == "recops.app.airflow_executors.WarmLocalExecutor"
    assert not any(k.startswith("AIRFLOW__CELERY__") for k in airflow_env(local))
    assert components(local) == COMPONENTS
    celery = local.model_copy(update={"airflow_executor": "CeleryExecutor", "celery_workers": 3,
                                      "celery_broker_url": "amqp://guest:guest@127.0.0.1:5672//"})
    env = airflow_env(celery)
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CELERY__BROKER_URL"] == "amqp://guest:guest@127.0.0.1:5672//"
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"] == "db+postgresql://postgres@127.0.0.1:5432/recops_airflow"
    assert env["AIRFLOW__CELERY__WORKER_CONCURRENCY"] == "3"
    assert env["AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS"] == "recops.app.airflow_celery.CELERY_CONFIG"
    assert components(celery) == (*COMPONENTS, CELERY_WORKER)
