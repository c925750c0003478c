"""Test-wide isolation: every test session gets its own RECOPS_HOME, never the repo's .recops/."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATASETS = REPO.parent / "shared" / "datasets"


@pytest.fixture(autouse=True, scope="session")
def _isolated_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("recops-home")
    os.environ["RECOPS_HOME"] = str(home)
    os.environ.setdefault("RECOPS_USER_SALT", "test-salt-123")
    from recops.settings import get_settings

    get_settings.cache_clear()
    return home


def require_service(name: str, ok: bool, why: str) -> None:
    """Fail when CI is set and a service the test needs is down; skip with a reason elsewhere."""
    if ok:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{name} is required in CI but unavailable: {why}")
    pytest.skip(f"{name} unavailable: {why}")


@pytest.fixture(scope="session")
def needs_service():
    """``needs_service(name, ok, why)``: fail in CI, skip elsewhere, when a service is down."""
    return require_service
