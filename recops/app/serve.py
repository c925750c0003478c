"""``recops serve``: the API on uvicorn workers, each process rebuilt from these settings.

The server replaces this process (``exec``) with its environment passed explicitly: the settings
(``RECOPS_*``) and ``PROMETHEUS_MULTIPROC_DIR``, a fresh folder so ``/metrics`` covers every
worker. It prints where the API listens and where its token is kept (never the token).
"""

from __future__ import annotations

import os
import shutil
import sys

from rich.console import Console

from recops.core.settings import Settings


def uvicorn_command(settings: Settings, host: str, port: int, workers: int) -> list[str]:
    """The uvicorn command line of the API (an app factory: every worker builds its own app)."""
    return [
        sys.executable, "-m", "uvicorn", "--factory", "recops.serving.main:create_app",
        "--host", host, "--port", str(port), "--workers", str(workers),
        "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning",
    ]


def api_env(settings: Settings) -> dict[str, str]:
    """The workers' environment: this one, the settings, a fresh metrics folder."""
    metrics = settings.serving_dir / "metrics"
    shutil.rmtree(metrics, ignore_errors=True)
    metrics.mkdir(parents=True)
    return {**os.environ, **settings.as_env(), "PROMETHEUS_MULTIPROC_DIR": str(metrics)}


def base_url(host: str, port: int) -> str:
    """Where a browser on this machine reaches a server bound to ``host`` (a wildcard address is
    reached through the loopback)."""
    shown = {"0.0.0.0": "127.0.0.1", "::": "[::1]", "": "127.0.0.1"}.get(host, host)
    return f"http://{shown}:{port}"


def page_urls(settings: Settings, host: str | None = None, port: int | None = None) -> dict[str, str]:
    """The demo storefront's and the operations page's addresses."""
    base = base_url(host or settings.api_host, port or settings.api_port)
    return {"storefront": f"{base}/shop", "operations": f"{base}/ops"}


def serve_api(
    settings: Settings, *, host: str | None, port: int | None, workers: int | None, console: Console
) -> None:
    """Print the addresses (API, storefront, operations) and the embedded token, then become the
    uvicorn server."""
    from recops.serving.auth import embedded_token, web_token

    host, port, workers = host or settings.api_host, port or settings.api_port, workers or settings.api_workers
    pages = page_urls(settings, host, port)
    lines = [f"RecOps API on {base_url(host, port)} ({workers} worker(s)); docs at /docs, health at /health"]
    if web_token(settings) is not None:
        lines.append(f"storefront: {pages['storefront']}")
    else:
        lines.append("storefront: off (set RECOPS_WEB_TOKEN to hand browsers a recommend+feedback:web token)")
    lines.append(f"operations: {pages['operations']} (asks for an admin token)")
    console.print("\n".join(lines), highlight=False, soft_wrap=True)
    if not settings.api_tokens:
        embedded_token(settings)  # created (mode 600) on first use; never printed
        console.print(f"admin token (every scope): $(cat {settings.api_tokens_file})", soft_wrap=True, highlight=False)
    command = uvicorn_command(settings, host, port, workers)
    os.execve(command[0], command, api_env(settings))
