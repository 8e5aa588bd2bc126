"""Driving the console in the system's Chromium: a page that records
what goes wrong on it, and signing in with the keyboard."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Page

from tests.console.conftest import PASSWORD


class Watched:
    """A page with what went wrong on it: console errors, failed requests, requests that
    left the server."""

    def __init__(self, page: Page, base: str):
        self.page, self.errors, self.outside = page, list[str](), list[str]()
        self.base = base
        page.on("console", self.console)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("request", self.request)
        self.creatives_outside = self.net_failures = 0

    @staticmethod
    def _creatives(r: Any) -> bool:
        # what a creative's own document loads (its images: hosted by the advertiser)
        return "/console/preview/" in r.frame.url

    def request(self, r: Any) -> None:
        if r.url.startswith(self.base):
            return
        if self._creatives(r):
            self.creatives_outside += 1  # may fail to load here (no internet)
        else:
            self.outside.append(r.url)

    def console(self, m: Any) -> None:
        # a creative's own document (its preview frame) may be refused what it tries, and its
        # images may be out of reach (this machine has no internet)
        if m.type != "error" or "/console/preview/" in (m.location or {}).get("url", ""):
            return
        if m.text.startswith("Failed to load resource: net::"):
            self.net_failures += 1  # told apart from the creatives' in problems()
            return
        self.errors.append(m.text)

    def problems(self) -> list[str]:
        """Console errors, and network failures beyond the creatives' own requests elsewhere
        (counted as they start, so no failure can be told before its request)."""
        extra = self.net_failures - self.creatives_outside
        return self.errors + ([f"{extra} resources failed to load"] if extra > 0 else [])

    def clean(self) -> None:
        assert self.problems() == [], self.problems()
        assert self.outside == [], self.outside


def sign_in(page: Page, base: str, email: str) -> None:
    page.goto(f"{base}/console/")
    assert page.url.endswith("/console/login")  # sent to sign in first
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Password").press("Enter")  # the keyboard submits
    page.wait_for_url(f"{base}/console/")
