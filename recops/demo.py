"""``make demo``: a small synthetic shop through the whole pipeline, then the API, briefly."""

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

from recops.settings import Settings

console = Console()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def demo_users(events: pd.DataFrame) -> list[str]:
    """A heavy buyer, a light buyer and an unknown visitor (cold start)."""
    buys = events[events["event_type"] == "purchase"]["user_id"].astype(str).value_counts()
    return [buys.index[0], buys.index[len(buys) // 2], "new-visitor-0001"]


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


def run_demo(settings: Settings, *, users: int, items: int, days: int) -> None:
    """Generate a shop, run the pipeline, start the API, print top-10 for three users, stop."""
    from recops.ingestion.synthetic import write_shop
    from recops.pipeline import run_pipeline

    shop = settings.home / "demo-shop"
    console.rule("1/3 generate a synthetic shop")
    info = write_shop(shop, users=users, items=items, days=days, seed=42, fmt="parquet")
    console.print(info)
    console.rule("2/3 run recops_pipeline (Airflow dag.test on the embedded default)")
    result = run_pipeline(
        settings,
        source="events",
        data_path=str(shop / "events.parquet"),
        catalog_path=str(shop / "catalog.parquet"),
        auto_promote=True,
    )
    console.print({k: result[k] for k in ("run_id", "state")})
    console.rule("3/3 serve and ask for recommendations")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "RECOPS_HOME": str(settings.home)}
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "recops.serving.main:create_app",
           "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    proc = subprocess.Popen(cmd, env=env)
    try:
        health = wait_for_api(url)
        console.print(f"API at {url}: {health}")
        events = pd.read_parquet(shop / "events.parquet", columns=["user_id", "event_type"])
        for user in demo_users(events):
            body = httpx.get(f"{url}/recommendations/{user}", params={"k": 10}, timeout=30).json()
            table = Table(title=f"user {user} (model v{body['model_version']}"
                          + (", cold-start fallback)" if body["fallback"] else ")"))
            for col in ("rank", "item", "title", "score", "reasons"):
                table.add_column(col)
            for rec in body["items"]:
                table.add_row(str(rec["rank"]), rec["item_id"], rec.get("title") or "",
                              f"{rec['score']:.4f}", "; ".join(rec["reasons"]))
            console.print(table)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    console.print("demo done: `recops serve` keeps the API up; `make airflow` opens the Airflow UI.")
