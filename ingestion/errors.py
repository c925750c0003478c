"""Errors raised by the loaders."""

from __future__ import annotations


class IngestError(Exception):
    """A file cannot be ingested at all (unreadable, wrong type, required columns missing).

    Raised before anything is written: the batch loads nothing. Row-level problems never raise;
    they go to ``raw.quarantine`` instead. Running the same load again cannot succeed until the
    file changes, so a pipeline task fails for good on it (no retry).
    """


class BatchWriteError(IngestError):
    """The batch was read but the warehouse write failed (disk full, server restarted) and was
    rolled back: nothing of it is kept, and the same load may succeed when tried again."""
