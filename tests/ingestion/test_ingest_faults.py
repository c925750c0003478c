"""Faults injected into a load: the warehouse cannot be written, PostgreSQL restarts mid-batch.

Both are real: the first runs ``recops ingest events`` in a child process whose file size limit
(``RLIMIT_FSIZE``) leaves the DuckDB file no room for the batch, so the operating system refuses
the write (``File too large``, what a full disk does to a growing file); the second starts a
private PostgreSQL server of its own (``initdb``/``pg_ctl`` on a free port, never the shared
server other tests use) and restarts it while the loader's transaction is open. Each time: a clear
error naming the files and the batch, nothing of the batch in the warehouse, and the retry loads it
exactly once.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest

from recops.core.settings import Settings
from recops.core.warehouse import Warehouse, create_postgres_database
from recops.ingestion import IngestError, ingest_events
from recops.ingestion.shop_files import write_shop

pytestmark = [pytest.mark.integration]


@pytest.fixture(scope="module")
def shops(tmp_path_factory) -> dict[str, Path]:
    """A small shop (the batch already loaded) and a bigger one (the batch the fault hits)."""
    root = tmp_path_factory.mktemp("fault-shops")
    write_shop(root / "small", users=200, items=100, days=30, seed=42, fmt="parquet")
    write_shop(root / "big", users=3000, items=300, days=60, seed=7, fmt="parquet")
    return {name: root / name for name in ("small", "big")}


def _counts(settings: Settings) -> dict[str, int]:
    with Warehouse(settings) as wh:
        return {
            table: int(wh.scalar(f"select count(*) from raw.{table}"))
            for table in ("events", "items", "quarantine", "batches")
        }


def _recops(home: Path, *args: str, fsize: int | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECOPS_")}
    env.update({"RECOPS_HOME": str(home), "RECOPS_PROFILE": "embedded"})

    def limit() -> None:
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    recops = Path(sys.executable).with_name("recops")
    return subprocess.run(
        [str(recops), *args], capture_output=True, text=True, env=env, preexec_fn=limit, timeout=300
    )


def test_a_warehouse_write_that_fails_mid_load_keeps_nothing_and_the_retry_loads_once(shops, tmp_path) -> None:
    home = tmp_path / "home"
    small, big = shops["small"], shops["big"]
    first = _recops(home, "ingest", "events", str(small / "events.parquet"), "--catalog", str(small / "catalog.parquet"))
    assert first.returncode == 0, first.stderr[-2000:]
    settings = Settings(home=home, profile="embedded")
    before = _counts(settings)
    assert before["batches"] == 1 and before["events"] > 1000

    files = [str(big / "events.parquet"), "--catalog", str(big / "catalog.parquet")]
    room = settings.warehouse_path.stat().st_size + 256 * 1024  # far less than the batch needs
    failed = _recops(home, "ingest", "events", *files, fsize=room)
    assert failed.returncode == 1, failed.stdout[-2000:]
    message = " ".join(failed.stderr.split())
    assert "ingest failed:" in message and "Traceback" not in failed.stderr
    assert str(big / "events.parquet") in message and "was not loaded, nothing of it was kept" in message
    assert str(settings.warehouse_path) in message and "File too large" in message
    assert _counts(settings) == before  # not half-loaded: not a row, not the batch record

    retry = _recops(home, "ingest", "events", *files)
    assert retry.returncode == 0, retry.stderr[-2000:]
    expected = pd.read_parquet(big / "events.parquet")
    after = _counts(settings)
    assert after["batches"] == 2
    assert after["events"] - before["events"] == len(expected)  # every row once
    again = _recops(home, "ingest", "events", *files)
    assert '"duplicate_batch": true' in again.stdout and _counts(settings) == after


def test_a_failed_write_leaves_the_inbox_file_for_the_retry(shops, tmp_path) -> None:
    """``recops ingest inbox`` (the recops_ingest DAG's task): a file the warehouse could not take is
    not a bad file: it stays in the inbox (not in ``failed/``) and the next try loads it."""
    home = tmp_path / "home"
    small, big = shops["small"], shops["big"]
    assert _recops(home, "ingest", "events", str(small / "events.parquet")).returncode == 0
    settings = Settings(home=home, profile="embedded")
    waiting = settings.inbox / "events" / "big.parquet"
    waiting.parent.mkdir(parents=True)
    shutil.copy(big / "events.parquet", waiting)
    before = _counts(settings)

    failed = _recops(home, "ingest", "inbox", fsize=settings.warehouse_path.stat().st_size + 256 * 1024)
    assert failed.returncode == 1 and "ingest failed:" in failed.stderr and "Traceback" not in failed.stderr
    assert waiting.is_file() and not (settings.inbox / "failed").exists()
    assert _counts(settings) == before

    retry = _recops(home, "ingest", "inbox")
    assert retry.returncode == 0, retry.stderr[-2000:]
    assert not waiting.exists() and (settings.inbox / "done" / "events" / "big.parquet").is_file()
    assert _counts(settings)["events"] - before["events"] == len(pd.read_parquet(big / "events.parquet"))


# --- a private PostgreSQL server --------------------------------------------------------------
def _as_server_user(cmd: list[str]) -> list[str]:
    """``initdb`` refuses to run as root: as root, run the server as the ``postgres`` user."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


class PrivatePostgres:
    """A PostgreSQL server of this test alone: its own data folder, port and process."""

    def __init__(self, bin_dir: Path, port: int) -> None:
        self.bin = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="recops-pg-"))  # not under pytest's root-only tmp
        self.data = self.root / "data"
        self.port = port
        self.log = self.root / "server.log"
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        subprocess.run(
            _as_server_user([str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres"]),
            check=True, capture_output=True, timeout=120,
        )

    def ctl(self, *args: str) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.root}"
        subprocess.run(
            _as_server_user([str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w",
                             "-t", "60", "-o", options, *args]),
            check=True, capture_output=True, timeout=120,
        )

    def stop(self) -> None:
        subprocess.run(_as_server_user([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"]),
                       capture_output=True, timeout=60)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def private_postgres(needs_service, browser_tools) -> Iterator[PrivatePostgres]:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    needs_service("PostgreSQL server binaries", bool(found), "/usr/lib/postgresql/*/bin/pg_ctl not found")
    server = PrivatePostgres(found[-1].parent, browser_tools.free_port())
    server.ctl("start")
    try:
        yield server
    finally:
        server.stop()


def _open_load_transaction(settings: Settings) -> bool:
    """True while another session on the server holds a transaction open in the raw schema's
    database (the loader between its first statement and its commit)."""
    import psycopg2

    con = psycopg2.connect(settings.postgres_dsn)
    try:
        with con.cursor() as cur:
            cur.execute(
                "select count(*) from pg_stat_activity where datname = current_database() "
                "and pid <> pg_backend_pid() and xact_start is not null "
                "and (state = 'idle in transaction' or query ilike 'copy %')"
            )
            return bool(cur.fetchone()[0])
    finally:
        con.close()


def test_postgres_restarted_mid_batch_fails_the_load_and_the_retry_leaves_no_duplicates(
    shops, private_postgres, tmp_path
) -> None:
    settings = Settings(home=tmp_path / "pg-home", profile="production", postgres_port=private_postgres.port,
                        postgres_db="recops")
    create_postgres_database(settings)
    small, big = shops["small"], shops["big"]
    ingest_events(settings, small / "events.parquet", small / "catalog.parquet")
    before = _counts(settings)

    restarted = threading.Event()

    def restart_when_the_load_is_open() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if _open_load_transaction(settings):
                private_postgres.ctl("-m", "fast", "restart")  # ends every session, as a real restart does
                restarted.set()
                return
            time.sleep(0.005)

    with ThreadPoolExecutor(max_workers=2) as pool:
        watcher = pool.submit(restart_when_the_load_is_open)
        load = pool.submit(ingest_events, settings, big / "events.parquet", big / "catalog.parquet")
        with pytest.raises(IngestError) as failure:
            load.result(timeout=300)
        watcher.result(timeout=180)
    assert restarted.is_set()
    message = str(failure.value)
    assert str(big / "events.parquet") in message and "was not loaded, nothing of it was kept" in message
    assert f"PostgreSQL 127.0.0.1:{private_postgres.port}/recops" in message
    assert _counts(settings) == before  # the open transaction died with the server: nothing kept

    retry = ingest_events(settings, big / "events.parquet", big / "catalog.parquet")  # the task's retry
    assert not retry.duplicate_batch
    after = _counts(settings)
    assert after["batches"] == before["batches"] + 1
    assert after["events"] - before["events"] == len(pd.read_parquet(big / "events.parquet"))
    with Warehouse(settings) as wh:
        assert wh.scalar(
            "select count(*) from (select batch_id, source_row from raw.events group by 1, 2 having count(*) > 1) d"
        ) == 0
    assert ingest_events(settings, big / "events.parquet", big / "catalog.parquet").duplicate_batch
    assert _counts(settings) == after
