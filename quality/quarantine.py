"""Quarantined batches: list them, show why, release one (``recops quarantine``, the
``recops_quarantine`` DAG).

A batch is quarantined when every row of it was rejected at ingestion, or when a quality gate
failed on it; its raw rows stay and staging leaves it out. Releasing it (a person decided the
data is right, e.g. a genuinely small day) puts it back into the marts from the next run on and
marks it ``released``, so no gate judges it again; every release is recorded in
``raw.batch_releases`` (who, when, why, from where, what it was before), like alias moves.
"""

from __future__ import annotations

import json
from typing import Any

from recops.core.settings import Settings
from recops.core.timeutil import now_utc
from recops.core.warehouse import Warehouse

RELEASED = "released"


class QuarantineError(RuntimeError):
    """The batch does not exist or is not quarantined."""


def list_batches(settings: Settings, *, status: str | None = "quarantined") -> list[dict[str, Any]]:
    """Batches (newest first) with their counts, status, gate verdict and reason."""
    where = "where status = ?" if status else ""
    with Warehouse(settings, read_only=settings.profile == "embedded") as wh:
        if not wh.table_exists("raw", "batches"):
            return []
        frame = wh.query_df(
            "select batch_id, source, ingested_at, rows_in, rows_loaded, rows_quarantined, status, "
            f"gate_status, gated_run_id, status_reason from raw.batches {where} "
            "order by ingested_at desc, batch_id",
            [status] if status else None,
        )
    return json.loads(frame.to_json(orient="records", date_format="iso"))


def show_batch(settings: Settings, batch_id: str) -> dict[str, Any]:
    """One batch: its row, its files, the rejected rows per field and reason, and its releases
    (no rejected record's content: it may hold personal data)."""
    with Warehouse(settings, read_only=settings.profile == "embedded") as wh:
        rows = wh.query_df("select * from raw.batches where batch_id = ?", [batch_id])
        if rows.empty:
            raise QuarantineError(f"no batch {batch_id!r}")
        reasons = wh.query_df(
            "select field, reason, count(*) as rows from raw.quarantine where batch_id = ? "
            "group by field, reason order by rows desc",
            [batch_id],
        )
        releases = wh.query_df(
            "select released_at, released_by, reason, origin, previous_status from raw.batch_releases "
            "where batch_id = ? order by released_at",
            [batch_id],
        )
    batch = json.loads(rows.to_json(orient="records", date_format="iso"))[0]
    batch["files"] = json.loads(batch["files"])
    batch["rejected"] = json.loads(reasons.to_json(orient="records"))
    batch["releases"] = json.loads(releases.to_json(orient="records", date_format="iso"))
    return batch


def release_batch(
    settings: Settings, batch_id: str, *, reason: str, actor: str, origin: str = "cli"
) -> dict[str, Any]:
    """Put a quarantined batch back (status ``loaded``, gate verdict ``released``) and record
    the release. Refuses a batch that is not quarantined, or a release without a reason."""
    if not reason.strip():
        raise QuarantineError("a release needs a reason (it is recorded)")
    at = now_utc().replace(tzinfo=None)
    with Warehouse(settings) as wh, wh.transaction():
        rows = wh.query_df("select status, status_reason from raw.batches where batch_id = ?", [batch_id])
        if rows.empty:
            raise QuarantineError(f"no batch {batch_id!r}")
        status, previous = str(rows.iat[0, 0]), rows.iat[0, 1]
        if status != "quarantined":
            raise QuarantineError(f"batch {batch_id} is {status}, not quarantined")
        wh.execute(
            "update raw.batches set status = 'loaded', gate_status = ?, status_reason = ? where batch_id = ?",
            [RELEASED, f"released by {actor}: {reason}"[:2000], batch_id],
        )
        wh.execute(
            "insert into raw.batch_releases values (?, ?, ?, ?, ?, ?, ?)",
            [batch_id, at, actor, reason, origin, status, None if previous is None else str(previous)[:2000]],
        )
    return {"batch_id": batch_id, "status": "loaded", "gate_status": RELEASED, "released_by": actor,
            "released_at": at.isoformat(), "reason": reason, "origin": origin}
