"""Alerts and the channels that deliver them: JSON-lines file (always), webhook, e-mail.

Shared by every stage (quality gates, the promotion gate, the API's integrity checks, the online
monitor) and the Airflow failure callback; no Great Expectations import here, so the callback
stays quick.
"""

from __future__ import annotations

import fcntl
import json
import logging
import smtplib
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import httpx
from pydantic import BaseModel, Field

from recops.core.settings import Settings

Severity = Literal["error", "warning"]
ERROR: Severity = "error"
WARNING: Severity = "warning"
SEVERITIES: tuple[Severity, ...] = (ERROR, WARNING)


def format_observed(observed: Any) -> str:
    """Observed value for humans: unexpected-row counts read as "4/300 rows (1.33%) e.g. [...]"."""
    if isinstance(observed, dict) and "unexpected_count" in observed:
        text = (
            f"{observed['unexpected_count']}/{observed.get('element_count')} rows "
            f"({observed.get('unexpected_percent', 0):.3g}%)"
        )
        if observed.get("unexpected_rows"):
            return f"{text} e.g. {observed['unexpected_rows']}"
        if observed.get("examples"):
            return f"{text} e.g. {observed['examples']}"
        return text
    if isinstance(observed, dict) and "exception" in observed:
        return f"error: {observed['exception']}"
    return observed if isinstance(observed, str) else repr(observed)


def _short(value: Any, limit: int = 160) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class FailedExpectation(BaseModel):
    """One expectation that was not met, with what was seen and what was allowed."""

    expectation: str = Field(
        description="GX expectation type, e.g. expect_column_values_to_be_between."
    )
    column: str | None = None
    severity: Severity
    observed: Any = None
    threshold: dict[str, Any] = Field(default_factory=dict)
    details: dict[str, Any] = Field(default_factory=dict)
    suite: str | None = Field(
        default=None, description="GX suite (one per validated table or frame)."
    )
    batch_id: str | None = Field(
        default=None, description="Raw stage: the batch the rows came from."
    )
    description: str | None = Field(default=None, description="What the expectation protects.")

    def line(self) -> str:
        """One human-readable line: severity, where, what, observed value and threshold."""
        where = self.suite or "?"
        if self.batch_id:
            where += f" batch={self.batch_id}"
        target = f"({self.column})" if self.column else ""
        threshold = ", ".join(f"{k}={_short(v, 80)}" for k, v in self.threshold.items()) or "-"
        return (
            f"[{self.severity}] {where}: {self.expectation}{target}"
            f" observed={_short(format_observed(self.observed))} threshold={threshold}"
        )



log = logging.getLogger(__name__)

SMTP_TIMEOUT_S = 10.0
TEXT_FAILURE_LINES = 30
"""Failures listed in an alert's text (all of them are in the structured part)."""
_COLORS = {"error": "#d00000", "warning": "#f2c744"}


class Alert(BaseModel):
    """One alert: which run, stage and suite, what failed (observed vs threshold), where to look."""

    alert_id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    kind: Literal["quality_gate", "task_failure", "security", "online_metrics"]
    severity: Severity
    title: str
    run_id: str
    stage: str
    suite: str | None = None
    batch_ids: list[str] = Field(default_factory=list)
    quarantined_batch_ids: list[str] = Field(default_factory=list)
    failures: list[FailedExpectation] = Field(default_factory=list)
    data_docs: str | None = Field(default=None, description="Path or URL of the Data Docs page.")
    dag_id: str | None = None
    task_id: str | None = None
    exception: str | None = None
    log_url: str | None = None
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    def text(self) -> str:
        """Plain text for chat and e-mail: header, context lines, one line per failure."""
        lines = [
            f"[RecOps {self.severity.upper()}] {self.title}",
            f"run: {self.run_id}",
            f"stage: {self.stage}",
        ]
        if self.suite:
            lines.append(f"suite: {self.suite}")
        if self.dag_id:
            lines.append(f"dag: {self.dag_id}  task: {self.task_id}")
        if self.batch_ids:
            lines.append(f"batches: {', '.join(self.batch_ids)}")
        if self.quarantined_batch_ids:
            lines.append(f"quarantined: {', '.join(self.quarantined_batch_ids)}")
        if self.exception:
            lines.append(f"exception: {self.exception}")
        if self.data_docs:
            lines.append(f"data docs: {self.data_docs}")
        if self.log_url:
            lines.append(f"log: {self.log_url}")
        for f in self.failures[:TEXT_FAILURE_LINES]:
            lines.append(f"- {f.line()}")
        if len(self.failures) > TEXT_FAILURE_LINES:
            lines.append(f"... and {len(self.failures) - TEXT_FAILURE_LINES} more (see data docs)")
        return "\n".join(lines)


@runtime_checkable
class Notifier(Protocol):
    """A channel. ``send`` raises when the alert was not delivered."""

    name: str

    def send(self, alert: Alert) -> None: ...


class JsonlNotifier:
    """Appends one JSON object per alert to a file (``settings.alerts_path``)."""

    name = "jsonl"

    def __init__(self, path: Path) -> None:
        self.path = path

    def send(self, alert: Alert) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = alert.model_dump_json() + "\n"
        with self.path.open("a", encoding="utf-8") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                fh.write(line)
                fh.flush()
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


def slack_payload(alert: Alert) -> dict[str, Any]:
    """Slack-compatible body: ``text`` plus an attachment of fields, plus the alert as JSON."""
    fields = [
        {"title": "Run", "value": alert.run_id, "short": True},
        {"title": "Stage", "value": alert.stage, "short": True},
        {"title": "Severity", "value": alert.severity, "short": True},
    ]
    if alert.suite:
        fields.append({"title": "Suite", "value": alert.suite, "short": True})
    if alert.batch_ids:
        fields.append({"title": "Batches", "value": ", ".join(alert.batch_ids), "short": True})
    if alert.quarantined_batch_ids:
        fields.append(
            {"title": "Quarantined", "value": ", ".join(alert.quarantined_batch_ids), "short": True}
        )
    if alert.data_docs:
        fields.append({"title": "Data Docs", "value": alert.data_docs, "short": False})
    if alert.log_url:
        fields.append({"title": "Log", "value": alert.log_url, "short": False})
    if alert.exception:
        fields.append({"title": "Exception", "value": alert.exception[:1500], "short": False})
    for f in alert.failures[:TEXT_FAILURE_LINES]:
        target = f"({f.column})" if f.column else ""
        fields.append(
            {
                "title": f"[{f.severity}] {f.suite}{' batch=' + f.batch_id if f.batch_id else ''}: "
                f"{f.expectation}{target}",
                "value": f"observed: {format_observed(f.observed)[:500]}\n"
                f"threshold: {json.dumps(f.threshold, default=str)[:500]}",
                "short": False,
            }
        )
    return {
        "text": alert.text(),
        "attachments": [
            {
                "color": _COLORS[alert.severity],
                "title": alert.title,
                "fallback": alert.title,
                "fields": fields,
            }
        ],
        "recops_alert": alert.model_dump(mode="json"),
    }


class WebhookNotifier:
    """POSTs :func:`slack_payload` as JSON; retries transport errors, 429 and 5xx."""

    name = "webhook"

    def __init__(self, url: str, *, timeout_s: float, retries: int, backoff_s: float = 0.5) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s

    def send(self, alert: Alert) -> None:
        payload = slack_payload(alert)
        last_error: Exception | None = None
        with httpx.Client(timeout=self.timeout_s) as client:
            for attempt in range(self.retries + 1):
                if attempt:
                    time.sleep(min(self.backoff_s * 2 ** (attempt - 1), 10.0))
                try:
                    response = client.post(self.url, json=payload)
                except httpx.TransportError as exc:
                    last_error = exc
                    continue
                if response.status_code < 300:
                    return
                last_error = RuntimeError(
                    f"webhook answered {response.status_code}: {response.text[:200]}"
                )
                if response.status_code != 429 and response.status_code < 500:
                    break  # the request itself is wrong: retrying will not help
        raise RuntimeError(
            f"webhook {self.url} not delivered after {attempt + 1} attempt(s)"
        ) from last_error


class EmailNotifier:
    """Sends the alert through SMTP: text body plus the alert as a JSON attachment."""

    name = "email"

    def __init__(self, host: str, port: int, sender: str, recipients: Sequence[str]) -> None:
        if not recipients:
            raise ValueError("EmailNotifier needs at least one recipient")
        self.host = host
        self.port = port
        self.sender = sender
        self.recipients = list(recipients)

    def message(self, alert: Alert) -> EmailMessage:
        msg = EmailMessage()
        msg["Subject"] = f"[RecOps {alert.severity.upper()}] {alert.title} - run {alert.run_id}"
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.recipients)
        msg["X-RecOps-Alert-Id"] = alert.alert_id
        msg.set_content(alert.text())
        msg.add_attachment(
            alert.model_dump_json(indent=1).encode(),
            maintype="application",
            subtype="json",
            filename="alert.json",
        )
        return msg

    def send(self, alert: Alert) -> None:
        with smtplib.SMTP(self.host, self.port, timeout=SMTP_TIMEOUT_S) as smtp:
            smtp.send_message(self.message(alert))


def notifiers_from_settings(settings: Settings) -> list[Notifier]:
    """JSON-lines always; the webhook when a URL is set; e-mail when a host and recipients are."""
    channels: list[Notifier] = [JsonlNotifier(settings.alerts_path)]
    if settings.alert_webhook_url:
        channels.append(
            WebhookNotifier(
                settings.alert_webhook_url,
                timeout_s=settings.alert_webhook_timeout_s,
                retries=settings.alert_webhook_retries,
            )
        )
    if settings.alert_smtp_host and settings.alert_email_to:
        channels.append(
            EmailNotifier(
                settings.alert_smtp_host,
                settings.alert_smtp_port,
                settings.alert_email_from,
                settings.alert_email_to,
            )
        )
    return channels


def send_alert(settings: Settings, alert: Alert) -> list[str]:
    """Deliver ``alert`` on every configured channel; return the names of those that took it.

    A channel that fails is logged and skipped: an unreachable chat server must not hide the
    failure being reported (the JSON-lines file still has it).
    """
    delivered: list[str] = []
    for channel in notifiers_from_settings(settings):
        try:
            channel.send(alert)
        except Exception:
            log.exception("alert %s not delivered on %s", alert.alert_id, channel.name)
        else:
            delivered.append(channel.name)
    return delivered


def alert_task_failure(
    settings: Settings,
    *,
    dag_id: str,
    run_id: str,
    task_id: str,
    exception: str,
    log_url: str | None,
    data_docs: str | None = None,
) -> Alert:
    """Alert that a DAG task failed (for Airflow's ``on_failure_callback``); returns the alert."""
    alert = Alert(
        kind="task_failure",
        severity=ERROR,
        title=f"Task {dag_id}.{task_id} failed",
        run_id=run_id,
        stage=task_id,
        dag_id=dag_id,
        task_id=task_id,
        exception=exception,
        log_url=log_url,
        data_docs=data_docs,
    )
    send_alert(settings, alert)
    return alert
