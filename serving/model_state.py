"""What a worker serves: the ``champion`` (and, with challenger traffic, the ``challenger``) with
its published serving data and compiled scorer, and the candidate store.

Loaded in the app's lifespan (never at import) and refreshed without a restart: a background
thread re-reads the aliases every ``RECOPS_MODEL_REFRESH_SECONDS`` and swaps a new version in
once it has loaded (a promotion, a rollback, or a republication of the same version). While the
registry or the candidate store is unreachable the loaded models keep serving, ``/health`` says
``degraded``, and the next refresh recovers by itself.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from recops.core.alerts import ERROR, Alert, send_alert
from recops.core.candidate_store import CandidateStore, StoreUnavailable, candidate_store
from recops.core.constants import CHALLENGER_ALIAS, CHAMPION_ALIAS
from recops.core.registry import MODEL_SHA_TAG, IntegrityError, booster_file, version_tags
from recops.core.servable import ServingMeta
from recops.core.settings import Settings
from recops.core.timeutil import now_utc
from recops.serving.scorer import Scorer, load_scorer

log = logging.getLogger(__name__)


class ModelNotReady(RuntimeError):
    """No champion is registered and published yet."""


@dataclass(frozen=True)
class LoadedModel:
    """One served version: its serving data and scorer."""

    alias: str
    version: str
    meta: ServingMeta
    scorer: Scorer
    positions: dict[str, int]
    loaded_at: datetime
    published_at: str


@dataclass
class ServingState:
    """The loaded models, the candidate store, and what the last refresh saw."""

    settings: Settings
    store: CandidateStore | None = None
    models: dict[str, LoadedModel] = field(default_factory=dict)
    registry_ok: bool = True
    store_ok: bool = True
    refreshed_at: datetime | None = None
    last_error: str | None = None
    generation: int = 0  # bumps on every swap: the cache keys on it
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _refresh_lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _refresher: threading.Thread | None = None

    @property
    def aliases(self) -> tuple[str, ...]:
        return (CHAMPION_ALIAS, CHALLENGER_ALIAS) if self.settings.challenger_traffic > 0 else (CHAMPION_ALIAS,)

    def load(self) -> None:
        """Open the candidate store and load what the aliases point at (errors are kept for
        ``/health``; the API starts anyway and answers 503 until a champion is published)."""
        self.store = self.store or candidate_store(self.settings)
        self.refresh_safely()

    def _load_version(self, alias: str, version: str, published_at: str) -> LoadedModel:
        assert self.store is not None
        meta = self.store.read_meta(version)
        if meta is None:
            raise ModelNotReady(f"{self.settings.model_name} v{version} is not published yet (recops publish)")
        with tempfile.TemporaryDirectory() as tmp:
            model_file = booster_file(self.settings, version, Path(tmp))
            sha = version_tags(self.settings, version)[MODEL_SHA_TAG]
            scorer = load_scorer(model_file, self.settings.serving_dir / "compiled", sha)
        if scorer.feature_names != meta.feature_names:
            raise ModelNotReady(f"v{version}: the published features differ from the booster's")
        return LoadedModel(alias, version, meta, scorer, meta.item_positions(), now_utc(), published_at)

    def refresh(self) -> bool:
        """Re-read the aliases; load and swap in what changed. True if anything changed."""
        from recops.core.registry import alias_version

        changed = False
        with self._refresh_lock:
            wanted: dict[str, str] = {}
            for alias in self.aliases:
                version = alias_version(self.settings, alias)
                if version is not None:
                    wanted[alias] = version
            self.registry_ok = True
            assert self.store is not None
            for alias, version in wanted.items():
                published = self.store.published_at(version)
                current = self.models.get(alias)
                if published is None:
                    if alias == CHAMPION_ALIAS and current is None:
                        raise ModelNotReady(f"{self.settings.model_name} v{version} is not published yet (recops publish)")
                    continue
                if current and (current.version, current.published_at) == (version, published):
                    continue
                loaded = self._load_version(alias, version, published)
                with self._lock:
                    self.models[alias] = loaded
                    self.generation += 1
                changed = True
                log.info("serving %s v%s as %s", self.settings.model_name, version, alias)
            for alias in set(self.models) - set(wanted) - {CHAMPION_ALIAS}:
                with self._lock:  # a challenger that was promoted or rejected stops serving
                    self.models.pop(alias, None)
                    self.generation += 1
            self.store_ok = True
            self.refreshed_at = now_utc()
        return changed

    def refresh_safely(self) -> None:
        """:meth:`refresh`, keeping the loaded models on any failure (recorded for /health)."""
        try:
            self.refresh()
            self.last_error = None
        except StoreUnavailable as exc:
            self.store_ok, self.last_error = False, str(exc)
            log.warning("candidate store unreachable; keeping loaded models: %s", exc)
        except IntegrityError as exc:
            self.last_error = str(exc)
            log.error("%s", exc)
            send_alert(self.settings, Alert(kind="security", severity=ERROR, title="Model integrity check failed",
                                            run_id="api", stage="serving", exception=str(exc)))
        except ModelNotReady as exc:
            self.last_error = str(exc)
        except Exception as exc:  # the registry is unreachable (or answered garbage)
            self.registry_ok, self.last_error = False, f"{type(exc).__name__}: {exc}"
            log.warning("registry refresh failed; keeping loaded models: %s", exc)

    def start_refresh(self) -> None:
        """Follow the aliases in the background (no-op if the interval is 0)."""
        interval = self.settings.model_refresh_seconds
        if interval <= 0 or (self._refresher is not None and self._refresher.is_alive()):
            return
        self._stop.clear()

        def loop() -> None:
            while not self._stop.wait(interval):
                self.refresh_safely()

        self._refresher = threading.Thread(target=loop, name="recops-model-refresh", daemon=True)
        self._refresher.start()

    def stop_refresh(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._refresher is not None:
            self._refresher.join(timeout=timeout_s)
            self._refresher = None

    def maybe_refresh(self) -> None:
        """Request path: without a background refresher (interval 0, tests), refresh at most once
        per ``model_refresh_seconds`` (0: on every request)."""
        if self._refresher is not None and self._refresher.is_alive():
            return
        last = self.refreshed_at
        if last is None or (now_utc() - last).total_seconds() >= self.settings.model_refresh_seconds:
            self.refresh_safely()

    def model(self, alias: str = CHAMPION_ALIAS) -> LoadedModel | None:
        with self._lock:
            return self.models.get(alias)

    def wait_for(self, version: str, timeout_s: float = 30.0) -> bool:
        """Block until the champion is ``version`` (tests and the demo)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            current = self.model()
            if current is not None and current.version == version:
                return True
            time.sleep(0.1)
        return False
