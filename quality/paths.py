"""Where quality keeps things under ``settings.quality_dir`` (pure path arithmetic, no I/O)."""

from __future__ import annotations

from pathlib import Path

from recops.core.constants import DATA_DOCS_SITE
from recops.core.settings import Settings

SITE_NAME = DATA_DOCS_SITE


def gx_root(settings: Settings) -> Path:
    """The GX file context (``great_expectations.yml``, suites, checkpoints, results)."""
    return settings.gx_dir


def data_docs_dir(settings: Settings) -> Path:
    return settings.data_docs_index.parent


def data_docs_index(settings: Settings) -> Path:
    """The Data Docs index page: every validation, newest first."""
    return settings.data_docs_index


def runs_dir(settings: Settings) -> Path:
    """One folder per run with the stage results as JSON (read by ``quality_report``)."""
    return settings.quality_dir / "runs"


def runs_log(settings: Settings) -> Path:
    """JSON lines, one per recorded stage result, in the order they were recorded."""
    return settings.quality_dir / "runs.jsonl"
