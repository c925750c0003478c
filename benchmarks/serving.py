"""Serving benchmark: ``recops serve --workers 2`` driven by ``wrk`` (Debian's) over a realistic mix.

    uv run python benchmarks/serving.py                 # trains a home on Online Retail II first
    uv run python benchmarks/serving.py --home PATH     # a home where `recops run` finished
    uv run python benchmarks/serving.py --quick         # small synthetic shop, short runs (CI)

The mix: 80 % known users drawn at random, 15 % unknown visitors with a context item, 5 %
item-to-item. Printed: the largest throughput at 16 connections (cache on, and off), latency
percentiles at a fixed ~200 requests/s (cache off: every request reads, scores and explains), the
same for cold visitors and item-to-item alone, and errors. The fixed rate comes from wrk's
``delay()`` hook (each connection waits between requests); the rate reached is printed with it.
Load generator and server share this machine's cores.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from recops.core.privacy import pseudonymise, user_salt
from recops.core.settings import Settings

TOKEN = "benchmark-token-0123456789abcdef"
RETAIL_II = "online_retail_ii_2009_2010/online_retail_ii_2009_2010.parquet"
WRK_SCRIPT = """
math.randomseed({seed})
local paths = {{ {paths} }}
wrk.headers["Authorization"] = "Bearer {token}"
local errors = 0
request = function()
  return wrk.format("GET", paths[math.random(#paths)])
end
response = function(status, headers, body)
  if status ~= 200 then errors = errors + 1 end
end
{delay}
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %.3f %.3f %.3f %.3f\\n", summary.requests,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write +
    summary.errors.timeout, summary.duration, latency:percentile(50) / 1000,
    latency:percentile(95) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def prepare_home(args: argparse.Namespace, console: Console) -> Path:
    """A home with a published champion: the given one, or a fresh pipeline run."""
    if args.home:
        return Path(args.home)
    home = Path(tempfile.mkdtemp(prefix="recops-bench-serving-"))
    env = {**os.environ, "RECOPS_HOME": str(home)}
    recops = str(Path(sys.executable).with_name("recops"))
    with console.status("training a home (recops run) ..."):
        if args.quick:
            shop = home / "shop"
            subprocess.run([recops, "generate", "--users", "400", "--items", "200", "--days", "90", "--out", str(shop)],
                           env=env, check=True, capture_output=True)
            command = [recops, "run", "--source", "events", "--data", str(shop / "events.parquet"),
                       "--catalog", str(shop / "catalog.parquet")]
        else:
            data = Settings().data_dir / RETAIL_II
            command = [recops, "run", "--source", "online_retail", "--data", str(data), "--cutoff", "2010-11-01"]
        subprocess.run(command, env=env, check=True, capture_output=True)
    return home


def request_mix(settings: Settings, n: int, seed: int) -> dict[str, list[str]]:
    """Paths per kind: known users (random), unknown visitors with a context item, item-to-item."""
    from recops.core.candidate_store import candidate_store
    from recops.core.constants import CHAMPION_ALIAS
    from recops.core.registry import alias_version
    from recops.core.warehouse import Warehouse

    rng = random.Random(seed)
    with Warehouse(settings, read_only=True) as wh:
        raw = wh.query_df("select distinct user_id from raw.events where user_id is not null")["user_id"].astype(str)
    meta = candidate_store(settings).read_meta(alias_version(settings, CHAMPION_ALIAS))
    known_keys = set(_published_users(settings, meta.version))
    known = [u for u in raw if pseudonymise(u, user_salt(settings)) in known_keys]
    items = [str(i) for i in meta.items]
    return {
        "known": [f"/recommendations/{rng.choice(known)}?k=10" for _ in range(n)],
        "cold": [f"/recommendations/visitor-{rng.randrange(10**6)}?k=10&item_id={rng.choice(items)}" for _ in range(n)],
        "similar": [f"/items/{rng.choice(items)}/similar?k=10" for _ in range(n)],
    }


def _published_users(settings: Settings, version: str) -> list[str]:
    import sqlite3

    if settings.profile == "production":
        raise SystemExit("the serving benchmark reads the embedded candidate store")
    con = sqlite3.connect(settings.serving_dir / "candidates.db")
    try:
        return [r[0] for r in con.execute("select user_key from users where version = ?", (version,))]
    finally:
        con.close()


def mixed(paths: dict[str, list[str]], rng: random.Random, n: int) -> list[str]:
    """``n`` paths: 80 % known, 15 % cold with context, 5 % item-to-item."""
    weights = {"known": 0.80, "cold": 0.15, "similar": 0.05}
    return [rng.choice(paths[rng.choices(list(weights), list(weights.values()))[0]]) for _ in range(n)]


def wrk(url: str, paths: list[str], *, connections: int, seconds: int, rate: float | None, seed: int) -> dict:
    """One wrk run; ``rate`` (requests/s over all connections) sets each connection's delay."""
    delay = ""
    if rate:
        per_connection_ms = max(0.0, 1000.0 * connections / rate - 1.0)  # ~1 ms of service time
        delay = f"delay = function() return {per_connection_ms:.2f} end"
    lua = WRK_SCRIPT.format(
        seed=seed, paths=", ".join(json.dumps(p) for p in paths), token=TOKEN, delay=delay
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(lua)
    try:
        proc = subprocess.run(
            ["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "--timeout", "5s", "-s", fh.name, url],
            capture_output=True, text=True, check=True,
        )
    finally:
        os.unlink(fh.name)
    found = re.search(r"RESULT (\d+) (\d+) (\d+) ([\d.]+) ([\d.]+) ([\d.]+) ([\d.]+)", proc.stdout)
    requests, errors, micros, p50, p95, p99, worst = found.groups()
    duration = int(micros) / 1e6
    return {"requests": int(requests), "errors": int(errors), "rps": round(int(requests) / duration, 1),
            "p50_ms": float(p50), "p95_ms": float(p95), "p99_ms": float(p99), "max_ms": float(worst)}


def start_api(home: Path, port: int, cache_seconds: float, workers: int) -> subprocess.Popen:
    env = {**os.environ, "RECOPS_HOME": str(home), "RECOPS_API_TOKENS": TOKEN,
           "RECOPS_SERVE_CACHE_SECONDS": str(cache_seconds)}
    log = open(home / "logs" / f"bench-api-{port}.log", "wb")  # noqa: SIM115 - the child's
    proc = subprocess.Popen([str(Path(sys.executable).with_name("recops")), "serve", "--port", str(port),
                             "--workers", str(workers)], env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).json().get("status") == "ok":
                return proc
        except (httpx.HTTPError, ValueError):
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"the API exited: see {log.name}")
        time.sleep(0.5)
    proc.terminate()
    raise TimeoutError("the API did not become healthy")


def measure(home: Path, paths: dict[str, list[str]], args: argparse.Namespace) -> dict:
    rng = random.Random(args.seed)
    mix = mixed(paths, rng, 2000)
    seconds = 5 if args.quick else 20
    results: dict[str, dict] = {}
    for cache in (True, False):
        port = free_port()
        api = start_api(home, port, 60.0 if cache else 0.0, args.workers)
        url = f"http://127.0.0.1:{port}"
        try:
            for path in mix[:200]:  # warm up every worker (and, with the cache, its entries)
                httpx.get(url + path, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
            label = "cache on" if cache else "cache off"
            results[f"max throughput, 16 connections, {label}"] = wrk(url, mix, connections=16, seconds=seconds,
                                                                      rate=None, seed=args.seed)
            if not cache:
                for name, chosen in (("mix", mix), ("cold visitors", paths["cold"]), ("item-to-item", paths["similar"])):
                    results[f"{args.rate:.0f} req/s, {name}, cache off"] = wrk(
                        url, chosen, connections=8, seconds=seconds, rate=args.rate, seed=args.seed)
        finally:
            api.terminate()
            api.wait(timeout=30)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", help="a home where `recops run` finished (default: train one)")
    parser.add_argument("--quick", action="store_true", help="small synthetic shop, 5-second runs (CI)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rate", type=float, default=200.0, help="the fixed request rate (requests/s)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json-out", help="also write the figures here")
    args = parser.parse_args()
    console = Console()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")
    home = prepare_home(args, console)
    settings = Settings(home=home)
    paths = request_mix(settings, 500, args.seed)
    with console.status("driving the API with wrk ..."):
        results = measure(home, paths, args)
    table = Table(title=f"recops serve --workers {args.workers} ({'quick' if args.quick else 'Online Retail II'})")
    for col in ("run", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "errors"):
        table.add_column(col, justify="left" if col == "run" else "right")
    for name, r in results.items():
        table.add_row(name, f"{r['rps']:.0f}", f"{r['p50_ms']:.2f}", f"{r['p95_ms']:.2f}", f"{r['p99_ms']:.2f}",
                      f"{r['max_ms']:.1f}", str(r["errors"]))
    console.print(table)
    document = {"home": str(home), "workers": args.workers, "quick": args.quick, "results": results}
    print(json.dumps(document, indent=2))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(document, indent=2))


if __name__ == "__main__":
    main()
