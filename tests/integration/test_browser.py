"""The demo pages in a real browser: Debian's headless Chromium against a real ``recops serve`` on
a home of this module's own, a copy of the session's shop home (the storefront and the simulator
write feedback and the online marts are rebuilt: the shared home stays untouched). One server and
one browser for the module.

- The storefront, for a known user: 10 cards with reasons; "Add to cart" on one card and a click
  on another post exactly two events, with the list's request id and ranks, into the feedback log
  the next run ingests; the product page shows the item-to-item row; a new visitor gets the
  "Recommended with this" row; at 390 px the page does not overflow.
- The operations page after two simulated days (``recops.app.simulate``), the API's logs closed
  and ingested and the online marts rebuilt (the recops_ingest and recops_monitor tasks): its
  charts are drawn with the simulated figures, its live panels with this service's requests.

Any browser console error fails a test. Screenshots land in the pytest temp folder (printed).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pandas as pd
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SALT = "test-salt-123"
DESKTOP = (1280, 900)
PHONE = (390, 844)


class Served:
    """``recops serve`` on a home, in a child process; the addresses it printed."""

    def __init__(self, home: Path, port: int, log: Path) -> None:
        self.home, self.port, self.log = home, port, log
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen | None = None
        self.printed: dict[str, str] = {}

    def start(self, timeout_s: float = 180) -> None:
        exe = Path(sys.executable).with_name("recops")
        env = {**os.environ, "RECOPS_HOME": str(self.home), "RECOPS_USER_SALT": SALT}
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([str(exe), "serve", "--port", str(self.port)], env=env,
                                         stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            try:
                if httpx.get(f"{self.url}/health", timeout=2).json().get("model_version"):
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            raise TimeoutError(f"recops serve did not come up: {self.log.read_text()[-3000:]}")
        self.printed = dict(re.findall(r"^(storefront|operations): (\S+)", self.log.read_text(), re.MULTILINE))

    def stop(self) -> None:
        """SIGTERM: uvicorn stops and the API closes its logs (what the next run ingests)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=60)
        self.proc = None


@pytest.fixture(scope="module")
def chromium(browser_tools, needs_service) -> str:
    binary = browser_tools.chromium_path()
    needs_service("chromium", binary is not None, "no chromium binary (Debian: apt-get install chromium)")
    return binary


@pytest.fixture(scope="module")
def home(shop_home, shop_home_copy):
    """A home of this module's own, copied from the session's shop home (champion v1 published;
    the pipeline runs once per session): the API's logs, ingestion and the online marts write to
    the copy only. Returns (settings, the shop's folder)."""
    from recops.core.settings import Settings

    return Settings(home=shop_home_copy("browser"), user_salt=SALT), shop_home.shop


@pytest.fixture(scope="module")
def site(home, browser_tools, tmp_path_factory) -> Iterator[Served]:
    settings, _ = home
    served = Served(settings.home, browser_tools.free_port(), tmp_path_factory.mktemp("serve") / "serve.log")
    served.start()
    yield served
    served.stop()


@pytest.fixture(scope="module")
def browser(chromium, browser_tools) -> Iterator:
    with browser_tools.Browser(chromium) as b:
        yield b


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture(autouse=True)
def console_is_clean(browser) -> Iterator[None]:
    browser.errors.clear()
    yield
    assert browser.console_errors() == [], "the browser console showed errors"


def tokens(settings) -> tuple[str, str]:
    """(the home's admin token, its web token)."""
    return settings.api_tokens_file.read_text().strip(), settings.web_token_file.read_text().strip()


def open_page(browser, url: str, size: tuple[int, int], *, mobile: bool = False) -> None:
    browser.viewport(*size, mobile=mobile)
    browser.goto(url)
    browser.wait_for("document.body && document.body.dataset.ready === 'true'")


CARDS = """[...document.querySelectorAll('#ROW .card')].map(c => ({
  item_id: c.dataset.itemId, rank: Number(c.dataset.rank), request_id: c.dataset.requestId,
  title: c.querySelector('.title').textContent, price: c.querySelector('.price').textContent,
  reasons: [...c.querySelectorAll('.reasons li')].map(li => li.textContent)}))"""


def cards(browser, row: str) -> list[dict]:
    return browser.evaluate(CARDS.replace("ROW", row))


def feedback_events(settings) -> list[dict]:
    """Every event in the API's feedback log files: open, closed (pending) and ingested."""
    files = sorted(settings.feedback_dir.rglob("feedback-*.jsonl*"))
    return [json.loads(line) for f in files for line in f.read_text().splitlines() if line.strip()]


def shown(reasons: list[str]) -> list[str]:
    return [r[0].upper() + r[1:] for r in reasons]


def test_storefront_for_a_known_user(site, home, browser, shots) -> None:
    settings, _ = home
    _, web = tokens(settings)
    assert site.printed == {"storefront": f"{site.url}/shop", "operations": f"{site.url}/ops"}
    api = httpx.Client(base_url=site.url, headers={"Authorization": f"Bearer {web}"}, timeout=30)
    user = api.get("/shop/users").json()["users"][0]

    open_page(browser, site.printed["storefront"], DESKTOP)
    browser.wait_for(f"document.querySelector('#known button[data-user=\"{user}\"]') !== null")
    browser.click(f'#known button[data-user="{user}"]')
    browser.wait_for(f"document.getElementById('shopper').value === '{user}' && "
                     "document.querySelectorAll('#for-you .card').length === 10")
    row = cards(browser, "for-you")
    assert browser.evaluate("document.getElementById('for-you-title').textContent") == "Recommended for you"
    request_ids = {c["request_id"] for c in row}
    assert len(request_ids) == 1 and re.fullmatch(r"[0-9a-f]{32}", request_id := request_ids.pop())
    expected = api.get(f"/recommendations/{user}", params={"k": 10}).json()  # the API's own answer
    assert expected["fallback"] is False
    assert [(c["item_id"], c["rank"], c["title"]) for c in row] == [
        (i["item_id"], i["rank"], i["title"]) for i in expected["items"]]
    assert [c["reasons"] for c in row] == [shown(i["reasons"]) for i in expected["items"]]
    assert all(c["reasons"] and re.fullmatch(r"\d+\.\d\d", c["price"]) for c in row)
    browser.screenshot(shots / "shop.png", full_page=True)

    first, second = row[0], row[1]
    browser.click('#for-you .card[data-rank="2"] button.add')
    browser.wait_for("document.querySelector('#for-you .card[data-rank=\"2\"] button.add').textContent === 'In your cart'")
    assert browser.evaluate("document.getElementById('cart').textContent") == "Cart: 1 item"
    browser.click('#for-you .card[data-rank="1"] a.card-link')
    browser.wait_for("document.querySelectorAll('#also-bought .card').length > 0 && "
                     "document.querySelectorAll('#with-this .card').length > 0")
    assert browser.evaluate("location.hash") == f"#/item/{first['item_id']}"
    assert browser.evaluate("document.querySelector('#product .title').textContent") == first["title"]
    also = cards(browser, "also-bought")
    similar = api.get(f"/items/{first['item_id']}/similar", params={"k": 10, "exclude": [second["item_id"]]}).json()
    assert [c["item_id"] for c in also] == [i["item_id"] for i in similar["items"]] and len(also) >= 5
    assert {r for c in also for r in c["reasons"]} <= {"Customers who bought this also bought", "Similar description"}
    assert first["item_id"] not in {c["item_id"] for c in also}
    browser.screenshot(shots / "product.png", full_page=True)

    mine = [e for e in feedback_events(settings) if e["request_id"] == request_id]
    assert sorted((e["event_type"], e["item_id"], e["rank"], e["user_id"]) for e in mine) == [
        ("add_to_cart", second["item_id"], 2, user), ("click", first["item_id"], 1, user)]
    assert all(e["session_id"] == mine[0]["session_id"] for e in mine)

    open_page(browser, f"{site.printed['storefront']}?user={user}", PHONE, mobile=True)
    browser.wait_for("document.querySelectorAll('#for-you .card').length === 10")
    assert second["item_id"] not in {c["item_id"] for c in cards(browser, "for-you")}  # in the cart now
    assert browser.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert browser.evaluate("document.querySelector('#for-you .card').getBoundingClientRect().width") >= 170
    browser.screenshot(shots / "shop-390px.png")
    print(f"screenshots: {shots}")


def test_a_new_visitor_gets_items_recommended_with_the_product(site, browser) -> None:
    open_page(browser, site.printed["storefront"], DESKTOP)
    browser.click("#new-visitor")
    browser.wait_for("document.getElementById('shopper').value.startsWith('visitor-') && "
                     "document.getElementById('for-you-title').textContent.startsWith('Popular right now')")
    browser.wait_for("document.querySelectorAll('#for-you .card').length >= 5")  # the cart's items are left out
    assert {r for c in cards(browser, "for-you") for r in c["reasons"]} == {"Popular now"}
    browser.click('#for-you .card[data-rank="1"] a.card-link')
    browser.wait_for("document.getElementById('with-this-title').textContent === 'Recommended with this' && "
                     "document.querySelectorAll('#with-this .card').length > 0")
    with_this = cards(browser, "with-this")
    assert any("Similar to the item you are viewing" in c["reasons"] for c in with_this)


COUNTS = ("requests", "impressions", "clicks", "add_to_carts", "purchases")


def simulated_days(shop: Path, url: str, admin: str) -> dict[date, dict]:
    """Two simulated days after the shop's data, the second with anonymous visitors too (the
    popularity policy asks as unknown visitors: cold-start lists). Per day: the summed tally and
    the anonymous requests."""
    from recops.app.simulate import simulate

    newest = pd.read_parquet(shop / "events.parquet", columns=["event_at"])["event_at"].max()
    first = pd.Timestamp(newest).date() + timedelta(days=1)
    second = first + timedelta(days=1)
    runs = {first: [simulate(url, admin, shop, start=first, days=1, users=90, seed=11)],
            second: [simulate(url, admin, shop, start=second, days=1, users=90, seed=12),
                     simulate(url, admin, shop, start=second, days=1, users=30, policy="popularity", seed=13)]}
    assert datetime.now(UTC).date() not in runs  # the storefront test's lists are served today
    return {day: {**{key: sum(t[key] for t in tallies) for key in COUNTS},
                  "anonymous": sum(t["requests"] for t in tallies if t["policy"] == "popularity")}
            for day, tallies in runs.items()}


def test_operations_page_after_simulated_days(site, home, browser, shots) -> None:
    from recops.app.tasks import ingest_inbox, online_marts
    from recops.core.marts import online_metrics_daily

    settings, shop = home
    admin, web = tokens(settings)
    days = simulated_days(shop, site.url, admin)
    site.stop()
    assert not list(settings.feedback_dir.glob("*.part")) and not list(settings.served_dir.glob("*.part"))
    ingested = ingest_inbox(settings=settings)
    assert {s["source"] for s in ingested["summaries"]} == {"feedback", "served"}
    assert online_marts(run_id="browser-test", settings=settings)["success"]
    site.start()
    marts = online_metrics_daily(settings).assign(day=lambda d: pd.to_datetime(d["served_date"]).dt.date)

    api = httpx.Client(base_url=site.url, headers={"Authorization": f"Bearer {web}"}, timeout=30)
    known = api.get("/shop/users").json()["users"]
    for user in [*known, "visitor-a1", "visitor-b2", "visitor-c3"]:
        api.get(f"/recommendations/{user}", params={"k": 10}).raise_for_status()

    open_page(browser, site.printed["operations"], DESKTOP)
    if not browser.evaluate("sessionStorage.getItem('recops.adminToken')"):
        browser.type_into("#token", admin)
        browser.click("#login button[type=submit]")
    browser.wait_for("document.body.dataset.loaded")
    assert browser.evaluate("document.getElementById('token').value") == ""
    assert "token" not in browser.url()
    drawn = browser.evaluate("""[...document.querySelectorAll('svg.chart circle')].map(c => ({
        metric: c.closest('svg').dataset.metric, series: c.dataset.series, day: c.dataset.day,
        value: Number(c.dataset.value), cy: Number(c.getAttribute('cy'))}))""")
    points = {(p["metric"], p["day"]): p for p in drawn if p["series"] == "v1 champion"}
    for day, tally in days.items():
        drawn_on = {metric: p["value"] for (metric, d), p in points.items() if d == day.isoformat()}
        assert drawn_on["impressions"] == tally["impressions"] == 10 * tally["requests"]
        assert drawn_on["ctr"] == pytest.approx(tally["clicks"] / tally["impressions"], abs=1e-6)
        assert drawn_on["add_to_cart_rate"] == pytest.approx(tally["add_to_carts"] / tally["impressions"], abs=1e-6)
        assert drawn_on["conversion"] == pytest.approx(tally["purchases"] / tally["impressions"], abs=1e-6)
        mart = marts[marts["day"] == day].iloc[0]
        assert drawn_on["cold_start_share"] == pytest.approx(mart["fallback_share_rate"], abs=1e-6)
    first, second = sorted(days)
    assert days[second]["anonymous"] > 0 and points[("cold_start_share", second.isoformat())]["value"] >= (
        days[second]["anonymous"] / days[second]["requests"] - 1e-6)
    impressions = [points[("impressions", d.isoformat())] for d in (first, second)]
    higher, lower = sorted(impressions, key=lambda p: -p["value"])
    assert higher["cy"] < lower["cy"] or higher["value"] == lower["value"]

    text = browser.text()
    for title in ("Impressions", "CTR", "Add-to-cart rate", "Conversion", "Cold-start share"):
        assert title in text
    latency = browser.evaluate("""Object.fromEntries([...document.querySelectorAll('#latency tbody tr')].map(
        tr => [tr.dataset.route, [...tr.children].slice(1).map(td => td.textContent)]))""")
    assert latency["/recommendations/{user_id}"][0] == str(len(known) + 3)
    assert all(cell.endswith(" ms") for cell in latency["/recommendations/{user_id}"][1:])
    assert browser.evaluate("document.getElementById('live-cold-share').textContent") == (
        f"{100 * 3 / (len(known) + 3):.2f}%")
    run = browser.evaluate("""(() => { const tr = document.querySelector('#runs-table tr[data-version="1"]');
        return {text: tr.innerText, links: [...tr.querySelectorAll('a')].map(a => a.href)}; })()""")
    assert "passed" in run["text"] and "promoted" in run["text"] and "champion" in run["text"]
    assert any(re.search(r"/dags/recops_pipeline/runs/manual__", href) for href in run["links"])
    assert any(href.endswith("/#/models/recops-ranker/versions/1") for href in run["links"])
    browser.screenshot(shots / "ops.png", full_page=True)
    open_page(browser, site.printed["operations"], PHONE, mobile=True)
    browser.wait_for("document.body.dataset.loaded")  # the token is kept for the tab
    assert browser.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    browser.screenshot(shots / "ops-390px.png")
    print(f"screenshots: {shots}")
