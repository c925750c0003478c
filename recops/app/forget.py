"""``recops forget``: erase one customer from everything RecOps stores, and audit the erasure.

Each store's eraser sits beside its store (:mod:`recops.core.warehouse_erasure`,
:mod:`recops.core.feature_erasure`, :mod:`recops.training.erasure`,
:func:`recops.serving.feedback.erase_feedback_files`, :mod:`recops.quality.erasure`); this module
runs them in order.

:func:`forget_user` takes the shop's *original* customer id (what raw tables hold; staging
pseudonymises it as ``md5(salt || id)``, :func:`recops.core.privacy.pseudonymise`) and removes:

1. **Warehouse** (one transaction): ``raw.events`` (original id), ``raw.quarantine`` (records whose
   user-id field equals the id exactly, see :func:`record_mentions`), and every other base table
   with a ``user_id`` column: the marts and ML tables (pseudonymised id). Staging views read raw,
   so they follow. Raw tables are append-only *except* for this erasure.
2. **Suppression**: a row ``(user_key, suppressed_before)`` in ``raw.suppressed_users``; staging
   drops that key's events at or before the erasure time, so re-ingesting an old export that still
   holds the customer does not bring them back (new activity after the erasure is processed as
   usual). The key is the salted md5: pseudonymous data, kept to honour the erasure.
3. **Feast**: the offline Parquet sources under ``settings.feature_data_dir`` are rewritten without
   the user's rows (production: the offline store *is* the warehouse marts, step 1), and the
   user's entity keys (``user`` and every ``user, item`` pair) are deleted from the online store
   (SQLite with ``secure_delete``, or Redis), found by Feast's own key encoding.
4. **Models**: the serving bundles (retrievers and history stats that know the pseudonymised id)
   and the Parquet frames (training sets, holdouts) of every run, in ``$RECOPS_HOME/runs`` and in
   the MLflow artifacts of every run of the experiment, are rewritten without the user; the API
   then treats them as unknown (popularity fallback) as soon as it loads the champion bundle again
   (a running API keeps its in-memory copy until restart or the next promotion). Item-level
   aggregates the user contributed to (popularity, item-item similarity, ALS item factors, the
   booster) are not personal data and are replaced by the next training run.
5. **Feedback files** from the API (``$RECOPS_HOME/feedback``, pending and ingested) lose the
   user's lines, so the next run does not ingest them again. GX results and Data Docs pages that
   quote the pseudonymised id (examples of a failed expectation) are deleted, alert lines dropped.
6. **Audit**: one row in ``raw.erasures`` (erasure_id, requested_by = the operator, erased_at,
   row_counts JSON per location). It holds no customer id, hashed or not: give the erasure_id
   to the requester as the receipt.
7. **Storage**: on DuckDB the database file is copied into a fresh file (deleted values could
   otherwise survive in free blocks); SQLite deletes with ``secure_delete`` and is then
   rewritten (``VACUUM``: stale cell copies in free space would survive otherwise). PostgreSQL gets a
   ``VACUUM`` of the touched tables (WAL archives and backups age out on their own schedule).

Re-running ``forget`` for the same id is safe (counts are then zero) and finishes an erasure that
failed part-way. The pipeline must not run meanwhile (DuckDB's file lock enforces it).
"""

from __future__ import annotations

import getpass
import os
import uuid
from typing import Any

from recops.core.candidate_store import candidate_store
from recops.core.feature_erasure import erase_feature_sources, erase_online_store
from recops.core.privacy import ErasureError, normalise_user_id, pseudonymise, user_salt
from recops.core.settings import Settings
from recops.core.timeutil import now_utc
from recops.core.warehouse_erasure import erase_warehouse, reclaim_storage, record_erasure
from recops.quality.erasure import erase_quality_files
from recops.serving.feedback import erase_feedback_files, erase_served_files
from recops.training.erasure import erase_model_artifacts, erase_run_files


def forget_user(
    settings: Settings, user_id: str, *, requested_by: str | None = None
) -> dict[str, Any]:
    """Erase one customer (the shop's original id) everywhere and audit it; returns the audit
    record (no customer id in it): erasure_id, requested_by, erased_at, row_counts, total."""
    original = normalise_user_id(user_id)
    if not original:
        raise ErasureError("user id is empty")
    key = pseudonymise(original, user_salt(settings))
    erased_at = now_utc().replace(tzinfo=None, microsecond=0)
    erasure: dict[str, Any] = {
        "erasure_id": uuid.uuid4().hex,
        "requested_by": requested_by or current_operator(),
        "erased_at": erased_at,
    }
    counts = erase_warehouse(settings, original, key, erased_at)
    tables = [t for t, n in counts.items() if n]
    counts |= erase_feature_sources(settings, key, original)
    counts |= erase_online_store(settings, key)
    counts |= erase_run_files(settings, key, original)
    counts |= erase_model_artifacts(settings, key, original)
    counts |= erase_feedback_files(settings, original)
    counts |= erase_served_files(settings, key)
    counts["serving.candidates"] = candidate_store(settings).delete_user(key)
    counts |= erase_quality_files(settings, key)
    erasure["row_counts"] = counts
    record_erasure(settings, erasure)
    erasure["storage"] = reclaim_storage(settings, tables)
    erasure["total"] = int(sum(counts.values()))
    return {**erasure, "erased_at": erased_at.isoformat()}


def current_operator() -> str:
    """The OS user running the command (the operator), or ``unknown``."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        return os.environ.get("USER") or "unknown"
