"""Where the published candidates live, beside the Feast online store: SQLite on the embedded
profile (``$RECOPS_HOME/serving/candidates.db``), Redis on the production profile.

Everything is keyed by model version, so a version that is never promoted never changes what the
champion serves. Per version: one :class:`~recops.core.servable.ServingMeta` record and one
:class:`~recops.core.servable.UserCandidates` record per known user (pseudonymised key). A
version becomes readable only when its meta is written, after all its user records.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from recops.core.servable import ServingMeta, UserCandidates
from recops.core.settings import Settings

REDIS_PREFIX = "recops:candidates"
WRITE_BATCH = 2000


class StoreUnavailable(RuntimeError):
    """The candidate store cannot be reached (the API falls back to popularity)."""


class CandidateStore(Protocol):
    def write_users(self, version: str, records: Iterable[tuple[str, UserCandidates]]) -> int: ...
    def write_meta(self, meta: ServingMeta) -> None: ...
    def read_meta(self, version: str) -> ServingMeta | None: ...
    def read_user(self, version: str, user_key: str) -> UserCandidates | None: ...
    def published_at(self, version: str) -> str | None: ...
    def versions(self) -> list[str]: ...
    def delete_version(self, version: str) -> int: ...
    def delete_user(self, user_key: str) -> int: ...


class SqliteCandidateStore:
    """One SQLite file; one read-only connection per thread for requests."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._local = threading.local()

    def _writer(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(self.path, timeout=30)
        con.execute("pragma journal_mode=wal")
        con.execute(
            "create table if not exists users (version text not null, user_key text not null, "
            "record blob not null, primary key (version, user_key)) without rowid"
        )
        con.execute(
            "create table if not exists meta (version text primary key, published_at text not null, "
            "record blob not null)"
        )
        return con

    def _reader(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            if not self.path.exists():
                raise StoreUnavailable(f"no candidate store at {self.path}")
            try:
                con = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"candidate store {self.path}: {exc}") from exc
            self._local.con = con
        return con

    def _read(self, sql: str, params: tuple) -> list[tuple]:
        try:
            return self._reader().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            self._local.con = None
            raise StoreUnavailable(f"candidate store {self.path}: {exc}") from exc

    def write_users(self, version: str, records: Iterable[tuple[str, UserCandidates]]) -> int:
        con = self._writer()
        written = 0
        try:
            batch: list[tuple[str, str, bytes]] = []
            for user_key, record in records:
                batch.append((version, user_key, record.to_bytes()))
                if len(batch) >= WRITE_BATCH:
                    con.executemany("insert or replace into users values (?, ?, ?)", batch)
                    written += len(batch)
                    batch = []
            con.executemany("insert or replace into users values (?, ?, ?)", batch)
            written += len(batch)
            con.commit()
        finally:
            con.close()
        return written

    def write_meta(self, meta: ServingMeta) -> None:
        con = self._writer()
        try:
            con.execute(
                "insert or replace into meta values (?, ?, ?)", (meta.version, meta.published_at, meta.to_bytes())
            )
            con.commit()
        finally:
            con.close()

    def read_meta(self, version: str) -> ServingMeta | None:
        rows = self._read("select record from meta where version = ?", (version,))
        return ServingMeta.from_bytes(rows[0][0]) if rows else None

    def read_user(self, version: str, user_key: str) -> UserCandidates | None:
        rows = self._read("select record from users where version = ? and user_key = ?", (version, user_key))
        return UserCandidates.from_bytes(rows[0][0]) if rows else None

    def published_at(self, version: str) -> str | None:
        if not self.path.exists():
            return None
        rows = self._read("select published_at from meta where version = ?", (version,))
        return rows[0][0] if rows else None

    def versions(self) -> list[str]:
        if not self.path.exists():
            return []
        return [r[0] for r in self._read("select version from meta order by published_at", ())]

    def delete_version(self, version: str) -> int:
        con = self._writer()
        try:
            gone = con.execute("delete from users where version = ?", (version,)).rowcount
            con.execute("delete from meta where version = ?", (version,))
            con.commit()
        finally:
            con.close()
        return gone

    def delete_user(self, user_key: str) -> int:
        if not self.path.exists():
            return 0
        con = self._writer()
        try:
            con.execute("pragma secure_delete = on")
            gone = con.execute("delete from users where user_key = ?", (user_key,)).rowcount
            con.commit()
            from recops.core.privacy import rewrite_sqlite

            rewrite_sqlite(con)
        finally:
            con.close()
        return gone


class RedisCandidateStore:
    """Keys ``recops:candidates:<project>:<version>:u:<user>`` and ``...:<version>:meta``."""

    def __init__(self, url: str, namespace: str) -> None:
        import redis

        self.url = url
        self.prefix = f"{REDIS_PREFIX}:{namespace}"
        self._client = redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)

    def _key(self, version: str, *parts: str) -> str:
        return ":".join([self.prefix, version, *parts])

    def _call(self, fn, *args):
        import redis

        try:
            return fn(*args)
        except redis.RedisError as exc:
            raise StoreUnavailable(f"candidate store {self.url}: {exc}") from exc

    def write_users(self, version: str, records: Iterable[tuple[str, UserCandidates]]) -> int:
        written = 0
        pipe = self._client.pipeline(transaction=False)
        for user_key, record in records:
            pipe.set(self._key(version, "u", user_key), record.to_bytes())
            written += 1
            if written % WRITE_BATCH == 0:
                self._call(pipe.execute)
        self._call(pipe.execute)
        return written

    def write_meta(self, meta: ServingMeta) -> None:
        pipe = self._client.pipeline(transaction=True)
        pipe.set(self._key(meta.version, "meta"), meta.to_bytes())
        pipe.set(self._key(meta.version, "published_at"), meta.published_at)
        self._call(pipe.execute)

    def read_meta(self, version: str) -> ServingMeta | None:
        blob = self._call(self._client.get, self._key(version, "meta"))
        return ServingMeta.from_bytes(blob) if blob else None

    def read_user(self, version: str, user_key: str) -> UserCandidates | None:
        blob = self._call(self._client.get, self._key(version, "u", user_key))
        return UserCandidates.from_bytes(blob) if blob else None

    def published_at(self, version: str) -> str | None:
        value = self._call(self._client.get, self._key(version, "published_at"))
        return value.decode() if value else None

    def versions(self) -> list[str]:
        keys = self._call(lambda: list(self._client.scan_iter(match=f"{self.prefix}:*:meta", count=1000)))
        return sorted(k.decode().split(":")[-2] for k in keys)

    def _delete_matching(self, pattern: str) -> int:
        gone = 0
        batch: list[bytes] = []
        for key in self._call(lambda: list(self._client.scan_iter(match=pattern, count=1000))):
            batch.append(key)
            if len(batch) >= WRITE_BATCH:
                gone += self._call(self._client.delete, *batch)
                batch = []
        if batch:
            gone += self._call(self._client.delete, *batch)
        return gone

    def delete_version(self, version: str) -> int:
        return self._delete_matching(f"{self.prefix}:{version}:*")

    def delete_user(self, user_key: str) -> int:
        return self._delete_matching(f"{self.prefix}:*:u:{user_key}")


def candidate_store(settings: Settings) -> CandidateStore:
    """The profile's candidate store."""
    if settings.profile == "production":
        return RedisCandidateStore(settings.redis_url, settings.feast_project)
    return SqliteCandidateStore(settings.serving_dir / "candidates.db")
