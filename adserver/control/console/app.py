"""The console's routes, assembled for the management API's app: sign-in and out
(pages.py), the review queue (review.py) and the entity pages (entity_pages.py)."""

from __future__ import annotations

from typing import Any

from adserver.control.console import (
    catalog_page,
    entity_pages,
    health_page,
    ops_pages,
    preview_page,
    pz_page,
    report_pages,
    review,
)
from adserver.control.console.pages import Console, auth_routes


def routes(api: Any) -> list[Any]:
    """Every console route, over the API `api` (its store and its Starlette app)."""
    console = Console(api)
    return [
        *auth_routes(console),
        *review.routes(console),
        *report_pages.routes(console),
        *preview_page.routes(console, api),
        *ops_pages.routes(console),
        *catalog_page.routes(console),
        *health_page.routes(console, api),
        *pz_page.routes(console),
        *entity_pages.routes(console),
    ]
