"""Fixtures for the quality tests: a throw-away RECOPS_HOME, a real HTTP webhook receiver and a
real SMTP server on 127.0.0.1, and builders for raw batches and marts in a real DuckDB warehouse."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from recops.settings import Settings


@dataclass
class WebhookReceiver:
    """A real HTTP server: records every POST body; the first ``fail_first`` answer 503."""

    url: str
    bodies: list[dict] = field(default_factory=list)
    attempts: int = 0
    fail_first: int = 0
    status_after: int = 200


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            receiver.attempts += 1
            if receiver.attempts <= receiver.fail_first:
                status = 503
            else:
                status = receiver.status_after
                if status < 300:
                    receiver.bodies.append(json.loads(body))
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok" if status < 300 else b"nope")

        def log_message(self, *args: object) -> None:  # keep pytest output clean
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/recops"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class MailBox:
    host: str
    port: int
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp() -> Iterator[MailBox]:
    """A real SMTP server (aiosmtpd) that keeps every message it receives."""
    box = MailBox(host="127.0.0.1", port=_free_port())

    class Handler:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd hook name
            box.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
            box.messages.append(message_from_bytes(envelope.content, policy=policy.default))
            return "250 Message accepted for delivery"

    controller = Controller(Handler(), hostname=box.host, port=box.port)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Embedded settings under tmp_path; JSON-lines alerts only (no webhook, no e-mail)."""
    return Settings(home=tmp_path / "home", profile="embedded", shop_start_date="2009-01-01")


@pytest.fixture
def alerting_settings(settings: Settings, webhook: WebhookReceiver, smtp: MailBox) -> Settings:
    """Settings with all three channels on: JSON lines, the test webhook, the test SMTP server."""
    return settings.model_copy(
        update={
            "alert_webhook_url": webhook.url,
            "alert_webhook_retries": 2,
            "alert_webhook_timeout_s": 2.0,
            "alert_smtp_host": smtp.host,
            "alert_smtp_port": smtp.port,
            "alert_email_from": "recops@example.test",
            "alert_email_to": ["oncall@example.test", "data@example.test"],
        }
    )
