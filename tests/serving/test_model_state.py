"""The API's serving state follows the ``champion`` alias without a restart, keeps serving while
the registry is unreachable, and refuses a model whose file changed since it was registered."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from recops.core.candidate_store import SqliteCandidateStore
from recops.core.servable import NO_ITEM, ServingMeta
from recops.core.settings import Settings

pytestmark = pytest.mark.slow


def wait_for(predicate, timeout_s: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout_s} s")


def publish_meta(settings: Settings, version: str, features: list[str]) -> None:
    """A hand-made serving meta for a registry_data booster (two items, no users)."""
    n = 2
    meta = ServingMeta(
        version=version, feature_names=features, retrievers=["popularity"], reasons={"popularity": "popular now"},
        items=np.array(["a", "b"]), titles=["A", "B"], prices=np.array([1.0, 2.0]), available=np.ones(n, bool),
        popular=np.array([1, 0], np.int32), popular_scores=np.array([2.0, 1.0]),
        neighbours_cf=np.full((n, 1), NO_ITEM, np.int32), neighbours_cf_scores=np.zeros((n, 1), np.float32),
        neighbours_text=np.full((n, 1), NO_ITEM, np.int32), neighbours_text_scores=np.zeros((n, 1), np.float32),
        as_of="2026-03-04T00:00:00", published_at=f"2026-03-04T00:00:0{version}",
    )
    SqliteCandidateStore(settings.serving_dir / "candidates.db").write_meta(meta)


@pytest.fixture
def registry(tmp_path: Path, registry_data):
    settings = registry_data.settings_for(tmp_path, model_refresh_seconds=0.3)
    versions = []
    for sign, ndcg in ((+1.0, 0.1), (-1.0, 0.2)):
        version = registry_data.log_version(settings, registry_data.train_booster(sign), tmp_path, ndcg=ndcg)
        publish_meta(settings, version, registry_data.FEATURES)
        versions.append(version)
    return settings, versions


def test_background_refresh_follows_promotions_and_rollbacks(registry) -> None:
    from recops.serving.model_state import ServingState
    from recops.training.registry import client, promote, rollback

    settings, (v1, v2) = registry
    state = ServingState(settings)
    state.load()
    assert state.model() is None and "no alias" not in (state.last_error or "")  # nothing to serve yet
    promote(settings, v1, actor="t", reason="first")
    state.start_refresh()
    try:
        wait_for(lambda: state.model() is not None and state.model().version == v1, timeout_s=15)
        assert state.model().scorer.kind == "lleaves"
        features = np.array([[10.0, 0.0], [1.0, 0.0]])
        assert state.model().scorer.predict(features)[0] > state.model().scorer.predict(features)[1]
        generation = state.generation
        promote(settings, v2, actor="t", reason="second")
        wait_for(lambda: state.model().version == v2, timeout_s=15)
        assert state.generation > generation
        assert state.model().scorer.predict(features)[0] < state.model().scorer.predict(features)[1]
        rollback(settings, actor="t")
        assert wait_for(lambda: state.model().version == v1, timeout_s=15) < 15
        # a deleted alias keeps the loaded model serving
        client(settings).delete_registered_model_alias(settings.model_name, "champion")
        time.sleep(1.0)
        assert state.model().version == v1
    finally:
        state.stop_refresh()
    assert state._refresher is None


def test_request_path_refresh_without_background_thread(registry) -> None:
    from recops.serving.model_state import ServingState
    from recops.training.registry import promote

    settings, (v1, _) = registry
    state = ServingState(settings.model_copy(update={"model_refresh_seconds": 0}))
    state.load()
    state.start_refresh()  # interval 0: no thread, every request re-reads the alias
    assert state._refresher is None
    promote(settings, v1, actor="t", reason="first")
    state.maybe_refresh()
    assert state.model().version == v1


def test_an_unreachable_registry_keeps_the_model_and_recovers(registry, monkeypatch) -> None:
    from recops.serving.model_state import ServingState
    from recops.training.registry import promote

    settings, (v1, _) = registry
    promote(settings, v1, actor="t", reason="first")
    state = ServingState(settings)
    state.load()
    assert state.model().version == v1 and state.registry_ok
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # fail fast (MLflow reads it per call)
    state.settings = settings.model_copy(update={"mlflow_tracking_uri_override": "http://127.0.0.1:9"})
    state.refresh_safely()  # the registry server stopped answering
    assert not state.registry_ok and state.model().version == v1 and state.last_error
    state.settings = settings  # it answers again
    state.refresh_safely()
    assert state.registry_ok and state.last_error is None


def test_a_tampered_model_file_is_refused_and_alerted(registry, read_alerts) -> None:
    from recops.core.registry import client, download_run_artifact
    from recops.serving.model_state import ServingState
    from recops.training.registry import promote

    settings, (v1, _) = registry
    promote(settings, v1, actor="t", reason="first")
    stored = download_run_artifact(settings, v1, "model/model.lgb").resolve()
    run_id = client(settings).get_model_version(settings.model_name, v1).run_id
    # the champion's file in the artifact store (the other version's file is left alone)
    source = next(p for p in settings.mlflow_artifact_root.rglob("model.lgb") if run_id in p.parts)
    source.write_text(stored.read_text().replace("num_leaves", "num_leaves ", 1))
    state = ServingState(settings)
    state.load()
    assert state.model() is None
    assert "SHA-256" in state.last_error
    assert [a["title"] for a in read_alerts(settings)] == ["Model integrity check failed"]
