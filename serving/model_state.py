"""What the API serves: the champion Booster, its retriever bundle, and the Feast online store.

Loaded in the app's lifespan (never at import) and refreshed when the ``champion`` alias moves:
a background thread re-reads the alias every ``RECOPS_MODEL_REFRESH_SECONDS`` and swaps the new
champion in once it has loaded, so a promotion or a rollback reaches a running API without a
restart and no request waits for a model download.
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
    _refresh_lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _refresher: threading.Thread | None = None
    _checked_at: float = 0.0

    def load(self) -> None:
        """Load the current champion (if any) and the feature store."""
        from recops.feature_store import get_store

        if self.store is None:
            self.store = get_store(self.settings)
        self.refresh()

    def _load_version(self, version: str) -> None:
        import joblib

        from recops.training.registry import download_run_artifact, load_booster

        booster = load_booster(self.settings, version)
        bundle = joblib.load(download_run_artifact(self.settings, version, BUNDLE_ARTIFACT))
        with self._lock:
            self.booster, self.bundle, self.version = booster, bundle, version
            self.loaded_at = datetime.now(UTC)
        log.info("serving %s v%s", self.settings.model_name, version)

    def refresh(self) -> bool:
        """Re-read the champion alias; load and swap in a new champion. True if it changed.

        A deleted alias keeps the loaded model serving (logged): an empty registry must not take
        the API down."""
        from recops.training.registry import alias_version

        with self._refresh_lock:
            version = alias_version(self.settings, CHAMPION_ALIAS)
            self._checked_at = time.monotonic()
            if version is None:
                if self.version is not None:
                    log.warning("alias %s is gone; keeping v%s", CHAMPION_ALIAS, self.version)
                return False
            if version == self.version:
                return False
            self._load_version(version)
            return True

    def _refresh_safely(self) -> None:
        try:
            self.refresh()
        except Exception:  # keep serving the loaded model if the registry is briefly unreachable
            log.exception("champion refresh failed; keeping v%s", self.version)

    def maybe_refresh(self) -> None:
        """Request path: when no background refresher runs, re-read the alias at most every
        ``model_refresh_seconds`` (0: on every request)."""
        if self._refresher is not None and self._refresher.is_alive():
            return
        if time.monotonic() - self._checked_at < self.settings.model_refresh_seconds:
            return
        self._refresh_safely()

    def start_refresh(self) -> None:
        """Start the background thread that follows the champion alias (no-op if interval is 0)."""
        interval = self.settings.model_refresh_seconds
        if interval <= 0 or (self._refresher is not None and self._refresher.is_alive()):
            return
        self._stop.clear()

        def loop() -> None:
            while not self._stop.wait(interval):
                self._refresh_safely()

        self._refresher = threading.Thread(target=loop, name="recops-champion-refresh", daemon=True)
        self._refresher.start()

    def stop_refresh(self, timeout_s: float = 10.0) -> None:
        """Stop the background refresher (waits for a load in progress up to ``timeout_s``)."""
        self._stop.set()
        if self._refresher is not None:
            self._refresher.join(timeout=timeout_s)
            self._refresher = None

    def snapshot(self) -> tuple[str | None, Any, Any]:
        with self._lock:
            return self.version, self.booster, self.bundle
