"""The API's model state follows the ``champion`` alias without a restart."""

from __future__ import annotations

import time

import pytest
from registry_data import log_version, settings_for, train_booster

pytestmark = pytest.mark.slow


def wait_for(predicate, timeout_s: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout_s} s")


def test_background_refresh_follows_promotions_and_rollbacks(tmp_path) -> None:
    from recops.serving.model_state import ModelState
    from recops.training.registry import client, promote, rollback

    settings = settings_for(tmp_path, model_refresh_seconds=0.3)
    v1 = log_version(settings, train_booster(+1.0), tmp_path, ndcg=0.1)
    v2 = log_version(settings, train_booster(-1.0), tmp_path, ndcg=0.2)
    state = ModelState(settings, store=object())  # the feature store is not what this is about
    state.load()
    assert state.snapshot() == (None, None, None)  # nothing to serve yet
    promote(settings, v1, actor="t", reason="first")
    state.start_refresh()
    try:
        wait_for(lambda: state.version == v1, timeout_s=10)
        version, booster, bundle = state.snapshot()
        assert bundle == {"bundle_of": 0.1} and booster.num_trees() == 20
        promote(settings, v2, actor="t", reason="second")
        wait_for(lambda: state.snapshot()[2] == {"bundle_of": 0.2}, timeout_s=10)
        rollback(settings, actor="t")
        waited = wait_for(lambda: state.version == v1, timeout_s=10)
        assert waited < 10
        # a deleted alias keeps the loaded model serving
        client(settings).delete_registered_model_alias(settings.model_name, "champion")
        time.sleep(1.0)
        assert state.version == v1 and state.booster is not None
    finally:
        state.stop_refresh()
    assert state._refresher is None


def test_request_path_refresh_without_background_thread(tmp_path) -> None:
    from recops.serving.model_state import ModelState
    from recops.training.registry import promote

    settings = settings_for(tmp_path, model_refresh_seconds=0)
    v1 = log_version(settings, train_booster(+1.0), tmp_path, ndcg=0.3)
    state = ModelState(settings, store=object())
    state.load()
    state.start_refresh()  # interval 0: no thread, every request re-reads the alias
    assert state._refresher is None
    promote(settings, v1, actor="t", reason="first")
    state.maybe_refresh()
    assert state.version == v1
