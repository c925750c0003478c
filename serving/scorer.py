"""Scoring a candidate matrix with the champion's booster: compiled to machine code by lleaves
(LLVM), with LightGBM's own predictor as the fallback. Both read the same model file; a test
shows their scores agree (to 1e-9)."""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path
from typing import Protocol

import numpy as np

log = logging.getLogger(__name__)


class Scorer(Protocol):
    kind: str
    feature_names: list[str]

    def predict(self, features: np.ndarray) -> np.ndarray: ...


class BoosterScorer:
    """LightGBM's predictor, one thread (the API scales by worker processes)."""

    kind = "lightgbm"

    def __init__(self, model_file: Path) -> None:
        import lightgbm as lgb

        self._booster = lgb.Booster(model_file=str(model_file))
        self.feature_names = self._booster.feature_name()

    def predict(self, features: np.ndarray) -> np.ndarray:
        return self._booster.predict(features, num_threads=1)


class CompiledScorer:
    """The model compiled by lleaves; the object file is cached per model SHA-256 (lleaves loads a
    cache file without checking it matches the model, so the name must) and built once, under a
    file lock (several workers load the same model at once), written atomically."""

    kind = "lleaves"

    def __init__(self, model_file: Path, cache_dir: Path, sha256: str) -> None:
        import lightgbm as lgb
        import lleaves

        self.feature_names = lgb.Booster(model_file=str(model_file)).feature_name()
        cache_dir.mkdir(parents=True, exist_ok=True)
        cache = cache_dir / f"{sha256}.o"
        with (cache_dir / f"{sha256}.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            model = lleaves.Model(model_file=str(model_file))
            if cache.exists() and cache.stat().st_size > 0:
                model.compile(cache=str(cache))
            else:  # compile into a temporary file, then rename: a reader never sees half a file
                partial = cache.with_suffix(f".{os.getpid()}.tmp")
                model.compile(cache=str(partial))
                os.replace(partial, cache)
        self._model = model

    def predict(self, features: np.ndarray) -> np.ndarray:
        return self._model.predict(features, n_jobs=1)


def load_scorer(model_file: Path, cache_dir: Path, sha256: str, *, compiled: bool = True) -> Scorer:
    """The compiled scorer, or LightGBM's if compiling is off or fails (logged)."""
    if compiled:
        try:
            return CompiledScorer(model_file, cache_dir, sha256)
        except Exception:  # an LLVM problem must not take the API down: serve, slower
            log.exception("compiling the model failed; scoring with LightGBM")
    return BoosterScorer(model_file)
