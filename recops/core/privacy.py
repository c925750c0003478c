"""Personal data in one place: pseudonymisation (md5(salt || shop user id), shared by dbt staging
and the API), the shop id as stored, finding a customer in a quarantined record, and dropping a
customer's rows from a Parquet file. The erasers of each store sit beside their store."""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from recops.core.constants import USER_COL, USER_ID_FIELD_ALIASES
from recops.core.settings import Settings

LEGACY_SALT = "recops-dev-salt"
"""The fixed embedded salt of earlier versions, kept only for homes built with it."""


_SALTS: dict[tuple[str, str], str] = {}


def user_salt(settings: Settings) -> str:
    """The salt of the user pseudonyms: ``RECOPS_USER_SALT``, else (embedded profile) the home's
    own, generated at random on first use into ``$RECOPS_HOME/user_salt`` (mode 600) and read from
    there by every later process of that home. Production settings cannot be built without one.

    A home where dbt ran before salts were generated (dbt's folder but no salt file: the first
    dbt run asks for the salt before it creates that folder) keeps the fixed salt its pseudonyms
    were made with, so its keys stay valid; rebuild it to get a random one."""
    if settings.user_salt is not None:
        return settings.user_salt
    if settings.profile == "production":  # Settings refuses this; kept for a model_construct()
        raise ValueError("RECOPS_USER_SALT is required on the production profile")
    cache_key = (str(settings.home), settings.profile)
    cached = _SALTS.get(cache_key)
    if cached is None:
        from recops.core.dbt import dbt_state_dir

        path = settings.user_salt_file
        legacy = LEGACY_SALT if dbt_state_dir(settings).exists() and not path.exists() else None
        cached = _SALTS[cache_key] = secret_file(path, legacy or secrets.token_urlsafe(32))
    return cached


def secret_file(path: Path, value: str) -> str:
    """The value kept in ``path``; ``value`` written there (mode 600, created exclusively) if the
    file does not exist yet. A process that loses the race reads the winner's. The home's
    generated secrets all go through it: the user salt here, the API tokens in serving."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # the winner may still be writing
            text = path.read_text().strip()
            if text:
                return text
            time.sleep(0.01)
        raise ValueError(f"{path} is empty: delete it (a new secret is generated)") from None
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    return value


def rewrite_sqlite(con: Any) -> None:
    """Rewrite an SQLite file after an erasure. ``secure_delete`` zeroes what the delete removes, but
    not the stale copies of cells SQLite left in a page's free space when it rearranged that page
    before (seen: a user key surviving in a free block of the Feast online store); ``VACUUM``
    writes the live rows into a fresh file, and the checkpoint empties a WAL file of old pages."""
    con.execute("vacuum")
    con.execute("pragma wal_checkpoint(truncate)")


def pseudonymise(user_id: str, salt: str) -> str:
    """The warehouse's user key for a shop user id (same expression as ``stg_raw__events``)."""
    cleaned = re.sub(r"\s+", " ", user_id).strip()
    return hashlib.md5(f"{salt}{cleaned}".encode()).hexdigest()

_INTEGRAL = re.compile(r"^(-?\d+)\.0+$")
# Separators of a record that is not valid JSON (a malformed JSON line): tokens are compared whole.
_TOKEN_SPLIT = re.compile(r"[\s\"',:;{}\[\]()=|\t]+")


class ErasureError(RuntimeError):
    """The erasure could not be carried out (completely): re-run ``recops forget``."""


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


def column_key(name: str) -> str:
    """Case-, space- and underscore-insensitive form of a column name (as ingestion matches)."""
    return re.sub(r"[\s_\-]+", "", str(name)).lower()


def user_field_keys() -> frozenset[str]:
    """Column names (in :func:`column_key` form) that carry the customer id in any source."""
    return frozenset(column_key(a) for a in USER_ID_FIELD_ALIASES)


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
    fields = frozenset(user_fields) if user_fields is not None else user_field_keys()
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


