"""General invalid traffic: known robots by user agent, and prefetches.

Rules follow the common practice of the IAB/ABC spiders list in spirit (no list is bundled):
an empty user agent, or one naming a crawler, a library or a headless browser, is a robot;
requests a browser makes ahead of a user (prefetch, prerender, link previews) are not
impressions. Filtered events are logged with `bot: true` and never billed.
"""

from __future__ import annotations

import re

from starlette.datastructures import Headers

ROBOT_UA = re.compile(
    r"bot\b|bot/|crawl|spider|slurp|curl/|wget/|python-requests|python-urllib|httpx|"
    r"go-http-client|java/|okhttp|headlesschrome|phantomjs|facebookexternalhit|"
    r"preview|monitor|pingdom|lighthouse", re.IGNORECASE)
PREFETCH_HEADERS = (("purpose", "prefetch"), ("sec-purpose", "prefetch"),
                    ("x-moz", "prefetch"), ("x-purpose", "preview"))


def why_invalid(headers: Headers) -> str | None:
    """A reason the request is general invalid traffic, or None."""
    ua = headers.get("user-agent", "")
    if not ua.strip():
        return "no user agent"
    if ROBOT_UA.search(ua):
        return "robot user agent"
    for name, value in PREFETCH_HEADERS:
        if value in headers.get(name, "").lower():
            return "prefetch"
    return None
