"""``make demo``: a small synthetic shop through the whole pipeline, then the API, briefly.

It shows, rather than dumps: one line per pipeline stage with its time and key figure, then three
users' recommendation tables, and ends with the storefront and operations pages' addresses and
the command that keeps them up (``recops serve``); within 80 lines in all. Tool logs (Airflow,
dbt, MLflow, uvicorn) go to ``$RECOPS_HOME/logs/``, whose paths are printed.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx
import pandas as pd
from rich.console import Console
from rich.table import Table

from recops.app.run import RunRequest, new_log_path, run_pipeline
from recops.app.serve import page_urls
from recops.core.constants import Source
from recops.core.settings import Settings

DEMO_SEED = 42
COLD_VISITOR = "new-visitor-0001"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def demo_users(events: pd.DataFrame) -> list[str]:
    """A heavy buyer, a light buyer and an unknown visitor (cold start)."""
    buys = events[events["event_type"] == "purchase"]["user_id"].astype(str).value_counts()
    return [buys.index[0], buys.index[len(buys) // 2], COLD_VISITOR]


def wait_for_api(url: str, timeout_s: float = 120.0) -> dict:
    """Poll ``/health`` until the API answers."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            resp = httpx.get(f"{url}/health", timeout=2.0)
            if resp.status_code == 200:
                return resp.json()
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"the API at {url} did not answer within {timeout_s:.0f} s")


def recommendation_table(user: str, body: dict) -> Table:
    """One user's top-k as a table that never wraps (one line per item)."""
    title = f"user {user} (model v{body['model_version']}" + (
        ", cold-start fallback)" if body["fallback"] else ")"
    )
    table = Table(title=title, title_justify="left")
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("item", no_wrap=True)
    table.add_column("title", no_wrap=True, max_width=28, overflow="ellipsis")
    table.add_column("score", justify="right", no_wrap=True)
    table.add_column("reasons", no_wrap=True, max_width=44, overflow="ellipsis")
    for rec in body["items"]:
        table.add_row(
            str(rec["rank"]), rec["item_id"], rec.get("title") or "", f"{rec['score']:.3f}",
            "; ".join(rec.get("reasons") or []),
        )
    return table


def run_demo(settings: Settings, *, users: int, items: int, days: int, console: Console | None = None) -> None:
    """Generate a shop, run the pipeline, start the API, print top-10 for three users, stop."""
    from recops.ingestion.shop_files import write_shop

    console = console or Console()
    shop = settings.home / "demo-shop"
    info = write_shop(shop, users=users, items=items, days=days, seed=DEMO_SEED, fmt="parquet")
    console.print(
        f"[bold]1/3[/bold] synthetic shop: {info['event_rows']:,} events, {info['users']:,} users, "
        f"{info['items']:,} items in {shop}", highlight=False,
    )
    console.print("[bold]2/3[/bold] recops_pipeline (Airflow dag.test on the embedded default)")
    request = RunRequest(
        source=Source.events.value,
        data_path=shop / "events.parquet",
        catalog_path=shop / "catalog.parquet",
        auto_promote=True,
    )
    result = run_pipeline(settings, request, console=console)
    console.print(f"    run {result['state']}; tool logs: {result['log']}", highlight=False)
    console.print("[bold]3/3[/bold] the API answers (top-10 for three users)")
    show_recommendations(settings, shop, console)


def show_recommendations(settings: Settings, shop, console: Console) -> None:
    """Start the API on a free port (its log under ``$RECOPS_HOME/logs``), print three users'
    recommendation tables, stop it."""
    from recops.serving.auth import embedded_token

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = new_log_path(settings, "api")
    env = {**os.environ, **settings.as_env()}
    token = settings.api_tokens.split(",")[0].split(":")[0] if settings.api_tokens else embedded_token(settings)
    headers = {"Authorization": f"Bearer {token}"}
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "recops.serving.main:create_app",
           "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for_api(url)
            events = pd.read_parquet(shop / "events.parquet", columns=["user_id", "event_type"])
            for user in demo_users(events):
                body = httpx.get(f"{url}/recommendations/{user}", params={"k": 10}, headers=headers, timeout=30).json()
                console.print(recommendation_table(user, body))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    console.print(f"API log: {log_path} (`make airflow` opens the Airflow UI)", highlight=False, soft_wrap=True)
    print_pages(settings, console)


def print_pages(settings: Settings, console: Console) -> None:
    """The demo's last lines: the storefront and operations pages, and the command that serves them."""
    urls = page_urls(settings)
    console.print(
        f"storefront: {urls['storefront']}\n"
        f"operations: {urls['operations']} (admin token: recops serve says where it is)\n"
        "keep them up: [bold]uv run recops serve[/bold]",
        highlight=False, soft_wrap=True,
    )
