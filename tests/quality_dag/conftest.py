"""Fixtures for the DAG-level quality tests: the real ``recops`` CLI in a child process, a real
HTTP webhook receiver and a real SMTP server (aiosmtpd) on 127.0.0.1, shared by a whole module.

The CLI helper is the one of ``tests/integration/conftest.py`` (fixtures there are not visible
from this folder): a fresh process per call, since Airflow reads its configuration once per
process.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

REPO = Path(__file__).resolve().parents[2]


def recops(
    home: Path,
    *args: str,
    timeout: float = 900,
    extra_env: dict[str, str] | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess:
    """Run ``recops ARGS`` with ``RECOPS_HOME=home`` in a fresh process."""
    env = {**os.environ, "RECOPS_HOME": str(home), **(extra_env or {})}
    exe = Path(sys.executable).with_name("recops")
    proc = subprocess.run(
        [str(exe), *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"recops {' '.join(args)} exited {proc.returncode}\n"
            f"{proc.stdout[-6000:]}\n{proc.stderr[-6000:]}"
        )
    return proc


def last_json(stdout: str) -> dict:
    """The JSON document a recops command printed last on stdout (logs may precede it)."""
    start = stdout.rfind("\n{")
    return json.loads(stdout[start + 1 if start >= 0 else 0 :])


@pytest.fixture(scope="session")
def cli() -> Callable[..., subprocess.CompletedProcess]:
    return recops


@pytest.fixture(scope="session")
def parse_json() -> Callable[[str], dict]:
    return last_json


@dataclass
class WebhookReceiver:
    """A real HTTP server on 127.0.0.1 that keeps every JSON body POSTed to it."""

    url: str = ""
    bodies: list[dict] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture(scope="module")
def webhook() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server hook name
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with receiver.lock:
                receiver.bodies.append(json.loads(body))
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok")

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
    """What a real SMTP server on 127.0.0.1 received: parsed messages and their envelopes."""

    host: str
    port: int
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def smtp() -> Iterator[MailBox]:
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
