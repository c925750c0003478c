"""What the API serves: the champion Booster, its retriever bundle, and the Feast online store.

Loaded in the app's lifespan (never at import) and refreshed when the ``champion`` alias moves.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from recops.constants import CHAMPION_ALIAS
from recops.settings import Settings

log = logging.getLogger(__name__)

BUNDLE_ARTIFACT = "bundle/bundle.joblib"


class ModelNotReady(RuntimeError):
    """No champion model is registered yet."""


@dataclass
class ModelState:
    """The loaded champion and the online store; thread-safe swap on refresh."""

    settings: Settings
    version: str | None = None
    booster: Any = None
    bundle: Any = None
    store: Any = None
    loaded_at: datetime | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _checked_at: float = 0.0

    def load(self) -> None:
        """Load the current champion (if any) and the feature store."""
        from recops.feature_store import get_store
        from recops.training.registry import alias_version

        if self.store is None:
            self.store = get_store(self.settings)
        version = alias_version(self.settings, CHAMPION_ALIAS)
        self._checked_at = time.monotonic()
        if version is None or version == self.version:
            return
        self._load_version(version)

    def _load_version(self, version: str) -> None:
        import joblib

        from recops.training.registry import download_run_artifact, load_booster

        booster = load_booster(self.settings, version)
        bundle = joblib.load(download_run_artifact(self.settings, version, BUNDLE_ARTIFACT))
        with self._lock:
            self.booster, self.bundle, self.version = booster, bundle, version
            self.loaded_at = datetime.now(UTC)
        log.info("serving %s v%s", self.settings.model_name, version)

    def maybe_refresh(self) -> None:
        """Re-read the champion alias at most every ``model_refresh_seconds``."""
        if time.monotonic() - self._checked_at < self.settings.model_refresh_seconds:
            return
        try:
            self.load()
        except Exception:  # keep serving the loaded model if the registry is briefly unreachable
            log.exception("champion refresh failed; keeping v%s", self.version)

    def snapshot(self) -> tuple[str | None, Any, Any]:
        with self._lock:
            return self.version, self.booster, self.bundle
