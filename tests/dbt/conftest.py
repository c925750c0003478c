"""Fixtures of the dbt tests: a tiny raw layer with hand-checkable content, and built warehouses.

The raw rows are written through ``recops.core.warehouse.Warehouse`` (``ensure_raw_schema`` +
``append_df``), exactly as ingestion writes them. Dates sit around CUTOFF = 2024-03-01 (2024 is a
leap year: 2024-02-29 exists). Original user ids contain non-hex characters, so they can never hide
inside an md5 hex digest.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace

import pandas as pd
import pytest

from recops.core.constants import RAW_BATCHES, RAW_EVENTS, RAW_ITEMS, RAW_QUARANTINE, RAW_SERVED
from recops.core.dbt import DbtResult, run_dbt
from recops.core.settings import Settings
from recops.core.warehouse import Warehouse

CUTOFF = "2024-03-01"
ALICE, BOB, CAROL, MALLORY = "cust-alice", "cust-bob", " CUST-Carol ", "cust-mallory"
ORIGINAL_USER_IDS = ("cust-alice", "cust-bob", "CUST-Carol", "cust-mallory")

INGESTED = datetime(2024, 3, 6, 12, 0)


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


# (batch, user, item, type, event_at, qty, price, order)
EVENTS: list[tuple] = [
    # alice: the user whose features are hand-computed at the 2024-03-01 snapshot
    ("b1", ALICE, "i1", "purchase", "2024-02-29 10:00", 2, 5.0, "o1"),
    ("b1", ALICE, "i2", "purchase", "2024-02-29 10:00", 1, 3.0, "o1"),
    ("b1", ALICE, "i1", "purchase", "2024-02-20 09:00", 1, 5.0, "o2"),
    ("b1", ALICE, "i3", "purchase", "2024-01-15 12:00", 1, 10.0, "o3"),
    ("b1", ALICE, "i1", "purchase", "2023-11-01 08:00", 1, 5.0, "o4"),
    ("b1", ALICE, "i2", "view", "2024-02-25 18:00", None, None, None),
    ("b1", ALICE, "i3", "view", "2024-01-10 18:00", None, None, None),
    ("b1", ALICE, "i1", " Return ", "2024-02-22 11:00", 1, 5.0, "o2r"),
    ("b1", ALICE, "i2", "add_to_cart", "2024-02-28 17:00", 1, 3.0, None),
    # on the snapshot day itself: must not count at event_timestamp 2024-03-01
    ("b2", ALICE, "i2", "purchase", "2024-03-01 08:00", 1, 3.0, "o9"),
    # exact duplicate of alice's first line, loaded again in another batch
    ("b2", ALICE, "i1", "purchase", "2024-02-29 10:00", 2, 5.0, "o1"),
    # anonymous purchase line: counts for item popularity only
    ("b2", None, "i1", "purchase", "2024-02-28 15:00", 1, 5.0, "o10"),
    # bob: four purchases of i1 in label window 0 -> relevance 3
    ("b2", BOB, "i1", "purchase", "2024-02-10 10:00", 1, 5.0, "o5"),
    ("b2", BOB, "i1", "purchase", "2024-02-12 10:00", 1, 5.0, "o6"),
    ("b2", BOB, "i1", "purchase", "2024-02-14 10:00", 1, 5.0, "o7"),
    ("b2", BOB, "i1", "purchase", "2024-02-16 10:00", 1, 5.0, "o8"),
    ("b2", BOB, "i2", "view", "2024-03-05 09:00", None, None, None),
    # carol (messy id and event type): i5 is not in the catalogue
    ("b2", CAROL, "i5", " PURCHASE", "2024-01-20 10:00", 1, 7.0, "o11"),
    ("b2", CAROL, "i5", "purchase", "2024-01-21 10:00", 1, 9.0, "o12"),
    # quarantined batch: nothing of it may reach staging
    ("b3", MALLORY, "i1", "purchase", "2024-02-27 10:00", 1, 5.0, "o13"),
    ("b3", ALICE, "i3", "purchase", "2024-02-27 10:00", 1, 10.0, "o14"),
]

# (batch, item, title, description, category, brand, price, ingested_at)
ITEMS: list[tuple] = [
    ("b0", "i1", "Red Mug", "old text", "Kitchen", "Acme", 4.0, "2024-03-01 00:00"),
    ("b1", "i1", " Red  Mug ", "Ceramic   mug", "Kitchen", "Acme", 5.5, "2024-03-06 12:00"),
    ("b1", "i2", "Blue Plate", None, "Kitchen", None, 3.0, "2024-03-06 12:00"),
    ("b1", "i3", "Lamp", "Desk lamp", "Home", "Lumo", 10.0, "2024-03-06 12:00"),
    ("b1", "i4", "Catalogue Only", "never sold", "Home", "Lumo", 2.0, "2024-03-06 12:00"),
    ("b3", "i9", "Bad Row", None, None, None, 1.0, "2024-03-06 12:00"),
]

BATCHES = [("b0", "loaded"), ("b1", "loaded"), ("b2", "loaded"), ("b3", "quarantined")]


def events_df() -> pd.DataFrame:
    rows = []
    for n, (batch, user, item, etype, at, qty, price, order) in enumerate(EVENTS):
        rows.append(
            {
                "batch_id": batch,
                "ingested_at": INGESTED,
                "source": "fixture",
                "source_file": f"{batch}.csv",
                "source_row": n,
                "user_id": user,
                "item_id": item,
                "event_type": etype,
                "event_at": _ts(at),
                "session_id": None,
                "quantity": qty,
                "price_amount": price,
                "order_id": order,
                "country": "de",
            }
        )
    df = pd.DataFrame(rows)
    for col in ("quantity", "price_amount"):
        df[col] = df[col].astype("float64")
    return df


def items_df() -> pd.DataFrame:
    rows = [
        {
            "batch_id": batch,
            "ingested_at": _ts(ing),
            "source": "fixture",
            "source_file": f"{batch}_items.csv",
            "source_row": n,
            "item_id": item,
            "title": title,
            "description": desc,
            "category": cat,
            "brand": brand,
            "price_amount": price,
        }
        for n, (batch, item, title, desc, cat, brand, price, ing) in enumerate(ITEMS)
    ]
    return pd.DataFrame(rows)


def batches_df() -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "batch_id": batch,
                "source": "fixture",
                "files": f"{batch}.csv",
                "rows_in": 1,
                "rows_loaded": 1 if status == "loaded" else 0,
                "rows_quarantined": 0 if status == "loaded" else 1,
                "quarantine_reasons": "{}",
                "status": status,
                "status_reason": None if status == "loaded" else "fixture: rejected batch",
                "ingested_at": INGESTED,
            }
            for batch, status in BATCHES
        ]
    )


def quarantine_df() -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "batch_id": "b3",
                "source_file": "b3.csv",
                "source_row": 0,
                "field": "user_id",
                "reason": "fixture",
                "raw_record": '{"user_id": "cust-mallory"}',
                "quarantined_at": INGESTED,
            }
        ]
    )


def write_raw_fixture(settings: Settings) -> None:
    """Create the raw schema of ``settings``' warehouse and append the fixture rows."""
    with Warehouse(settings) as wh:
        wh.ensure_raw_schema()
        wh.append_df(RAW_BATCHES, batches_df())
        wh.append_df(RAW_EVENTS, events_df())
        wh.append_df(RAW_ITEMS, items_df())
        wh.append_df(RAW_QUARANTINE, quarantine_df())


def pseudonym(settings: Settings, original_id: str) -> str:
    """The user_id the marts must carry for ``original_id`` (md5(salt || trimmed id))."""
    return hashlib.md5((settings.user_salt + original_id.strip()).encode()).hexdigest()


# --- served lists and feedback (tests of the online models) ---------------------------------------
# Two responses of model version 1 (champion) on 2024-03-10, one of version 2 (challenger) the same
# day, and feedback: clicks, an add-to-cart and a purchase within the 24 h attribution window, a click
# after it, a double click, an "impression" (seen on screen, never a second impression) and a click
# with an unknown request id (kept, not attributed).
SERVED_AT = datetime(2024, 3, 10, 12, 0)
ONLINE_INGESTED = datetime(2024, 3, 12, 0, 0)
R1, R2, R3 = "a" * 32, "b" * 32, "c" * 32
UNKNOWN = "d" * 32

# (request id, user key, version, variant, kind, [items by rank])
SERVED = [
    (R1, "k-alice", "1", "champion", "personal", ["i1", "i2", "i3"]),
    (R2, None, "1", "champion", "cold_start", ["i1", "i4", "i2"]),
    (R3, "k-bob", "2", "challenger", "personal", ["i3", "i1", "i2"]),
]
# (user, item, type, minutes after SERVED_AT, request id, rank, qty, price)
FEEDBACK = [
    ("cust-alice", "i1", "impression", 0, R1, 1, None, None),
    ("cust-alice", "i1", "click", 1, R1, 1, None, None),
    ("cust-alice", "i1", "click", 2, R1, 1, None, None),  # the same card twice counts once
    ("cust-alice", "i2", "add_to_cart", 3, R1, 2, 1, 3.0),
    ("cust-alice", "i2", "purchase", 5, R1, 2, 2, 3.0),  # revenue 6.0
    ("cust-alice", "i3", "click", 25 * 60, R1, 3, None, None),  # after the 24 h window
    ("anon-1", "i4", "click", 4, R2, 2, None, None),
    ("cust-bob", "i3", "click", 1, R3, 1, None, None),
    ("cust-bob", "i3", "return", 9, R3, 1, 1, 10.0),
    ("cust-bob", "i2", "click", 7, UNKNOWN, 3, None, None),  # unknown request id: kept, flagged
]


def served_df() -> pd.DataFrame:
    rows = []
    for request, user, version, variant, kind, items in SERVED:
        for rank, item in enumerate(items, start=1):
            rows.append({
                "batch_id": "s1", "ingested_at": ONLINE_INGESTED, "source": "served", "source_file": "served.jsonl",
                "source_row": len(rows), "request_id": request, "served_at": SERVED_AT, "user_key": user,
                "model_name": "recops-ranker", "model_version": version, "variant": variant, "kind": kind,
                "context_item_id": None, "k": len(items), "item_id": item, "served_rank": rank,
                "score": 1.0 / rank, "retrievers": "popularity",
            })
    frame = pd.DataFrame(rows)
    # the same log line ingested again by a later batch counts once
    again = frame.iloc[:1].assign(batch_id="s2", source_row=0)
    return pd.concat([frame, again], ignore_index=True)


def feedback_df() -> pd.DataFrame:
    rows = []
    for n, (user, item, kind, minutes, request, rank, qty, price) in enumerate(FEEDBACK):
        rows.append({
            "batch_id": "f1", "ingested_at": ONLINE_INGESTED, "source": "feedback", "source_file": "feedback.jsonl",
            "source_row": n, "user_id": user, "item_id": item, "event_type": kind,
            "event_at": SERVED_AT + pd.Timedelta(minutes=minutes), "session_id": None,
            "quantity": qty, "price_amount": price, "order_id": None, "country": None,
            "request_id": request, "served_rank": rank,
        })
    frame = pd.DataFrame(rows)
    frame[["quantity", "price_amount"]] = frame[["quantity", "price_amount"]].astype("float64")
    frame["served_rank"] = frame["served_rank"].astype("Int64")
    return frame


def online_batches_df() -> pd.DataFrame:
    return pd.DataFrame([
        {"batch_id": b, "source": source, "files": f"{b}.jsonl", "rows_in": 1, "rows_loaded": 1,
         "rows_quarantined": 0, "quarantine_reasons": "{}", "status": "loaded", "status_reason": None,
         "ingested_at": ONLINE_INGESTED}
        for b, source in (("s1", "served"), ("s2", "served"), ("f1", "feedback"))
    ])


def write_online_fixture(settings: Settings) -> None:
    """Append the served-list and feedback rows (after :func:`write_raw_fixture`)."""
    with Warehouse(settings) as wh:
        wh.append_df(RAW_BATCHES, online_batches_df())
        wh.append_df(RAW_SERVED, served_df())
        wh.append_df(RAW_EVENTS, feedback_df())


@dataclass(frozen=True)
class BuiltWarehouse:
    settings: Settings
    result: DbtResult

    def query(self, sql: str, params: list | None = None) -> pd.DataFrame:
        with Warehouse(self.settings, read_only=self.settings.profile == "embedded") as wh:
            return wh.query_df(sql, params)


def build(settings: Settings, *, online: bool = False, **vars: object) -> DbtResult:
    """Write the raw fixture (and with ``online`` the served lists and feedback) into ``settings``'
    warehouse and run ``dbt build`` on it."""
    write_raw_fixture(settings)
    if online:
        write_online_fixture(settings)
    return run_dbt(settings, "build", vars={"cutoff": CUTOFF, **vars})


@pytest.fixture(scope="session")
def duckdb_build(tmp_path_factory: pytest.TempPathFactory) -> BuiltWarehouse:
    """The fixture built once per session on the embedded profile (DuckDB)."""
    settings = Settings(home=tmp_path_factory.mktemp("recops_home"), profile="embedded")
    return BuiltWarehouse(settings, build(settings))


@pytest.fixture(scope="session")
def online_build(tmp_path_factory: pytest.TempPathFactory) -> BuiltWarehouse:
    """The fixture with served lists and feedback, built once per session (DuckDB)."""
    settings = Settings(home=tmp_path_factory.mktemp("online_home"), profile="embedded")
    result = build(settings, online=True)
    return BuiltWarehouse(settings, result)


@pytest.fixture(scope="session")
def raw_fixture() -> SimpleNamespace:
    """The fixture's constants and helpers for the test modules (no imports from conftest)."""
    return SimpleNamespace(
        cutoff=CUTOFF,
        alice=ALICE,
        bob=BOB,
        carol=CAROL,
        mallory=MALLORY,
        original_user_ids=ORIGINAL_USER_IDS,
        pseudonym=pseudonym,
        build=build,
        write=write_raw_fixture,
        write_online=write_online_fixture,
        served=SERVED,
        feedback=FEEDBACK,
        requests=(R1, R2, R3),
        unknown_request=UNKNOWN,
        built=BuiltWarehouse,
    )
