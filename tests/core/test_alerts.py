"""Alert channels against real servers: a JSON-lines file, an HTTP webhook and an SMTP server."""

from __future__ import annotations

import json
import socket
import time

import pytest

from recops.core.alerts import (
    Alert,
    EmailNotifier,
    FailedExpectation,
    JsonlNotifier,
    Notifier,
    WebhookNotifier,
    alert_task_failure,
    notifiers_from_settings,
    send_alert,
)
from recops.core.settings import Settings


def _alert() -> Alert:
    """A quality-gate alert with an error and a warning."""
    return Alert(
        kind="quality_gate",
        severity="error",
        title="Quality gate marts failed: the run stops (1 error(s), 1 warning(s))",
        suite="marts",
        stage="marts",
        run_id="manual__2024-05-01T00:00:00+00:00",
        failures=[
            FailedExpectation(
                expectation="expect_column_values_to_be_between",
                column="return_rate_90d",
                severity="error",
                observed={
                    "unexpected_count": 2,
                    "unexpected_percent": 1.0,
                    "element_count": 200,
                    "examples": [1.5],
                },
                threshold={"min_value": 0, "max_value": 1},
                suite="marts.ml_item_features",
            ),
            FailedExpectation(
                expectation="expect_column_max_to_be_between",
                column="user_features__spend_amount_30d",
                severity="warning",
                observed=0.13,
                threshold={"max_value": 0.1},
                suite="training_set.drift",
            ),
        ],
        data_docs="/srv/quality/gx/uncommitted/data_docs/local_site/validations/x.html",
    )


def test_alert_text_names_everything() -> None:
    alert = _alert()

    assert alert.severity == "error" and alert.kind == "quality_gate"
    assert alert.run_id == "manual__2024-05-01T00:00:00+00:00" and alert.stage == "marts"
    assert [f.severity for f in alert.failures] == ["error", "warning"]
    text = alert.text()
    assert "2/200 rows (1%) e.g. [1.5]" in text
    assert "threshold=min_value=0, max_value=1" in text
    assert "observed=0.13 threshold=max_value=0.1" in text
    assert "data docs: /srv/quality/" in text


def test_channels_from_settings(settings: Settings) -> None:
    assert [n.name for n in notifiers_from_settings(settings)] == ["jsonl"]
    full = settings.model_copy(
        update={
            "alert_webhook_url": "http://127.0.0.1:9/x",
            "alert_smtp_host": "127.0.0.1",
            "alert_email_to": ["a@b.c"],
        }
    )
    channels = notifiers_from_settings(full)
    assert [n.name for n in channels] == ["jsonl", "webhook", "email"]
    assert all(isinstance(n, Notifier) for n in channels)
    # a host without recipients sends no e-mail
    no_rcpt = settings.model_copy(update={"alert_smtp_host": "127.0.0.1"})
    assert [n.name for n in notifiers_from_settings(no_rcpt)] == ["jsonl"]


def test_jsonl_appends_one_line_per_alert(tmp_path) -> None:
    path = tmp_path / "deep" / "alerts.jsonl"
    channel = JsonlNotifier(path)
    first, second = _alert(), _alert()
    channel.send(first)
    channel.send(second)

    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert [x["alert_id"] for x in lines] == [first.alert_id, second.alert_id]
    assert lines[0]["failures"][0]["threshold"] == {"min_value": 0, "max_value": 1}


def test_webhook_retries_server_errors(webhook) -> None:
    webhook.fail_first = 2
    WebhookNotifier(webhook.url, timeout_s=2, retries=2, backoff_s=0.01).send(
        _alert()
    )

    assert webhook.attempts == 3
    body = webhook.bodies[0]
    assert body["text"].startswith("[RecOps ERROR] Quality gate marts failed")
    attachment = body["attachments"][0]
    assert attachment["color"] == "#d00000"
    titles = [f["title"] for f in attachment["fields"]]
    assert titles[:4] == ["Run", "Stage", "Severity", "Suite"]
    assert body["recops_alert"]["failures"][1]["column"] == "user_features__spend_amount_30d"


def test_webhook_gives_up_after_the_retries(webhook) -> None:
    webhook.fail_first = 10
    with pytest.raises(RuntimeError, match="after 3 attempt"):
        WebhookNotifier(webhook.url, timeout_s=2, retries=2, backoff_s=0.01).send(
            _alert()
        )
    assert webhook.attempts == 3


def test_webhook_does_not_retry_a_client_error(webhook) -> None:
    webhook.status_after = 400
    with pytest.raises(RuntimeError, match="after 1 attempt"):
        WebhookNotifier(webhook.url, timeout_s=2, retries=3, backoff_s=0.01).send(
            _alert()
        )
    assert webhook.attempts == 1


def test_webhook_timeout_is_bounded() -> None:
    with socket.socket() as listener:  # accepts the TCP connection, never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
        started = time.perf_counter()
        with pytest.raises(RuntimeError):
            WebhookNotifier(url, timeout_s=0.3, retries=1, backoff_s=0.01).send(
                _alert()
            )
        assert time.perf_counter() - started < 5


def test_email_through_real_smtp(smtp) -> None:
    alert = _alert()
    EmailNotifier(smtp.host, smtp.port, "recops@example.test", ["oncall@example.test"]).send(alert)

    assert smtp.envelopes == [("recops@example.test", ["oncall@example.test"])]
    mail = smtp.messages[0]
    assert mail["Subject"] == (
        "[RecOps ERROR] Quality gate marts failed: the run stops (1 error(s), 1 warning(s))"
        " - run manual__2024-05-01T00:00:00+00:00"
    )
    assert mail["X-RecOps-Alert-Id"] == alert.alert_id
    text = mail.get_body(preferencelist=("plain",)).get_content()
    assert "marts.ml_item_features: expect_column_values_to_be_between(return_rate_90d)" in text
    attached = json.loads(next(mail.iter_attachments()).get_content())
    assert attached["failures"][0]["observed"]["examples"] == [1.5]


def test_send_alert_survives_a_dead_channel(settings: Settings, smtp, read_alerts) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead_port = sock.getsockname()[1]  # closed again: connection refused
    configured = settings.model_copy(
        update={
            "alert_webhook_url": f"http://127.0.0.1:{dead_port}/hook",
            "alert_webhook_retries": 1,
            "alert_smtp_host": smtp.host,
            "alert_smtp_port": smtp.port,
            "alert_email_to": ["oncall@example.test"],
        }
    )
    alert = _alert()

    assert send_alert(configured, alert) == ["jsonl", "email"]
    assert read_alerts(configured)[0]["alert_id"] == alert.alert_id
    assert len(smtp.messages) == 1


def test_task_failure_alert(alerting_settings: Settings, webhook, smtp, read_alerts) -> None:
    alert = alert_task_failure(
        alerting_settings,
        dag_id="recops_pipeline",
        run_id="scheduled__2024-05-01T00:00:00+00:00",
        task_id="train_evaluate",
        exception="ValueError: no positive label in the training window",
        log_url="http://127.0.0.1:8080/dags/recops_pipeline/runs/x/tasks/train_evaluate",
    )

    assert alert.kind == "task_failure" and alert.severity == "error"
    line = read_alerts(alerting_settings)[0]
    assert line["dag_id"] == "recops_pipeline" and line["task_id"] == "train_evaluate"
    assert line["stage"] == "train_evaluate"
    assert line["exception"].startswith("ValueError")
    assert line["log_url"].endswith("/tasks/train_evaluate")
    fields = {f["title"]: f["value"] for f in webhook.bodies[0]["attachments"][0]["fields"]}
    assert fields["Exception"].startswith("ValueError") and fields["Log"] == line["log_url"]
    assert smtp.messages[0]["Subject"].startswith(
        "[RecOps ERROR] Task recops_pipeline.train_evaluate failed"
    )


def test_notifiers_module_does_not_import_great_expectations() -> None:
    import subprocess
    import sys

    code = (
        "import sys, recops.core.alerts, recops.quality.report;"
        "print('great_expectations' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
