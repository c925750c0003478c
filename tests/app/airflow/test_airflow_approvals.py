"""Against a running Airflow (``recops airflow up``), through its REST API as the UI uses it:
trigger ``recops_pipeline`` with params, wait for the approval, answer it, and check where the
MLflow aliases went; a gate failure; Ctrl-C; a rejection; a rollback picked up by a running API.

Two full pipeline runs serve the module (each costs ~3 minutes on two cores); the other scenarios
clear tasks of those runs (the UI's "Clear" button):

1. run ``first``: the first model passes the gate, waits in Required Actions (screenshot), Approve.
2. clear ``register_model`` in ``first``: the same booster registered again equals the champion,
   so the default gate (min NDCG@10 gain 0) rejects it without asking, and alerts.
3. Ctrl-C, and a restart with a permissive gate (``RECOPS_PROMOTION_MIN_NDCG_GAIN=-1``).
4. run ``second``: its candidate passes, Reject.
5. clear ``promotion_gate`` in ``second``: the same question is asked again, Approve.
6. the ``recops_rollback`` DAG and ``recops rollback``, followed by a running API.
7. clear ``register_model`` in ``second``: Airflow would show the earlier request for the new
   candidate (apache/airflow#72155), so the approval task refuses to ask.

The tests run in file order and build on each other.
"""

from __future__ import annotations

import json
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from recops.core.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.heavy, pytest.mark.timeout(900)]

DAG = "recops_pipeline"
ROLLBACK_DAG = "recops_rollback"
RUN = "first"
RUN2 = "second"
APPROVE = "approve_model"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("airflow-home")


@pytest.fixture(scope="module")
def settings(home: Path) -> Settings:
    import os

    return Settings(home=home, user_salt=os.environ["RECOPS_USER_SALT"])


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from recops.ingestion.shop_files import write_shop

    return write_shop(tmp_path_factory.mktemp("shop"), users=300, items=150, days=90, seed=42)


@pytest.fixture(scope="module")
def airflow(home: Path, airflow_tools):
    up = airflow_tools.AirflowUp(home, airflow_tools.free_port())
    up.start()
    up.rest.wait_for_dags({DAG, ROLLBACK_DAG})
    yield up
    up.stop()


@pytest.fixture(scope="module")
def flow() -> dict:
    """What the scenarios hand on to each other."""
    return {}


def aliases(settings: Settings) -> dict[str, str | None]:
    from recops.training.approval import champion_summary

    return champion_summary(settings)


def version_tags(settings: Settings, version: str) -> dict[str, str]:
    from recops.training.registry import client

    return client(settings).get_model_version(settings.model_name, version).tags


def alerts(settings: Settings) -> list[dict]:
    path = settings.alerts_path
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def new_candidate(airflow, run_id: str) -> None:
    """Register the run's booster again as a new version and re-run the promotion tasks."""
    cleared = airflow.rest.clear(DAG, run_id, ["register_model"])
    assert {"register_model", "promotion_gate", APPROVE, "promote_champion"} <= set(cleared)


def logical_date(shop: dict, hours: int = 0) -> str:
    """The day after the shop's newest event (features are materialized up to it)."""
    newest = datetime.fromisoformat(shop["newest_event_at"]).astimezone(UTC)
    day_after = datetime.combine(newest.date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    return (day_after + timedelta(hours=hours)).isoformat()


def test_trigger_form_params_and_bad_values_refused(airflow, airflow_tools) -> None:
    rest = airflow.rest
    params = rest.http.get(f"/dags/{DAG}/details").json()["params"]
    assert params["auto_promote"]["value"] is False
    for name in ("cutoff", "source", "data_path", "auto_promote", "approvers"):
        assert params[name]["description"], name
        assert params[name]["schema"].get("title"), name
    assert params["cutoff"]["schema"]["format"] == "date"
    bad = [
        {"source": "excel-sheet"},
        {"cutoff": "last tuesday"},
        {"auto_promote": "yes please"},
        {"approvers": "admin"},
    ]
    for conf in bad:
        response = rest.trigger(DAG, conf=conf)
        assert response.status_code == 400, (conf, response.text)
        assert "Invalid input for param" in response.json()["detail"], response.text
    assert rest.http.get(f"/dags/{DAG}/dagRuns").json()["total_entries"] == 0


def test_approval_waits_in_the_ui_then_approve_promotes(
    airflow, shop: dict, settings: Settings, flow: dict, needs_service, airflow_tools
) -> None:
    rest = airflow.rest
    started = time.monotonic()
    response = rest.trigger(
        DAG,
        run_id=RUN,
        logical_date=logical_date(shop),
        conf={
            "source": "events",
            "data_path": shop["events"],
            "catalog_path": shop["catalog"],
            "cutoff": None,
            "auto_promote": False,
            "approvers": ["admin"],
        },
    )
    assert response.status_code == 200, response.text
    states = rest.wait(DAG, RUN, task_id=APPROVE, task_state="awaiting_input", timeout_s=720)
    flow["pipeline_s"] = round(time.monotonic() - started)
    assert states["promotion_gate"] == "success" and states["needs_approval"] == "success"
    assert states["promote_champion"] is None and states["record_rejection"] is None

    request = rest.hitl(DAG, RUN, APPROVE)
    assert request["subject"] == f"Promote {settings.model_name} v1 to champion? (current: no champion yet)"
    assert request["options"] == ["Approve", "Reject"] and request["defaults"] == ["Reject"]
    assert request["assigned_users"] == [{"id": "admin", "name": "admin"}]
    assert "| ndcg@10 (all users) |" in request["body"] and "cold users" in request["body"]
    assert "#/experiments/" in request["body"] and "/runs/" in request["body"]
    assert request["response_received"] is False
    assert aliases(settings)["challenger"] == "1" and aliases(settings)["champion"] is None

    binary = airflow_tools.chromium_path()
    needs_service("chromium", binary is not None, "no chromium binary")
    with airflow_tools.Browser(binary) as browser:
        browser.login_airflow(airflow.rest.url, airflow.rest.username, airflow.rest.password)
        browser.goto(f"{airflow.rest.url}/dags/{DAG}/runs/{RUN}/tasks/{APPROVE}/required_actions")
        text = browser.wait_for_text(request["subject"], timeout_s=90)
        browser.wait_for_text("ndcg@10 heavy buyers", timeout_s=30)
        time.sleep(1)  # let the grid finish painting
        shot = browser.screenshot(airflow_tools.ARTIFACTS / "airflow-approval-pending.png")
        (airflow_tools.ARTIFACTS / "airflow-approval-pending.txt").write_text(browser.text())
        text = browser.text()
    assert shot.stat().st_size > 10_000
    assert "Awaiting Input" in text and "Required Action" in text
    for expected in (request["subject"], "Approve", "Reject", "Reason", APPROVE, "promotion_gate"):
        assert expected in text, expected

    answer = airflow.answer(DAG, RUN, APPROVE, "Approve", {"reason": "beats nothing, ships"})
    assert answer.status_code == 200, answer.text
    states = rest.wait(DAG, RUN, timeout_s=300)
    assert rest.run(DAG, RUN)["state"] == "success", rest.failures(DAG, RUN)
    assert states[APPROVE] == "success" and states["promote_champion"] == "success"
    assert states["record_rejection"] == "skipped" and states["promotion_outcome"] == "success"
    assert aliases(settings) == {"champion": "1", "previous": None, "challenger": None, "rejected": None}
    tags = version_tags(settings, "1")
    assert tags["alias.champion.by"] == "admin"
    assert tags["alias.champion.reason"] == "approved in Airflow by admin: beats nothing, ships"
    assert tags["alias.champion.origin"] == f"{DAG}/{RUN}"
    assert tags["alias.champion.from_run"] == tags["recops.run_id"]
    for key in ("recops.cutoff", "recops.data_interval", "recops.dbt", "recops.gx", "recops.feature_service",
                "metric.ndcg_at_10", "metric.slice.cold_users.ndcg_at_10", "recops.gate"):
        assert tags.get(key), key
    assert rest.xcom(DAG, RUN, "promotion_outcome")["champion"] == "1"


def test_candidate_failing_the_gate_is_rejected_without_asking(
    airflow, settings: Settings, airflow_tools
) -> None:
    rest = airflow.rest
    alerts_before = len(alerts(settings))
    new_candidate(airflow, RUN)
    states = rest.wait(DAG, RUN, timeout_s=300)
    assert rest.run(DAG, RUN)["state"] == "success", rest.failures(DAG, RUN)
    assert states["promotion_gate"] == "success" and states["needs_approval"] == "success"
    for skipped in (APPROVE, "promote_champion", "record_rejection", "promotion_outcome"):
        assert states[skipped] == "skipped", (skipped, states)
    assert rest.xcom(DAG, RUN, "promotion_gate", key="action") == "rejected"

    assert aliases(settings) == {"champion": "1", "previous": None, "challenger": None, "rejected": "2"}
    tags = version_tags(settings, "2")
    assert tags["recops.decision"] == "rejected" and tags["recops.gate"] == "failed"
    assert tags["recops.decision_reason"].startswith("promotion gate failed: overall ndcg@10")
    assert "gain > 0.0000: FAILED" in tags["recops.decision_reason"]
    assert tags["alias.rejected.by"] == "recops-pipeline"

    new_alerts = alerts(settings)[alerts_before:]
    assert len(new_alerts) == 1, new_alerts
    alert = new_alerts[0]
    assert alert["stage"] == "promotion_gate" and alert["run_id"] == RUN and alert["severity"] == "error"
    assert "v2" in alert["title"] and "champion v1 stays" in alert["title"]
    assert [f["column"] for f in alert["failures"]] == ["overall"]
    assert alert["failures"][0]["observed"]["delta"] == pytest.approx(0.0)


def test_ctrl_c_stops_airflow_and_a_restart_applies_new_gate_settings(airflow, airflow_tools) -> None:
    assert airflow.stop() == 0
    assert not airflow.endpoint_file.exists()
    assert not airflow_tools.port_open(airflow.port)
    # permissive gate: an unchanged model now passes, so the approvers are asked
    rest = airflow.start(
        RECOPS_PROMOTION_MIN_NDCG_GAIN="-1",
        RECOPS_PROMOTION_MAX_REGRESSION_COLD_USERS="1",
        RECOPS_PROMOTION_MAX_REGRESSION_LIGHT_BUYERS="1",
        RECOPS_PROMOTION_MAX_REGRESSION_HEAVY_BUYERS="1",
    )
    rest.wait_for_dags({DAG, ROLLBACK_DAG})
    assert rest.run(DAG, RUN)["state"] == "success"


def test_rejection_keeps_the_champion_and_records_why(
    airflow, shop: dict, settings: Settings, flow: dict, airflow_tools
) -> None:
    rest = airflow.rest
    started = time.monotonic()
    response = rest.trigger(
        DAG, run_id=RUN2, logical_date=logical_date(shop, hours=1), conf={"auto_promote": False}
    )
    assert response.status_code == 200, response.text
    rest.wait(DAG, RUN2, task_id=APPROVE, task_state="awaiting_input", timeout_s=720)
    flow["second_pipeline_s"] = round(time.monotonic() - started)
    request = rest.hitl(DAG, RUN2, APPROVE)
    assert request["subject"] == f"Promote {settings.model_name} v3 to champion? (current: v1)"
    assert "| candidate v3 | champion v1 |" in request["body"]
    assert request["assigned_users"] == []  # no approvers given: anyone may answer
    assert aliases(settings)["challenger"] == "3"
    flow["second_request"] = (request["subject"], request["body"])

    answer = airflow.answer(DAG, RUN2, APPROVE, "Reject", {"reason": "hold until the sale ends"})
    assert answer.status_code == 200, answer.text
    states = rest.wait(DAG, RUN2, timeout_s=300)
    assert rest.run(DAG, RUN2)["state"] == "success", rest.failures(DAG, RUN2)
    assert states["promote_champion"] == "skipped" and states["record_rejection"] == "success"
    assert states["promotion_outcome"] == "success"
    assert aliases(settings) == {"champion": "1", "previous": None, "challenger": None, "rejected": "3"}
    tags = version_tags(settings, "3")
    assert tags["recops.decision"] == "rejected"
    assert tags["recops.decision_reason"] == "rejected in Airflow by admin: hold until the sale ends"
    assert tags["alias.rejected.by"] == "admin" and tags["alias.rejected.origin"] == f"{DAG}/{RUN2}"
    assert "alias.champion.at" not in tags


def test_asked_again_then_approve_moves_champion_and_keeps_previous(
    airflow, settings: Settings, flow: dict, airflow_tools
) -> None:
    rest = airflow.rest
    cleared = rest.clear(DAG, RUN2, ["promotion_gate"])
    assert "register_model" not in cleared and APPROVE in cleared
    rest.wait(DAG, RUN2, task_id=APPROVE, task_state="awaiting_input", timeout_s=300)
    request = rest.hitl(DAG, RUN2, APPROVE)
    assert (request["subject"], request["body"]) == flow["second_request"]  # the same question
    assert request["response_received"] is False
    assert airflow.answer(DAG, RUN2, APPROVE, "Approve", {"reason": None}).status_code == 200
    rest.wait(DAG, RUN2, timeout_s=300)
    assert rest.run(DAG, RUN2)["state"] == "success", rest.failures(DAG, RUN2)
    assert aliases(settings) == {"champion": "3", "previous": "1", "challenger": None, "rejected": None}
    assert version_tags(settings, "3")["alias.champion.reason"] == "approved in Airflow by admin"
    assert version_tags(settings, "3")["recops.decision"] == "promoted"
    assert version_tags(settings, "1")["alias.previous.reason"] == "replaced by v3"


def _serving_version(url: str) -> str | None:
    return httpx.get(f"{url}/health", timeout=10).json()["model_version"]


def _wait_serving(url: str, version: str, timeout_s: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if _serving_version(url) == version:
            return time.monotonic() - started
        time.sleep(0.5)
    raise AssertionError(f"the API still serves v{_serving_version(url)}, not v{version}, after {timeout_s} s")


def test_rollback_dag_and_cli_reach_a_running_api(
    airflow, settings: Settings, home: Path, flow: dict, airflow_tools
) -> None:
    rest = airflow.rest
    refresh_s = 2
    port = airflow_tools.free_port()
    api = subprocess.Popen(
        [airflow_tools.RECOPS, "serve", "--port", str(port)],
        env=airflow_tools.recops_env(home, RECOPS_MODEL_REFRESH_SECONDS=str(refresh_s)),
        stdout=(home / "api.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while not airflow_tools.port_open(port):
            assert api.poll() is None and time.monotonic() < deadline, (home / "api.log").read_text()[-3000:]
            time.sleep(0.5)
        assert _serving_version(url) == "3"

        assert rest.trigger(ROLLBACK_DAG, conf={"version": "v1"}).status_code == 400
        response = rest.trigger(ROLLBACK_DAG, conf={"reason": "v3 hurts conversion"})
        assert response.status_code == 200, response.text
        run_id = response.json()["dag_run_id"]
        states = rest.wait(ROLLBACK_DAG, run_id, timeout_s=180)
        assert rest.run(ROLLBACK_DAG, run_id)["state"] == "success", states
        assert aliases(settings)["champion"] == "1" and aliases(settings)["previous"] == "3"
        tags = version_tags(settings, "1")
        assert tags["alias.champion.reason"] == "rollback from v3: v3 hurts conversion"
        assert tags["alias.champion.by"] == "admin"
        assert tags["alias.champion.origin"] == f"{ROLLBACK_DAG}/{run_id}"
        flow["api_pickup_dag_s"] = round(_wait_serving(url, "1", timeout_s=refresh_s + 30), 1)

        cli = subprocess.run(
            [airflow_tools.RECOPS, "rollback", "--reason", "false alarm"],
            env=airflow_tools.recops_env(home), capture_output=True, text=True, check=False,
        )
        assert cli.returncode == 0, cli.stderr
        move = json.loads(cli.stdout)
        assert move["alias"] == "champion" and move["version"] == "3" and move["origin"] == "cli"
        assert aliases(settings)["champion"] == "3" and aliases(settings)["previous"] == "1"
        flow["api_pickup_cli_s"] = round(_wait_serving(url, "3", timeout_s=refresh_s + 30), 1)

        refused = subprocess.run(
            [airflow_tools.RECOPS, "rollback", "--to", "2"], env=airflow_tools.recops_env(home), capture_output=True, text=True, check=False
        )
        assert refused.returncode == 1 and "never served" in refused.stderr
    finally:
        api.terminate()
        api.wait(timeout=30)

    from recops.training.registry import alias_history

    moves = [(m["alias"], m["version"], m["action"], m["origin"].split("/")[0]) for m in alias_history(settings)]
    assert moves[-4:] == [
        ("champion", "1", "set", ROLLBACK_DAG),
        ("previous", "3", "set", ROLLBACK_DAG),
        ("champion", "3", "set", "cli"),
        ("previous", "1", "set", "cli"),
    ]


def test_a_changed_question_is_not_asked_with_the_old_request(
    airflow, settings: Settings, flow: dict, airflow_tools
) -> None:
    rest = airflow.rest
    alerts_before = len(alerts(settings))
    new_candidate(airflow, RUN2)  # v4: a new candidate, but Airflow keeps the v3 request
    states = rest.wait(DAG, RUN2, timeout_s=300)
    assert rest.run(DAG, RUN2)["state"] == "failed", states
    assert states["promotion_gate"] == "success" and states[APPROVE] == "failed"
    assert states["promote_champion"] == "upstream_failed"
    assert aliases(settings)["champion"] == "3" and aliases(settings)["challenger"] == "4"
    failure = [a for a in alerts(settings)[alerts_before:] if a["kind"] == "task_failure"]
    assert failure and failure[-1]["task_id"] == APPROVE
    assert "StaleApprovalRequest" in failure[-1]["exception"]
    print("timings (s):", {k: v for k, v in flow.items() if k != "second_request"})
