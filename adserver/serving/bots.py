"""General invalid traffic: known robots by user agent, and prefetches.

Robots are recognised by the maintained crawler list of the `crawler-user-agents` package
(1,500+ patterns of crawlers, scrapers, monitors, link previewers and HTTP libraries), less
the patterns that would class a real app's traffic as a robot: the HTTP stacks apps are
built on (Android's OkHttp and Dalvik, iOS's CFNetwork and Alamofire, Flutter's Dart, ...)
send user agents of their own, and an impression an app reports is a person's. `APP_AGENTS`
holds real user agents of those stacks: any list pattern that matches one of them is left
out, so they stay valid by construction (tests/serving/test_bots.py). An empty user agent is
a robot; requests a browser makes ahead of a user (prefetch, prerender, link previews) are
not impressions. Filtered events are logged with `bot: true` and never billed.
"""

from __future__ import annotations

import re

import crawleruseragents
from starlette.datastructures import Headers

APP_AGENTS = (
    "okhttp/4.12.0",
    "okhttp/3.14.9",
    "Dalvik/2.1.0 (Linux; U; Android 14; Pixel 8 Build/UQ1A.240205.004)",
    "Shop/5.2.1 (com.example.shop; build:812; iOS 17.4.1) Alamofire/5.8.1",
    "Shop/812 CFNetwork/1494.0.7 Darwin/23.4.0",
    "Dart/3.3 (dart:io)",
    "Ktor client",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8 Build/UQ1A.240205.004; wv) AppleWebKit/537.36"
    " (KHTML, like Gecko) Version/4.0 Chrome/126.0.6478.71 Mobile Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15"
    " (KHTML, like Gecko) Mobile/15E148",
)
"""User agents of app HTTP stacks and in-app web views: real people, never robots."""
EXTRA = (r"^java/", r"preview\b")
"""Patterns the list lacks: a JVM's default client, link-preview fetchers."""


def _patterns() -> list[str]:
    keep = []
    for entry in crawleruseragents.CRAWLER_USER_AGENTS_DATA:
        pattern = entry["pattern"]
        if not any(re.search(pattern, ua) for ua in APP_AGENTS):
            keep.append(pattern)
    return keep + list(EXTRA)


ROBOT_UA = re.compile("|".join(f"(?:{p})" for p in _patterns()), re.IGNORECASE)
PREFETCH_HEADERS = (
    ("purpose", "prefetch"),
    ("sec-purpose", "prefetch"),
    ("x-moz", "prefetch"),
    ("x-purpose", "preview"),
)
_verdicts: dict[str, bool] = {}  # user agent -> robot: the list costs ~150 us a match, and
CACHE = 20000  # a site's traffic comes from a few thousand distinct agents


def is_robot(ua: str) -> bool:
    """Whether a (non-empty) user agent is a robot's, cached per agent."""
    found = _verdicts.get(ua)
    if found is None:
        if len(_verdicts) >= CACHE:
            _verdicts.clear()
        found = _verdicts[ua] = ROBOT_UA.search(ua) is not None
    return found


def why_invalid(headers: Headers) -> str | None:
    """A reason the request is general invalid traffic, or None."""
    ua = headers.get("user-agent", "")
    if not ua.strip():
        return "no user agent"
    if is_robot(ua):
        return "robot user agent"
    for name, value in PREFETCH_HEADERS:
        if value in headers.get(name, "").lower():
            return "prefetch"
    return None
