"""Bad input on every endpoint: schemathesis generates requests from the API's own OpenAPI schema
(valid ones and, by mutation, invalid ones) and sends them to ``recops serve`` running on a copy of
the shop home, with the home's admin token. No answer may be a server error, and every refusal
(4xx) must say what was wrong. Without a token, every data endpoint answers 401."""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

pytestmark = [pytest.mark.integration]

PUBLIC = {"/health", "/shop", "/ops"}  # pages and the liveness probe; their data needs a token
EXAMPLES = 30  # per operation and generation mode (fewer where fewer inputs exist)


@pytest.fixture(scope="module")
def served(shop_home_copy, running_api):
    return running_api(shop_home_copy("fuzz"))


def _fuzz(operation, mode, token: str, tried: dict[str, int]) -> None:
    """Send ``EXAMPLES`` generated requests of one operation; fail on a 5xx or a silent 4xx."""

    @hypothesis_settings(
        max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case) -> None:
        response = case.call(headers={"Authorization": f"Bearer {token}"}, timeout=30)
        shown = f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]}"
        case.validate_response(response, checks=[not_a_server_error])
        assert response.status_code < 500, shown
        if 400 <= response.status_code < 500:
            detail = response.json().get("detail")
            assert isinstance(detail, str) and len(detail) > 5, shown
        key = f"{mode.value} {case.method} {case.path} {response.status_code // 100}xx"
        tried[key] = tried.get(key, 0) + 1

    try:
        run()
    except Unsatisfiable:  # an operation without parameters or body has no invalid input
        if mode is GenerationMode.POSITIVE:
            raise
        tried[f"{mode.value} {operation.method.upper()} {operation.path} none possible"] = 0


def test_no_server_error_and_every_refusal_says_why(served) -> None:
    schema = schemathesis.openapi.from_url(f"{served.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 9, [op.label for op in operations]
    tried: dict[str, int] = {}
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _fuzz(operation, mode, served.token, tried)
    print("schemathesis requests (mode, operation, status class):", dict(sorted(tried.items())))  # -s
    for operation in operations:  # every operation was called with valid input
        assert any(k.startswith(f"positive {operation.method.upper()} {operation.path} ") for k in tried), operation.label
    refused = sum(n for k, n in tried.items() if k.endswith(" 4xx"))
    assert refused >= 50 and sum(tried.values()) >= 150, tried


def test_without_a_token_every_data_endpoint_answers_401(served) -> None:
    spec = httpx.get(f"{served.url}/openapi.json", timeout=30).json()
    checked = []
    for path, methods in spec["paths"].items():
        url = served.url + path.replace("{user_id}", "13085").replace("{item_id}", "I0001")
        for method in methods:
            if path in PUBLIC:
                continue
            body = {"events": [{"user_id": "13085", "item_id": "I0001", "event_type": "click"}]}
            response = httpx.request(method.upper(), url, json=body if method == "post" else None, timeout=30)
            assert response.status_code == 401, (method, path, response.status_code, response.text[:200])
            assert response.headers.get("www-authenticate") == "Bearer" and response.json()["detail"]
            checked.append(f"{method.upper()} {path}")
    assert {"GET /recommendations/{user_id}", "POST /feedback", "GET /metrics", "GET /ops/data"} <= set(checked)
