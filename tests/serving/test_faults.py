"""Faults injected under serving: the model registry and the online (candidate) store go away and
come back.

``recops serve`` on a copy of the shop home reads its registry through a real ``mlflow server``
(as in compose). The server is killed: the API keeps answering with the model it loaded, ``/health``
says ``degraded`` and names the failure. The server is started again on the same port: the next
refresh recovers by itself, without a restart of the API. Likewise a private ``redis-server`` holding
the published candidates is killed under a loaded serving state and started again."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REFRESH_S = 1


class MlflowServer:
    """``mlflow server`` on a home's registry database, started and killed at will."""

    def __init__(self, home: Path, port: int) -> None:
        self.home, self.port, self.proc = home, port, None
        self.url = f"http://127.0.0.1:{port}"

    def start(self, timeout_s: float = 120) -> None:
        from recops.core.settings import Settings

        db = Settings(home=self.home).mlflow_dir / "mlflow.db"
        log = (self.home / f"mlflow-server-{time.monotonic_ns()}.log").open("wb")
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).with_name("mlflow")), "server", "--host", "127.0.0.1", "--port", str(self.port),
             "--backend-store-uri", f"sqlite:///{db}", "--workers", "1"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},  # as in docker-compose.yml
        )
        deadline = time.monotonic() + timeout_s
        while True:
            assert self.proc.poll() is None and time.monotonic() < deadline, f"mlflow server did not start: {log.name}"
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.5)

    def kill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)  # the server and its workers, at once
        self.proc.wait(timeout=30)


def _health(api) -> dict:
    return httpx.get(f"{api.url}/health", timeout=10).json()


def _wait(api, predicate, timeout_s: float = 60) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        health = _health(api)
        if predicate(health):
            return health
        assert time.monotonic() < deadline, health
        time.sleep(0.3)


@pytest.fixture(scope="module")
def faulty(shop_home_copy, running_api, browser_tools):
    home = shop_home_copy("registry-fault")
    registry = MlflowServer(home, browser_tools.free_port())
    registry.start()
    api = running_api(
        home,
        RECOPS_MLFLOW_TRACKING_URI=registry.url,
        RECOPS_MODEL_REFRESH_SECONDS=str(REFRESH_S),
        MLFLOW_HTTP_REQUEST_MAX_RETRIES="0",  # fail fast: the refresh thread tries again anyway
        MLFLOW_HTTP_REQUEST_TIMEOUT="5",
    )
    yield registry, api
    if registry.proc is not None and registry.proc.poll() is None:
        registry.kill()


def test_the_api_keeps_serving_while_the_registry_is_down_and_recovers(faulty, shop_home) -> None:
    import pandas as pd

    registry, api = faulty
    user = str(pd.read_parquet(shop_home.shop / "events.parquet")["user_id"].iloc[0])
    with api.client() as client:
        healthy = _health(api)
        assert healthy["status"] == "ok" and healthy["registry"] is True and healthy["model_version"] == "1"
        before = client.get(f"/recommendations/{user}", params={"k": 5}).json()

        registry.kill()
        down = _wait(api, lambda h: h["status"] == "degraded")
        assert down["registry"] is False and down["model_version"] == "1" and down["detail"]
        during = client.get(f"/recommendations/{user}", params={"k": 5})
        assert during.status_code == 200
        assert during.json()["items"] == before["items"] and during.json()["model_version"] == "1"

        registry.start()
        back = _wait(api, lambda h: h["status"] == "ok")
        assert back["registry"] is True and back["model_version"] == "1" and back["detail"] is None
        assert client.get(f"/recommendations/{user}", params={"k": 5}).json()["items"] == before["items"]


# --- the online (candidate) store goes away ---------------------------------------------------------
class PrivateRedis:
    """A ``redis-server`` of the test's own on a free port (never the shared one), its data saved to
    an RDB file so a restart brings it back."""

    def __init__(self, folder: Path, port: int) -> None:
        self.folder, self.port, self.proc = folder, port, None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        import redis

        self.proc = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.folder),
             "--dbfilename", "dump.rdb", "--save", "", "--appendonly", "no"],
            stdout=(self.folder / "redis.log").open("ab"), stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                if redis.Redis.from_url(self.url, socket_timeout=1).ping():
                    return
            except redis.RedisError:
                assert self.proc.poll() is None and time.monotonic() < deadline, (self.folder / "redis.log").read_text()
                time.sleep(0.2)

    def save_and_kill(self) -> None:
        import redis

        redis.Redis.from_url(self.url).save()
        self.proc.kill()
        self.proc.wait(timeout=30)


@pytest.fixture
def private_redis(tmp_path, browser_tools):
    server = PrivateRedis(tmp_path, browser_tools.free_port())
    server.start()
    yield server
    if server.proc.poll() is None:
        server.proc.kill()
        server.proc.wait(timeout=30)


def test_the_api_falls_back_while_the_online_store_is_down_and_recovers(shop_home, shop_home_copy, private_redis):
    """The production profile's candidate store (Redis) killed under a loaded serving state: a known
    user gets the popularity fallback flagged ``store_unavailable`` (not an error), the refresh says
    the store is down (``/health`` degraded), and once Redis is back the same personal list returns."""
    import pandas as pd

    from recops.core.candidate_store import RedisCandidateStore
    from recops.core.privacy import pseudonymise, user_salt
    from recops.core.servable import ServingMeta, UserCandidates
    from recops.core.settings import Settings
    from recops.serving.model_state import ServingState
    from recops.serving.recommender import DEGRADED, PERSONAL, recommend

    settings = Settings(home=shop_home_copy("store-fault"))
    store = RedisCandidateStore(private_redis.url, "faults")
    # what the pipeline published for v1 (embedded: SQLite), written to Redis as the production
    # profile's publish writes it
    with sqlite3.connect(settings.serving_dir / "candidates.db") as con:
        users = con.execute("select user_key, record from users where version = '1'").fetchall()
        (meta,) = con.execute("select record from meta where version = '1'").fetchone()
    assert store.write_users("1", ((k, UserCandidates.from_bytes(r)) for k, r in users)) == len(users) > 0
    store.write_meta(ServingMeta.from_bytes(meta))
    state = ServingState(settings, store=store)
    state.load()
    model = state.model()
    events = pd.read_parquet(shop_home.shop / "events.parquet")
    buyer = str(events.loc[events["event_type"] == "purchase", "user_id"].value_counts().index[0])
    key = pseudonymise(buyer, user_salt(settings))

    personal = recommend(model, store, key, 10)
    assert personal.kind == PERSONAL and len(personal.items) == 10

    private_redis.save_and_kill()
    down = recommend(model, store, key, 10)
    served = down.items.tolist()
    assert down.kind == DEGRADED and len(served) >= 5
    top = model.meta.popular[:10].tolist()  # the popularity list, held in memory
    assert served == [i for i in top if i in served]  # its order, minus what may not be shown
    state.refresh_safely()
    assert state.store_ok is False and "candidate store" in state.last_error

    private_redis.start()  # the saved data comes back
    back = recommend(model, store, key, 10)
    assert back.kind == PERSONAL and back.items.tolist() == personal.items.tolist()
    state.refresh_safely()
    assert state.store_ok is True and state.last_error is None
