"""``recops forget``: erase one customer from everything RecOps stores, and audit the erasure.

:func:`forget_user` takes the shop's *original* customer id (what raw tables hold; staging
pseudonymises it as ``md5(salt || id)``, :func:`recops.privacy.pseudonymise`) and removes:

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
   otherwise survive in free blocks); SQLite deletes with ``secure_delete``. PostgreSQL gets a
   ``VACUUM`` of the touched tables (WAL archives and backups age out on their own schedule).

Re-running ``forget`` for the same id is safe (counts are then zero) and finishes an erasure that
failed part-way. The pipeline must not run meanwhile (DuckDB's file lock enforces it).
"""

from __future__ import annotations

import getpass
import json
import os
import re
import sqlite3
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recops.constants import AUDIT_ERASURES, RAW_EVENTS, RAW_QUARANTINE, USER_COL
from recops.privacy import pseudonymise
from recops.settings import Settings

SUPPRESSED_USERS = "raw.suppressed_users"
_INTEGRAL = re.compile(r"^(-?\d+)\.0+$")
# Separators of a record that is not valid JSON (a malformed JSON line): tokens are compared whole.
_TOKEN_SPLIT = re.compile(r"[\s\"',:;{}\[\]()=|\t]+")


class ErasureError(RuntimeError):
    """The erasure could not be carried out (completely): re-run ``recops forget``."""


# --- ids ---------------------------------------------------------------------------------------
def normalise_user_id(user_id: object) -> str:
    """The shop id as ingestion and staging store it: text, whitespace collapsed and trimmed,
    ``12345.0`` -> ``12345`` (a float cell)."""
    if isinstance(user_id, float) and user_id.is_integer():
        user_id = int(user_id)
    text = re.sub(r"\s+", " ", str(user_id)).strip()
    return _INTEGRAL.sub(r"\1", text)


def _same_id(value: object, original: str) -> bool:
    if value is None or isinstance(value, bool | dict | list):
        return False
    if isinstance(value, float) and not np.isfinite(value):
        return False
    return normalise_user_id(value) == original


def _user_field_keys() -> frozenset[str]:
    """Column names (ingestion's case/space-insensitive form) that carry the customer id."""
    from recops.ingestion.events import EVENT_REQUIRED
    from recops.ingestion.online_retail import REQUIRED as ONLINE_RETAIL
    from recops.ingestion.parsing import column_key

    return frozenset(
        column_key(a) for a in (*EVENT_REQUIRED["user_id"], *ONLINE_RETAIL["customer"])
    )


def record_mentions(
    raw_record: str | None, original: str, user_fields: Iterable[str] | None = None
) -> bool:
    """Whether a quarantined record belongs to the customer.

    - a JSON object (a row as read): one of its user-id columns (``user_id``, ``user``,
      ``customer_id``, ``Customer ID``, ``CustomerID``, any case) equals the id exactly;
    - a JSON array (a CSV line with the wrong field count, whose columns cannot be trusted): any
      field equals the id exactly;
    - anything else (a line that was not JSON): any whole token equals the id.
    Never a substring match: id ``123`` does not match ``1234`` or ``u123``.
    """
    if raw_record is None:
        return False
    from recops.ingestion.parsing import column_key

    fields = frozenset(user_fields) if user_fields is not None else _user_field_keys()
    try:
        value = json.loads(raw_record)
    except (TypeError, ValueError):
        value = raw_record
    if isinstance(value, dict):
        return any(column_key(k) in fields and _same_id(v, original) for k, v in value.items())
    if isinstance(value, list):
        return any(_same_id(v, original) for v in value)
    if isinstance(value, str):
        return any(_same_id(token, original) for token in _TOKEN_SPLIT.split(value) if token)
    return _same_id(value, original)


# --- warehouse ---------------------------------------------------------------------------------
def _clean_sql(column: str) -> str:
    """Staging's ``clean_text`` (the same expression on DuckDB and PostgreSQL)."""
    return f"nullif(trim(regexp_replace({column}, '\\s+', ' ', 'g')), '')"


def _user_tables(wh) -> list[str]:
    """Every base table with a ``user_id`` column, as ``schema.table`` (raw.events excluded)."""
    frame = wh.query_df(
        "select c.table_schema, c.table_name from information_schema.columns c "
        "join information_schema.tables t on t.table_schema = c.table_schema "
        "and t.table_name = c.table_name and t.table_catalog = c.table_catalog "
        "where lower(c.column_name) = ? and t.table_type = 'BASE TABLE' "
        "and c.table_schema not in ('information_schema', 'pg_catalog') "
        "order by 1, 2",
        [USER_COL],
    )
    names = [f"{s}.{t}" for s, t in frame.itertuples(index=False)]
    return [n for n in names if n != RAW_EVENTS]


def _delete_where(wh, table: str, where: str, params: list[Any]) -> int:
    count = int(wh.scalar(f"select count(*) from {table} where {where}", params))
    if count:
        wh.execute(f"delete from {table} where {where}", params)
    return count


def _erase_quarantine(wh, original: str) -> int:
    sql = f"select batch_id, source_file, source_row, raw_record from {RAW_QUARANTINE}"
    params: list[Any] = []
    if json.dumps(original, ensure_ascii=False)[1:-1] == original:
        # the id is stored verbatim in any record that holds it: a cheap superset first
        sql += " where strpos(raw_record, ?) > 0"
        params = [original]
    candidates = wh.query_df(sql, params or None)
    fields = _user_field_keys()
    hits = candidates[[record_mentions(r, original, fields) for r in candidates["raw_record"]]]
    deleted = 0
    for batch_id, source_file, source_row, raw_record in hits.drop_duplicates().itertuples(
        index=False
    ):
        row_sql = (
            "batch_id = ? and source_file = ? and raw_record = ? and coalesce(source_row, -1) = ?"
        )
        row = -1 if pd.isna(source_row) else int(source_row)
        deleted += _delete_where(
            wh, RAW_QUARANTINE, row_sql, [batch_id, source_file, raw_record, row]
        )
    return deleted


_SALT_IN_VIEW = re.compile(r"md5\(\(*'((?:[^']|'')*)'(?:::\w+)?\s*\|\|")


def check_salt(settings: Settings, wh) -> None:
    """Refuse to erase with another salt than the one the warehouse was built with: the
    pseudonymised key would match nothing downstream of raw. dbt bakes the salt into the
    ``stg_raw__events`` view; no view yet (no dbt run) means nothing to compare."""
    if settings.profile == "production":
        sql = wh.scalar(
            "select definition from pg_views where viewname = 'stg_raw__events' "
            "and schemaname = 'public'"
        )
    else:
        sql = wh.scalar(
            "select sql from duckdb_views() where view_name = 'stg_raw__events' "
            "and schema_name = 'main'"
        )
    found = _SALT_IN_VIEW.search(sql or "")
    if found and found.group(1).replace("''", "'") != settings.user_salt:
        raise ErasureError(
            "RECOPS_USER_SALT differs from the salt the warehouse was built with: set the "
            "pipeline's salt and run forget again (nothing was erased)"
        )


def erase_warehouse(
    settings: Settings, original: str, key: str, erased_at: datetime
) -> dict[str, int]:
    """Delete the customer from raw, quarantine and every table with a ``user_id`` column, and
    add the suppression row, in one transaction. Returns rows deleted per table."""
    from recops.warehouse import Warehouse

    counts: dict[str, int] = {}
    with Warehouse(settings) as wh:
        check_salt(settings, wh)
        wh.ensure_raw_schema()
        with wh.transaction():
            counts[RAW_EVENTS] = _delete_where(
                wh, RAW_EVENTS, f"{_clean_sql(USER_COL)} = ?", [original]
            )
            counts[RAW_QUARANTINE] = _erase_quarantine(wh, original)
            for table in _user_tables(wh):
                counts[table] = _delete_where(wh, table, f"{USER_COL} in (?, ?)", [key, original])
            wh.append_df(
                SUPPRESSED_USERS,
                pd.DataFrame({"user_key": [key], "suppressed_before": [erased_at]}),
            )
    return counts


def record_erasure(settings: Settings, erasure: dict[str, Any]) -> None:
    """Append the audit row (no customer id in it) to ``raw.erasures``."""
    from recops.warehouse import Warehouse

    row = pd.DataFrame(
        {
            "erasure_id": [erasure["erasure_id"]],
            "requested_by": [erasure["requested_by"]],
            "erased_at": [erasure["erased_at"]],
            "row_counts": [json.dumps(erasure["row_counts"], sort_keys=True)],
        }
    )
    with Warehouse(settings) as wh:
        wh.ensure_raw_schema()
        wh.append_df(AUDIT_ERASURES, row)


def reclaim_storage(settings: Settings, tables: Iterable[str]) -> str:
    """Make deleted values unrecoverable from the database files (see the module docstring)."""
    if settings.profile == "production":
        from recops.warehouse import Warehouse

        with Warehouse(settings) as wh:
            for table in tables:
                wh.execute(f"vacuum {table}")
        return "postgres: vacuum"
    compact_duckdb(settings.warehouse_path)
    return "duckdb: rewritten into a fresh file"


def compact_duckdb(path: Path) -> None:
    """Copy a DuckDB database into a fresh file and swap it in (DuckDB leaves deleted rows in
    free blocks; a copy writes only live data)."""
    import duckdb

    path = Path(path)
    if not path.exists():
        return
    fresh = path.with_name(f".{path.stem}.compact{path.suffix}")
    fresh.unlink(missing_ok=True)
    con = duckdb.connect(str(path))
    try:
        source = con.execute("select current_database()").fetchone()[0]
        con.execute("attach '" + str(fresh).replace("'", "''") + "' as recops_compact")
        con.execute(f'copy from database "{source}" to recops_compact')
        con.execute("detach recops_compact")
    except BaseException:
        con.close()
        fresh.unlink(missing_ok=True)
        raise
    con.close()
    os.replace(fresh, path)
    Path(f"{path}.wal").unlink(missing_ok=True)


# --- files: parquet frames and serving bundles ------------------------------------------------
def scrub_parquet(path: Path, values: set[str]) -> int:
    """Rewrite a Parquet file without the rows whose ``user_id`` is in ``values``; rows removed."""
    import pyarrow.parquet as pq

    if USER_COL not in pq.read_schema(path).names:
        return 0
    table = pq.read_table(path)
    users = table.column(USER_COL).to_pandas().astype("string")
    drop = users.isin(values).fillna(False).to_numpy(dtype=bool)
    if not drop.any():
        return 0
    kept = table.filter(pa_mask(~drop))
    tmp = path.with_name(f".{path.name}.erasure")
    pq.write_table(kept, tmp)
    os.replace(tmp, path)
    return int(drop.sum())


def pa_mask(mask: np.ndarray):
    import pyarrow as pa

    return pa.array(mask, type=pa.bool_())


def _drop_row(matrix: Any, pos: int) -> Any:
    if sp.issparse(matrix):
        keep = np.ones(matrix.shape[0], dtype=bool)
        keep[pos] = False
        return matrix.tocsr()[np.flatnonzero(keep)]
    return np.delete(np.asarray(matrix), pos, axis=0)


# Per class: the attributes holding one row per entry of ``user_index``.
_USER_ROWS: dict[str, tuple[str, ...]] = {
    "Popularity": (),
    "Repeat": ("matrix",),
    "ItemCF": ("profiles",),
    "Content": ("profiles",),
    "ALS": ("user_factors",),
    "HistoryStats": ("counts", "last_day"),
}


def _scrub_user_state(obj: Any, key: str) -> int:
    """Remove ``key`` from one fitted retriever / HistoryStats in place; 1 if it knew the user."""
    name = type(obj).__name__
    index = getattr(obj, "user_index", None)
    changed = 0
    if index is not None and len(index):
        pos = index.get_indexer([key])[0]
        if pos >= 0:
            if name not in _USER_ROWS:
                raise ErasureError(f"forget does not know how to remove a user from {name}")
            for attr in _USER_ROWS[name]:
                setattr(obj, attr, _drop_row(getattr(obj, attr), pos))
            obj.user_index = index.delete(pos)
            changed = 1
    prices = getattr(obj, "user_mean_price", None)
    if isinstance(prices, pd.Series) and key in prices.index:
        obj.user_mean_price = prices.drop(index=key)
        changed = 1
    return changed


def scrub_bundle(bundle: Any, key: str) -> int:
    """Remove a pseudonymised user from a serving bundle (``RecommenderBundle``) in place.
    Returns how many of its components knew the user."""
    parts = [*getattr(bundle, "retrievers", []), getattr(bundle, "stats", None)]
    return sum(_scrub_user_state(p, key) for p in parts if p is not None)


def scrub_bundle_file(path: Path, key: str) -> int:
    import joblib

    bundle = joblib.load(path)
    changed = scrub_bundle(bundle, key)
    if changed:
        tmp = path.with_name(f".{path.name}.erasure")
        joblib.dump(bundle, tmp, compress=3)
        os.replace(tmp, path)
    return changed


def scrub_file(path: Path, key: str, original: str) -> int:
    """Rows (Parquet) or bundle components (joblib) removed from one file."""
    if path.suffix == ".parquet":
        return scrub_parquet(path, {key, original})
    if path.suffix == ".joblib":
        return scrub_bundle_file(path, key)
    return 0


def _files(root: Path, suffixes: tuple[str, ...] = (".parquet", ".joblib")) -> Iterator[Path]:
    if root.exists():
        yield from sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in suffixes)


def erase_feature_sources(settings: Settings, key: str, original: str) -> dict[str, int]:
    """Feast offline sources (embedded profile: Parquet exports of the ML marts)."""
    return {
        f"feast.offline.{p.name}": scrub_parquet(p, {key, original})
        for p in _files(settings.feature_data_dir, (".parquet",))
    }


def erase_run_files(settings: Settings, key: str, original: str) -> dict[str, int]:
    """Training sets, holdouts and bundles in ``$RECOPS_HOME/runs`` (rows / components removed)."""
    rows = bundles = 0
    for path in _files(settings.home / "runs"):
        n = scrub_file(path, key, original)
        rows, bundles = (rows + n, bundles) if path.suffix == ".parquet" else (rows, bundles + n)
    return {"runs.parquet_rows": rows, "runs.bundles": bundles}


def erase_model_artifacts(settings: Settings, key: str, original: str) -> dict[str, int]:
    """Rewrite the MLflow artifacts (bundles, holdout frames) of every run of the experiment."""
    if settings.profile == "embedded" and not (settings.mlflow_dir / "mlflow.db").exists():
        return {"mlflow.parquet_rows": 0, "mlflow.bundles": 0}
    from recops.training.registry import client

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    c = client(settings)
    experiment = c.get_experiment_by_name(settings.experiment_name)
    rows = bundles = 0
    if experiment is None:
        return {"mlflow.parquet_rows": 0, "mlflow.bundles": 0}
    token = None
    while True:
        page = c.search_runs([experiment.experiment_id], max_results=500, page_token=token)
        for run in page:
            for artifact in _artifacts(c, run.info.run_id):
                with tempfile.TemporaryDirectory() as tmp:
                    local = Path(c.download_artifacts(run.info.run_id, artifact, tmp))
                    n = scrub_file(local, key, original)
                    if n:
                        folder = os.path.dirname(artifact) or None
                        c.log_artifact(run.info.run_id, str(local), artifact_path=folder)
                if local.suffix == ".parquet":
                    rows += n
                else:
                    bundles += n
        token = page.token
        if not token:
            break
    return {"mlflow.parquet_rows": rows, "mlflow.bundles": bundles}


def _artifacts(c, run_id: str, path: str | None = None) -> Iterator[str]:
    for info in c.list_artifacts(run_id, path):
        if info.is_dir:
            yield from _artifacts(c, run_id, info.path)
        elif info.path.endswith((".parquet", ".joblib")):
            yield info.path


def erase_feedback_files(settings: Settings, original: str) -> dict[str, int]:
    """Drop the customer's lines from the API feedback files (pending and ingested)."""
    removed = 0
    fields = _user_field_keys()
    for path in (
        sorted(settings.feedback_dir.rglob("*.jsonl")) if settings.feedback_dir.exists() else []
    ):
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        kept = [
            line
            for line in lines
            if not line.strip() or not record_mentions(line, original, fields)
        ]
        if len(kept) == len(lines):
            continue
        removed += len(lines) - len(kept)
        if any(line.strip() for line in kept):
            tmp = path.with_name(f".{path.name}.erasure")
            tmp.write_text("".join(kept), encoding="utf-8")
            os.replace(tmp, path)
        else:  # an empty feedback file would fail ingestion
            path.unlink()
    return {"feedback.lines": removed}


def erase_quality_files(settings: Settings, key: str) -> dict[str, int]:
    """GX results and Data Docs keep example values of failed expectations, and alerts quote
    them: delete result files that mention the pseudonymised key (the next validation writes new
    ones) and drop alert lines that do. Upstream of staging no check lists user ids, so the
    original id is not searched here (a short id such as ``1`` would match unrelated text)."""
    needle = key.encode("utf-8")
    files = lines = 0
    roots = [settings.quality_dir] if settings.quality_dir.exists() else []
    candidates = [p for root in roots for p in sorted(root.rglob("*")) if p.is_file()]
    if settings.alerts_path.exists():
        candidates.append(settings.alerts_path)
    for path in candidates:
        if needle not in path.read_bytes():
            continue
        if path.suffix == ".jsonl":
            kept = [x for x in path.read_bytes().splitlines(keepends=True) if needle not in x]
            lines += len(path.read_bytes().splitlines()) - len(kept)
            tmp = path.with_name(f".{path.name}.erasure")
            tmp.write_bytes(b"".join(kept))
            os.replace(tmp, path)
        else:
            path.unlink()
            files += 1
    return {"quality.files": files, "alerts.lines": lines}


# --- Feast online store ------------------------------------------------------------------------
def erase_online_store(settings: Settings, key: str, store: Any = None) -> dict[str, int]:
    """Delete every online-store entity key of the user (``user`` and each ``user, item`` pair)
    from the feature views joined on ``user_id``. Returns entity keys deleted per feature view."""
    if store is None:
        if settings.profile == "embedded" and not (settings.feast_dir / "registry.db").exists():
            return {}
        from recops.feature_store import get_store

        store = get_store(settings)
    views = [v for v in store.list_feature_views() if USER_COL in v.join_keys and v.online]
    if not views:
        return {}
    online = store._get_provider().online_store
    kind = type(online).__name__
    if kind == "SqliteOnlineStore":
        return _erase_sqlite(store.config, online, views, key)
    if kind == "RedisOnlineStore":
        return _erase_redis(store.config, online, views, key)
    raise ErasureError(f"forget supports the sqlite and redis online stores, not {kind}")


def _entity_user(serialized: bytes, version: int) -> str | None:
    from feast.infra.key_encoding_utils import deserialize_entity_key

    entity = deserialize_entity_key(bytes(serialized), entity_key_serialization_version=version)
    values = dict(zip(entity.join_keys, entity.entity_values, strict=True))
    value = values.get(USER_COL)
    return None if value is None else value.string_val


def _erase_sqlite(config: Any, online: Any, views: list, key: str) -> dict[str, int]:
    from feast.infra.online_stores.helpers import compute_table_id

    path = Path(online._get_db_path(config))
    if not path.exists():
        return {}
    version = config.entity_key_serialization_version
    versioning = config.registry.enable_online_feature_view_versioning
    counts: dict[str, int] = {}
    con = sqlite3.connect(path)
    try:
        con.execute("pragma secure_delete = on")  # overwrite deleted content with zeros
        tables = {r[0] for r in con.execute("select name from sqlite_master where type = 'table'")}
        for view in views:
            table = compute_table_id(config.project, view, versioning)
            if table not in tables:
                counts[f"feast.online.{view.name}"] = 0
                continue
            quoted = '"' + table.replace('"', '""') + '"'
            found = con.execute(
                f"select distinct entity_key from {quoted} where instr(entity_key, ?) > 0",
                (key.encode("utf-8"),),
            ).fetchall()
            keys = [k for (k,) in found if _entity_user(k, version) == key]
            con.executemany(f"delete from {quoted} where entity_key = ?", [(k,) for k in keys])
            counts[f"feast.online.{view.name}"] = len(keys)
        con.commit()
    finally:
        con.close()
    return counts


def _erase_redis(config: Any, online: Any, views: list, key: str) -> dict[str, int]:
    client = online._get_client(config.online_store)
    version = config.entity_key_serialization_version
    suffix = config.project.encode("utf-8")
    pattern = b"*" + re.sub(rb"([*?\[\]\\])", rb"\\\1", key.encode("utf-8")) + b"*" + suffix
    doomed = []
    for redis_key in client.scan_iter(match=pattern, count=1000):
        if redis_key.endswith(suffix) and _entity_user(redis_key[: -len(suffix)], version) == key:
            doomed.append(redis_key)
    counts = {f"feast.online.{v.name}": 0 for v in views}
    if doomed:
        with client.pipeline(transaction=False) as pipe:
            for redis_key in doomed:
                pipe.hkeys(redis_key)
            fields = pipe.execute()
        for names in fields:
            for name in names:
                view = (
                    bytes(name)[4:].decode("utf-8", "replace")
                    if bytes(name).startswith(b"_ts:")
                    else None
                )
                if view is not None and f"feast.online.{view}" in counts:
                    counts[f"feast.online.{view}"] += 1
        client.delete(*doomed)
    return counts


# --- the command -------------------------------------------------------------------------------
def forget_user(
    settings: Settings, user_id: str, *, requested_by: str | None = None
) -> dict[str, Any]:
    """Erase one customer (the shop's original id) everywhere and audit it; returns the audit
    record (no customer id in it): erasure_id, requested_by, erased_at, row_counts, total."""
    original = normalise_user_id(user_id)
    if not original:
        raise ErasureError("user id is empty")
    key = pseudonymise(original, settings.user_salt)
    erased_at = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    erasure: dict[str, Any] = {
        "erasure_id": uuid.uuid4().hex,
        "requested_by": requested_by or _operator(),
        "erased_at": erased_at,
    }
    counts = erase_warehouse(settings, original, key, erased_at)
    tables = [t for t, n in counts.items() if n]
    counts |= erase_feature_sources(settings, key, original)
    counts |= erase_online_store(settings, key)
    counts |= erase_run_files(settings, key, original)
    counts |= erase_model_artifacts(settings, key, original)
    counts |= erase_feedback_files(settings, original)
    counts |= erase_quality_files(settings, key)
    erasure["row_counts"] = counts
    record_erasure(settings, erasure)
    erasure["storage"] = reclaim_storage(settings, tables)
    erasure["total"] = int(sum(counts.values()))
    return {**erasure, "erased_at": erased_at.isoformat()}


def _operator() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        return os.environ.get("USER") or "unknown"


__all__ = [
    "ErasureError",
    "compact_duckdb",
    "erase_online_store",
    "forget_user",
    "normalise_user_id",
    "record_mentions",
    "scrub_bundle",
]
