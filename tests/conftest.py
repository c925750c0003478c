"""Test-wide fixtures and the isolation rules every test keeps.

- Each test session gets its own ``RECOPS_HOME`` (never the repo's ``.recops/``); nothing else of
  the environment is set here.
- After every test: the process environment is what it was before it and no ``get_settings()``
  value is cached (a test that leaks fails in teardown, listing what it left).
- At the end of the session: no PostgreSQL database of this session is left (all of them are named
  by :func:`pg_database_name`).
- Shared helpers are fixtures: the real ``recops`` CLI in a child process (``cli``), a real
  webhook receiver and SMTP server (``webhook``, ``smtp``), the public data sets (``dataset``),
  PostgreSQL databases (``postgres_settings``).
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

REPO = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``heavy`` (modules of whole pipeline runs, minutes each) first, then those
    marked ``slow`` (Airflow and API servers, single runs), each group in the order pytest-randomly
    shuffled it: xdist (``--dist loadfile --no-loadscope-reorder``, see the Makefile) then hands the
    longest modules out first and the two workers finish together instead of one waiting for the
    other."""
    items.sort(
        key=lambda item: (
            item.get_closest_marker("heavy") is None,
            item.get_closest_marker("slow") is None,
        )
    )
IMPORT_TIME_ENV = {
    "KMP_DUPLICATE_LIB_OK", "KMP_INIT_AT_FORK",  # scikit-learn / joblib, when first imported
    "PROMETHEUS_MULTIPROCESS_DIR", "PROMETHEUS_MULTIPROC_DIR",  # feast.metrics, when first imported
    "PYTEST_CURRENT_TEST",  # pytest itself
}
"""Variables that third-party imports and pytest set; not a test's doing."""
SESSION_TOKEN = secrets.token_hex(3)


# --- isolation ---------------------------------------------------------------------------------
@pytest.fixture(autouse=True, scope="session")
def _isolated_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("recops-home")
    saved = dict(os.environ)
    os.environ["RECOPS_HOME"] = str(home)
    os.environ.setdefault("RECOPS_USER_SALT", "test-salt-123")
    try:
        yield home
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _env_changes(before: dict[str, str], after: dict[str, str]) -> list[str]:
    keys = (set(before) | set(after)) - IMPORT_TIME_ENV
    return sorted(
        f"{k}: {before.get(k, '<unset>')!r} -> {after.get(k, '<unset>')!r}"
        for k in keys
        if before.get(k) != after.get(k)
    )


@pytest.fixture(autouse=True)
def _no_leftovers(_isolated_home: Path) -> Iterator[None]:
    """Fail a test that leaves an environment variable or a cached setting behind."""
    from recops.core.settings import get_settings

    before = dict(os.environ)
    yield
    changed = _env_changes(before, dict(os.environ))
    cached = get_settings.cache_info().currsize
    if changed or cached:
        os.environ.clear()
        os.environ.update(before)
        get_settings.cache_clear()
        pytest.fail(f"test left behind: environment {changed}, cached settings {cached}")


# --- services ----------------------------------------------------------------------------------
def require_service(name: str, ok: bool, why: str) -> None:
    """Fail when CI is set and a service the test needs is down; skip with a reason elsewhere."""
    if ok:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{name} is required in CI but unavailable: {why}")
    pytest.skip(f"{name} unavailable: {why}")


@pytest.fixture(scope="session")
def needs_service() -> Callable[[str, bool, str], None]:
    """``needs_service(name, ok, why)``: fail in CI, skip elsewhere, when a service is down."""
    return require_service


@pytest.fixture(scope="session")
def postgres_admin(needs_service):
    """Settings on the server's ``postgres`` database; fails (CI) or skips if it is unreachable.
    At the end of the session no database of this session may be left."""
    import psycopg2

    from recops.core.settings import Settings

    admin = Settings(profile="production", postgres_db="postgres")
    try:
        psycopg2.connect(admin.postgres_dsn, connect_timeout=5).close()
    except psycopg2.OperationalError as exc:
        needs_service("PostgreSQL", False, f"{admin.postgres_host}:{admin.postgres_port}: {exc}")
    yield admin
    con = psycopg2.connect(admin.postgres_dsn)
    try:
        with con.cursor() as cur:
            cur.execute("select datname from pg_database where datname like %s", (f"{pg_prefix()}%",))
            left = [r[0] for r in cur.fetchall()]
    finally:
        con.close()
    assert not left, f"PostgreSQL databases left behind by this session: {left}"


def pg_prefix() -> str:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    return f"recops_t{SESSION_TOKEN}_{worker}_"


@pytest.fixture(scope="session")
def pg_database_name() -> Callable[[str], str]:
    """``pg_database_name(purpose)``: a database name of this session (checked at its end)."""
    return lambda purpose: f"{pg_prefix()}{purpose}_{secrets.token_hex(3)}"


@pytest.fixture
def postgres_settings(postgres_admin, pg_database_name, tmp_path: Path, request: pytest.FixtureRequest):
    """Production settings on a fresh database (and its ``_airflow``/``_mlflow`` companions if a
    test creates them), all dropped afterwards."""
    from recops.core.settings import Settings
    from recops.core.warehouse import create_postgres_database, drop_postgres_database

    name = pg_database_name("pg")
    settings = Settings(home=tmp_path / "pg", profile="production", postgres_db=name)

    def drop() -> None:
        for db in (name, f"{name}_airflow", f"{name}_mlflow"):
            drop_postgres_database(postgres_admin, db)

    request.addfinalizer(drop)
    create_postgres_database(settings)
    return settings


# --- data sets ---------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def dataset() -> Callable[[str], Path]:
    """``dataset(relative_path)``: a file or folder of the public data sets (``RECOPS_DATA_DIR``,
    default ``../shared/datasets`` beside the repo); fails in CI when missing, skips elsewhere."""
    from recops.core.settings import Settings

    root = Settings().data_dir

    def find(relative: str) -> Path:
        path = root / relative
        require_service(f"data set {relative}", path.exists(), f"{path} not found (tests never download data)")
        return path

    return find


# --- the CLI -------------------------------------------------------------------------------------
def run_cli(
    home: Path, *args: str, timeout: float = 900, extra_env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess:
    """Run ``recops ARGS`` with ``RECOPS_HOME=home`` in a fresh process (Airflow reads its
    configuration once per process)."""
    env = {**os.environ, "RECOPS_HOME": str(home), **(extra_env or {})}
    exe = Path(sys.executable).with_name("recops")
    proc = subprocess.run([str(exe), *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"recops {' '.join(args)} exited {proc.returncode}\n{proc.stdout[-6000:]}\n{proc.stderr[-6000:]}"
        )
    return proc


def last_json(stdout: str) -> dict:
    """The JSON document a recops command printed last on stdout."""
    start = stdout.rfind("\n{")
    return json.loads(stdout[start + 1 if start >= 0 else 0 :])


@pytest.fixture(scope="session")
def cli() -> Callable[..., subprocess.CompletedProcess]:
    """``cli(home, *args, extra_env=..., check=True)`` runs the real ``recops`` command."""
    return run_cli


@pytest.fixture(scope="session")
def parse_json() -> Callable[[str], dict]:
    return last_json


# --- alerts ------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def read_alerts() -> Callable[..., list[dict]]:
    """``read_alerts(settings)``: the alerts of a home's JSON-lines channel, oldest first."""

    def read(settings) -> list[dict]:
        if not settings.alerts_path.exists():
            return []
        lines = settings.alerts_path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    return read



@dataclass
class WebhookReceiver:
    """A real HTTP server: records every POST body; the first ``fail_first`` answer 503."""

    url: str
    bodies: list[dict] = field(default_factory=list)
    attempts: int = 0
    fail_first: int = 0
    status_after: int = 200


@dataclass
class MailBox:
    """What a real SMTP server on 127.0.0.1 received: parsed messages and their envelopes."""

    host: str
    port: int
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def make_webhook() -> Iterator[Callable[[], WebhookReceiver]]:
    """``make_webhook()`` starts a webhook receiver (stopped at the end of the session)."""
    servers: list[ThreadingHTTPServer] = []

    def start() -> WebhookReceiver:
        receiver = WebhookReceiver(url="")

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server hook name
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.attempts += 1
                status = 503 if receiver.attempts <= receiver.fail_first else receiver.status_after
                if status < 300:
                    receiver.bodies.append(json.loads(body))
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok" if status < 300 else b"nope")

            def log_message(self, *args: object) -> None:  # keep pytest output clean
                return

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/recops"
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return receiver

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def make_mailbox() -> Iterator[Callable[[], MailBox]]:
    """``make_mailbox()`` starts a real SMTP server (aiosmtpd) that keeps every message."""
    from aiosmtpd.controller import Controller

    controllers: list = []

    def start() -> MailBox:
        box = MailBox(host="127.0.0.1", port=free_port())

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd hook name
                box.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
                box.messages.append(message_from_bytes(envelope.content, policy=policy.default))
                return "250 Message accepted for delivery"

        controller = Controller(Handler(), hostname=box.host, port=box.port)
        controller.start()
        controllers.append(controller)
        return box

    yield start
    for controller in controllers:
        controller.stop()


@pytest.fixture
def webhook(make_webhook) -> WebhookReceiver:
    return make_webhook()


@pytest.fixture
def smtp(make_mailbox) -> MailBox:
    return make_mailbox()


# --- settings ----------------------------------------------------------------------------------
@pytest.fixture
def settings(tmp_path):
    """Embedded settings under tmp_path; JSON-lines alerts only (no webhook, no e-mail)."""
    from recops.core.settings import Settings

    return Settings(home=tmp_path / "home", profile="embedded", shop_start_date="2009-01-01")


@pytest.fixture
def alerting_settings(settings, webhook, smtp):
    """Settings with all three channels on: JSON lines, the test webhook, the test SMTP server."""
    return settings.model_copy(
        update={
            "alert_webhook_url": webhook.url,
            "alert_webhook_retries": 2,
            "alert_webhook_timeout_s": 2.0,
            "alert_smtp_host": smtp.host,
            "alert_smtp_port": smtp.port,
            "alert_email_from": "recops@example.test",
            "alert_email_to": ["oncall@example.test", "data@example.test"],
        }
    )


# --- a real MLflow registry --------------------------------------------------------------------
REGISTRY_FEATURES = ["f_signal", "f_noise"]


def _registry_settings(home: Path, **overrides):
    from recops.core.settings import Settings

    return Settings(home=home, user_salt="test-salt-123", **overrides)


def _train_booster(sign: float = 1.0, seed: int = 0):
    """A booster scoring by ``sign * f_signal`` (plus a little noise it mostly ignores)."""
    import lightgbm as lgb
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    x = pd.DataFrame({"f_signal": rng.uniform(0, 15, size=600), "f_noise": rng.normal(size=600)})
    y = sign * x["f_signal"] + 0.01 * x["f_noise"]
    data = lgb.Dataset(x, y, feature_name=REGISTRY_FEATURES, free_raw_data=False)
    params = {"objective": "regression", "verbose": -1, "seed": seed, "num_leaves": 7, "deterministic": True}
    return lgb.train(params, data, num_boost_round=20)


def _log_version(settings, booster, tmp: Path, *, ndcg: float = 0.5) -> str:
    """Register ``booster`` as a new version, with a serving bundle artifact; return its number."""
    import joblib

    from recops.training.registry import log_candidate

    bundle = tmp / "bundle.joblib"
    joblib.dump({"bundle_of": ndcg}, bundle)
    info = log_candidate(
        settings,
        booster=booster,
        params={"seed": 0},
        metrics={"ranker": {"ndcg@10": ndcg, "recall@10": ndcg}},
        artifacts={"bundle": bundle},
        tags={"recops.cutoff": "2026-03-04", "recops.feature_service": "ranker_v1"},
        run_name="registry-test",
    )
    return info.version


def _copy_versions(settings, source_version: str, model_name: str, n: int):
    """A fresh registered model ``model_name`` with ``n`` versions of an already logged model
    (no new training or upload); returns settings pointing at it."""
    from recops.training.registry import client

    c = client(settings)
    mv = c.get_model_version(settings.model_name, source_version)
    c.create_registered_model(model_name)
    for _ in range(n):
        c.create_model_version(model_name, mv.source, run_id=mv.run_id)
    return settings.model_copy(update={"model_name": model_name})


@pytest.fixture(scope="session")
def registry_data():
    """A real MLflow registry in a temporary home: ``settings_for(home)``, ``train_booster``
    (tiny LightGBM boosters), ``log_version`` (registered like the pipeline does) and
    ``copy_versions`` (cheap extra versions that reuse a logged model)."""
    from types import SimpleNamespace

    return SimpleNamespace(
        FEATURES=REGISTRY_FEATURES,
        settings_for=_registry_settings,
        train_booster=_train_booster,
        log_version=_log_version,
        copy_versions=_copy_versions,
    )


# --- a running API ------------------------------------------------------------------------------
@dataclass
class RunningAPI:
    """``recops serve`` in a child process: its URL, the home's admin token, its log."""

    url: str
    token: str
    log: Path
    process: subprocess.Popen

    def client(self, **kwargs):
        import httpx

        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=30, **kwargs)

    def stop(self) -> None:
        """SIGTERM, as a deployment stops it: the workers close their log files."""
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=60)


def start_api(home: Path, *, workers: int = 1, timeout_s: float = 180, **env: str) -> RunningAPI:
    """Start ``recops serve`` on a free port for ``home`` and wait until ``/health`` answers."""
    import time

    import httpx

    port = free_port()
    log = home / f"api-{port}.log"
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("recops")), "serve", "--port", str(port), "--workers", str(workers)],
        env={**os.environ, "RECOPS_HOME": str(home), **env}, stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=REPO,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"recops serve did not come up:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    from recops.core.settings import Settings

    token = Settings(home=home).api_tokens_file.read_text().strip().split(",")[0]
    return RunningAPI(url=url, token=token, log=log, process=process)


@pytest.fixture(scope="module")
def running_api() -> Iterator[Callable[..., RunningAPI]]:
    """``running_api(home, **env)`` starts ``recops serve`` (stopped after the test module)."""
    started: list[RunningAPI] = []

    def start(home: Path, **env: str) -> RunningAPI:
        api = start_api(home, **env)
        started.append(api)
        return api

    yield start
    for api in started:
        api.stop()


# --- homes built once per test session ------------------------------------------------------------
@dataclass(frozen=True)
class ShopHome:
    """A small synthetic shop run through ``recops run`` (champion v1 published)."""

    home: Path
    shop: Path
    run: dict

    @property
    def settings(self):
        from recops.core.settings import Settings

        return Settings(home=self.home, user_salt="test-salt-123")


def shared_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder every xdist worker of this session sees (the parent of the workers' temp roots)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


HOME_OWN_STATE = {"airflow", "dbt", "feast", "logs", "runs", "feedback", "served", "api_tokens", "web_token",
                  "run.json"}
"""What a copied home does not take over from the shop home: Airflow, dbt state, logs, run folders,
the API's logs and tokens, and Feast's registry and stores: Feast's registry records the online
store's tables with their absolute paths, so a ``feast apply`` in a copy (its first ``recops run``)
would drop the shop home's tables as the infrastructure it replaces. A copy that runs the pipeline
applies and materialises its own."""


@pytest.fixture(scope="module")
def shop_home_copy(shop_home: ShopHome, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """``shop_home_copy(name)``: a home of the test module's own, copied from the session's shop
    home (warehouse, Feast, candidate store, MLflow registry with champion v1). The copy's registry
    still names the original's artifacts, which serving only reads; anything written (aliases, API
    logs, ingestion, marts) goes to the copy."""
    import shutil

    def copy(name: str) -> Path:
        target = tmp_path_factory.mktemp(name) / "home"
        shutil.copytree(shop_home.home, target, ignore=lambda folder, names: (
            HOME_OWN_STATE & set(names) if Path(folder) == shop_home.home else ()))
        return target

    return copy


SHOP_TUNED_SETTINGS = {"cutoff": "2000-01-01", "settings": {"ranker_num_leaves": 15, "repeat_popularity_weight": 1.0}}


@pytest.fixture(scope="session")
def shop_home(tmp_path_factory: pytest.TempPathFactory) -> ShopHome:
    """One pipeline run on a small synthetic shop per test session, built by whichever worker
    asks first (a file lock), then shared read-only: tests that change a home build their own."""
    from filelock import FileLock

    root = shared_dir(tmp_path_factory)
    home, shop = root / "shop-home", root / "shop-home-data"
    done = home / "run.json"
    with FileLock(str(root / "shop-home.lock")):
        if not done.exists():
            run_cli(home, "generate", "--users", "300", "--items", "150", "--days", "90", "--seed", "7",
                    "--out", str(shop))
            # as after `recops tune`: the pipeline applies these (test_pipeline_e2e checks it)
            (home / "tuning").mkdir(parents=True, exist_ok=True)
            (home / "tuning" / "tuned_settings.json").write_text(json.dumps(SHOP_TUNED_SETTINGS))
            proc = run_cli(home, "run", "--source", "events", "--data", str(shop / "events.parquet"),
                           "--catalog", str(shop / "catalog.parquet"))
            done.write_text(json.dumps(last_json(proc.stdout)))
    return ShopHome(home=home, shop=shop, run=json.loads(done.read_text()))


# --- a headless Chromium (Debian's), driven through the DevTools protocol -----------------------
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1600,1250",
    "--remote-debugging-port=0",
)


def chromium_path() -> str | None:
    return shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)


class Browser:
    """One headless Chromium with a fresh profile and one page. Records what the browser console
    would show as errors (uncaught exceptions, ``console.error``, failed loads, CSP violations)."""

    def __init__(self, binary: str, *, timeout_s: float = 60.0) -> None:
        self.profile = Path(tempfile.mkdtemp(prefix="recops-chromium-"))
        self.proc = subprocess.Popen(
            [binary, *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.errors: list[str] = []
        port = self._devtools_port(timeout_s)
        pages = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
        page = next(p for p in pages if p.get("type") == "page")
        self.ws = connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=timeout_s)
        self._ids = itertools.count(1)
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable")

    def _devtools_port(self, timeout_s: float) -> int:
        marker = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"chromium exited with {self.proc.returncode}")
            if marker.exists() and marker.read_text().strip():
                return int(marker.read_text().splitlines()[0])
            time.sleep(0.2)
        raise TimeoutError("chromium did not open its DevTools port")

    def _event(self, msg: dict) -> None:
        """Keep what the console would show as an error."""
        method, params = msg.get("method"), msg.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            self.errors.append(f"exception: {details.get('exception', {}).get('description') or details.get('text')}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            texts = [str(a.get("value", a.get("description", ""))) for a in params.get("args", [])]
            self.errors.append(f"console.{params['type']}: {' '.join(texts)}")
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            self.errors.append(f"{entry.get('source')}: {entry.get('text')} {entry.get('url', '')}".strip())

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """One DevTools command; events arriving meanwhile go to :meth:`_event`."""
        msg_id = next(self._ids)
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv(timeout=60))
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self._event(msg)

    def console_errors(self) -> list[str]:
        """The errors so far (a round trip first, so events already sent are read)."""
        self.send("Runtime.evaluate", expression="0")
        return list(self.errors)

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"JS error: {result['exceptionDetails']}")
        return result["result"].get("value")

    def goto(self, url: str) -> None:
        self.send("Page.navigate", url=url)

    def viewport(self, width: int, height: int, *, mobile: bool = False) -> None:
        """Emulate a screen (``mobile``: a phone's, with touch-sized layout rules)."""
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=mobile)

    def wait_for(self, expression: str, timeout_s: float = 60.0) -> Any:
        """Poll a JS expression until it is truthy; return its value."""
        deadline = time.monotonic() + timeout_s
        last: Any = None
        while time.monotonic() < deadline:
            try:
                last = self.evaluate(expression)
            except RuntimeError:
                last = None
            if last:
                return last
            time.sleep(0.25)
        raise TimeoutError(f"timed out waiting for {expression!r} (last value {last!r}) at {self.url()}")

    def wait_for_text(self, text: str, timeout_s: float = 60.0) -> str:
        self.wait_for(f"document.body && document.body.innerText.includes({json.dumps(text)})", timeout_s)
        return self.text()

    def url(self) -> str:
        return self.evaluate("location.href")

    def text(self) -> str:
        return self.evaluate("document.body ? document.body.innerText : ''")

    def dom(self) -> str:
        return self.evaluate("document.documentElement.outerHTML")

    def type_into(self, selector: str, text: str) -> None:
        """Focus an input and type ``text`` into it (real key input, as a user would)."""
        self.evaluate(f"document.querySelector({json.dumps(selector)}).focus()")
        self.send("Input.insertText", text=text)

    def click(self, selector: str) -> None:
        self.evaluate(f"document.querySelector({json.dumps(selector)}).click()")

    def screenshot(self, path: Path, *, full_page: bool = False) -> Path:
        """A PNG of the viewport, or of the whole page (``full_page``)."""
        params: dict[str, Any] = {"format": "png", "captureBeyondViewport": full_page}
        if full_page:
            size = self.send("Page.getLayoutMetrics")["cssContentSize"]
            params["clip"] = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        data = self.send("Page.captureScreenshot", **params)["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def login_airflow(self, base_url: str, username: str, password: str, *, next_path: str = "/") -> None:
        """Log in through the simple auth manager's login form."""
        self.goto(f"{base_url}/auth/login?next={next_path}")
        self.wait_for("document.querySelector('input[name=username]') !== null")
        self.type_into("input[name=username]", username)
        self.type_into("input[name=password]", password)
        self.wait_for("!document.querySelector('button[type=submit]').disabled", timeout_s=10)
        self.click("button[type=submit]")
        self.wait_for("!location.pathname.startsWith('/auth/login')", timeout_s=60)

    def close(self) -> None:
        try:
            self.ws.close()
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@pytest.fixture(scope="session")
def browser_tools():
    """``Browser`` (a headless Chromium), ``chromium_path()`` and ``free_port()`` for the server
    it browses (helpers are fixtures)."""
    from types import SimpleNamespace

    return SimpleNamespace(Browser=Browser, chromium_path=chromium_path, free_port=free_port)
