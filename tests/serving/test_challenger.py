"""Champion vs challenger live: ``RECOPS_CHALLENGER_TRAFFIC`` sends a stable share of users (by a
hash of their pseudonymised id) to the ``challenger`` alias; the variant is in every response and
in the served-list log, so the online metrics compare the two on the same days."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from recops.core.privacy import pseudonymise
from recops.core.settings import Settings

pytestmark = [pytest.mark.integration]

TOKEN = "challenger-test-token-0123456789"
SHARE = 0.4


@pytest.fixture(scope="module")
def served(shop_home, shop_home_copy) -> dict:
    from recops.serving.main import create_app
    from recops.training.registry import set_alias

    settings = Settings(home=shop_home_copy("challenger"), user_salt=shop_home.settings.user_salt,
                        api_tokens=TOKEN, challenger_traffic=SHARE, model_refresh_seconds=0.0)
    # the challenger is the champion's own version here: routing, not the model, is under test
    set_alias(settings, "challenger", "1", actor="test", reason="challenger routing test")
    users = sorted(pd.read_parquet(shop_home.shop / "events.parquet")["user_id"].astype(str).unique())[:120]
    with TestClient(create_app(settings), headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        first = {u: client.get(f"/recommendations/{u}", params={"k": 5}).json() for u in users}
        again = {u: client.get(f"/recommendations/{u}", params={"k": 5}).json()["variant"] for u in users[:30]}
        health = client.get("/health").json()
    logged = [json.loads(line) for p in sorted(settings.served_dir.glob("served-*.jsonl*"))
              for line in p.read_text().splitlines()]
    return {"settings": settings, "first": first, "again": again, "health": health, "logged": logged}


def test_a_stable_share_of_users_sees_the_challenger(served: dict) -> None:
    salt = served["settings"].user_salt
    expected = {u: "challenger" if int(pseudonymise(u, salt)[:8], 16) / 0x1_0000_0000 < SHARE else "champion"
                for u in served["first"]}
    assert {u: body["variant"] for u, body in served["first"].items()} == expected
    share = sum(v == "challenger" for v in expected.values()) / len(expected)
    assert 0.25 < share < 0.55  # 120 users at 40 %
    assert all(served["first"][u]["variant"] == v for u, v in served["again"].items())  # stable per user
    assert served["health"]["challenger_version"] == "1"


def test_the_served_log_names_the_variant_of_every_response(served: dict) -> None:
    by_request = {line["request_id"]: line["variant"] for line in served["logged"]}
    for body in served["first"].values():
        assert by_request[body["request_id"]] == body["variant"]
