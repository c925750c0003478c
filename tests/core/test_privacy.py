"""Personal data helpers: ids as stored, finding a customer in a quarantined record, dropping a
customer's rows from a Parquet file."""

from __future__ import annotations

import pandas as pd
import pytest

from recops.core.privacy import normalise_user_id, record_mentions, scrub_parquet


def test_ids_are_normalised_like_ingestion_and_staging() -> None:
    assert normalise_user_id(" 12345.0 ") == "12345"
    assert normalise_user_id(12345.0) == "12345"
    assert normalise_user_id("a  b ") == "a b"
    assert normalise_user_id("12345.5") == "12345.5"


@pytest.mark.parametrize(
    ("record", "hit"),
    [
        ('{"Invoice": "489434", "Customer ID": 13085.0, "Price": 0.0}', True),  # II layout
        ('{"InvoiceNo": "536365", "CustomerID": "13085", "UnitPrice": 0}', True),  # original
        ('{"user_id": "13085", "item_id": "1"}', True),
        ('{"user": " 13085 ", "item_id": "1"}', True),
        ('{"Customer ID": 130851.0, "Price": 0.0}', False),  # a longer id
        ('{"Customer ID": 13086.0, "StockCode": "13085"}', False),  # the id in another field
        ('{"Customer ID": null, "Invoice": "13085"}', False),
        ('["489434", "85048", "13085", "x"]', True),  # broken CSV line: fields untrusted
        ('["489434", "850481", "113085"]', False),
        ('"{\\"user_id\\": \\"13085\\", \\"item_id\\": "', True),  # a malformed JSON line
        ('"{\\"user_id\\": \\"130850\\", \\"item_id\\": "', False),
        (None, False),
    ],
)
def test_quarantine_records_match_the_id_field_exactly(record: str | None, hit: bool) -> None:
    assert record_mentions(record, "13085") is hit


def test_parquet_frames_lose_only_the_users_rows(tmp_path) -> None:
    path = tmp_path / "training_set.parquet"
    pd.DataFrame({"user_id": ["k1", "k2", "k1", None], "item_id": ["a", "b", "c", "d"]}).to_parquet(
        path
    )
    assert scrub_parquet(path, {"k1"}) == 2
    assert pd.read_parquet(path).to_dict("list") == {"user_id": ["k2", None], "item_id": ["b", "d"]}
    assert scrub_parquet(path, {"k1"}) == 0
    items = tmp_path / "items.parquet"
    pd.DataFrame({"item_id": ["k1"]}).to_parquet(items)
    assert scrub_parquet(items, {"k1"}) == 0




# --- the salt of the pseudonyms ------------------------------------------------------------------
SALT_OF_HOME = (
    "import sys\n"
    "from recops.core.privacy import user_salt\n"
    "from recops.core.settings import Settings\n"
    "print(user_salt(Settings(home=sys.argv[1], user_salt=None)))\n"
)


def _salts_in_processes(home, n: int) -> set[str]:
    """What ``n`` fresh processes, started together on one home, each take as its salt."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "RECOPS_USER_SALT"}
    procs = [
        subprocess.Popen([sys.executable, "-c", SALT_OF_HOME, str(home)], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(n)
    ]
    outputs = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    return set(outputs)


def test_an_embedded_home_generates_its_own_secret_salt_once(tmp_path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    salts = _salts_in_processes(first, 4)
    assert len(salts) == 1, salts  # every process of a home agrees, whoever created the file
    (salt,) = salts
    assert len(salt) >= 40 and salt != "recops-dev-salt"
    assert (first / "user_salt").read_text().strip() == salt
    assert (first / "user_salt").stat().st_mode & 0o777 == 0o600
    assert _salts_in_processes(first, 1) == {salt}  # read back, not generated again
    assert _salts_in_processes(second, 1) != {salt}  # another home, another secret


def test_a_set_salt_wins_and_writes_nothing(tmp_path) -> None:
    from recops.core.privacy import user_salt
    from recops.core.settings import Settings

    assert user_salt(Settings(home=tmp_path, user_salt="shop-secret-123")) == "shop-secret-123"
    assert not (tmp_path / "user_salt").exists()


def test_a_home_built_with_the_old_fixed_salt_keeps_it(tmp_path) -> None:
    from recops.core.dbt import dbt_state_dir
    from recops.core.privacy import LEGACY_SALT
    from recops.core.settings import Settings

    dbt_state_dir(Settings(home=tmp_path)).mkdir(parents=True)  # dbt ran here, but no salt file
    assert _salts_in_processes(tmp_path, 1) == {LEGACY_SALT}


def test_a_new_home_with_a_warehouse_but_no_dbt_run_yet_gets_a_random_salt(tmp_path) -> None:
    """Ingestion creates the warehouse before dbt first asks for the salt: that is a new home."""
    from recops.core.privacy import LEGACY_SALT

    (tmp_path / "warehouse.duckdb").write_bytes(b"")
    assert _salts_in_processes(tmp_path, 1) != {LEGACY_SALT}


def test_production_refuses_to_start_without_a_salt() -> None:
    from pydantic import ValidationError

    from recops.core.settings import Settings

    with pytest.raises(ValidationError, match="RECOPS_USER_SALT is required on the production profile"):
        Settings(profile="production", user_salt=None)
