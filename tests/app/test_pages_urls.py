"""Where ``recops serve`` and ``make demo`` say the demo pages are."""

from __future__ import annotations

from rich.console import Console

from recops.app.demo import print_pages
from recops.app.serve import base_url, page_urls
from recops.core.settings import Settings


def test_the_pages_are_reached_where_the_api_listens(tmp_path) -> None:
    settings = Settings(home=tmp_path, api_host="0.0.0.0", api_port=8123)
    assert page_urls(settings) == {"storefront": "http://127.0.0.1:8123/shop", "operations": "http://127.0.0.1:8123/ops"}
    assert page_urls(settings, "10.1.2.3", 9000)["storefront"] == "http://10.1.2.3:9000/shop"
    assert base_url("::", 80) == "http://[::1]:80"


def test_the_demo_ends_with_both_pages_and_the_command_that_serves_them(tmp_path) -> None:
    console = Console(record=True, width=80)
    print_pages(Settings(home=tmp_path), console)
    assert console.export_text().splitlines() == [
        "storefront: http://127.0.0.1:8000/shop",
        "operations: http://127.0.0.1:8000/ops (admin token: recops serve says where it is)",
        "keep them up: uv run recops serve",
    ]
