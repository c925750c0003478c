"""Errors raised by the loaders."""

from __future__ import annotations


class IngestError(Exception):
    """A file cannot be ingested at all (unreadable, wrong type, required columns missing).

    Raised before anything is written: the batch loads nothing. Row-level problems never raise;
    they go to ``raw.quarantine`` instead.
    """
