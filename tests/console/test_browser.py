"""The console in a real browser (the system's Chromium via Playwright) against a real
control process: an advertiser signs in with the keyboard, creates a campaign after a
refused try shows the error at its field, and a tampered URL shows a not-found page; the
pages fetch nothing from elsewhere, log no console errors and fit a phone's width."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.console.conftest import PASSWORD


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    path = shutil.which("chromium")
    assert path, "the tests need the system's chromium (./dev installs it)"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=["--no-sandbox"])
        yield b
        b.close()


class Watched:
    """A page with what went wrong on it: console errors, failed requests, requests that
    left the server."""

    def __init__(self, page: Page, base: str):
        self.page, self.errors, self.outside = page, list[str](), list[str]()
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("request", lambda r: None if r.url.startswith(base) else self.outside.append(r.url))

    def clean(self) -> None:
        assert self.errors == [], self.errors
        assert self.outside == [], self.outside


def sign_in(page: Page, base: str, email: str) -> None:
    page.goto(f"{base}/console/")
    assert page.url.endswith("/console/login")  # sent to sign in first
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Password").press("Enter")  # the keyboard submits
    page.wait_for_url(f"{base}/console/")


@pytest.mark.parametrize("width", [1280, 375])
def test_an_advertiser_creates_a_campaign_in_the_browser(
    browser: Browser, world: dict[str, Any], width: int
) -> None:
    base = world["url"]
    context = browser.new_context(viewport={"width": width, "height": 800})
    w = Watched(context.new_page(), base)
    page = w.page
    sign_in(page, base, world["people"]["a"]["email"])
    assert page.get_by_role("heading", name="Campaigns").is_visible()
    assert page.get_by_role("link", name=world["a"]["campaign"]["name"]).is_visible()
    assert page.get_by_text(world["b"]["campaign"]["name"]).count() == 0
    # nothing wider than the screen (tables scroll inside their own box)
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    page.get_by_role("link", name="New campaign").click()
    page.get_by_role("button", name="Create campaign").click()  # no name: refused
    name = page.get_by_label("Name")
    assert name.get_attribute("aria-invalid") == "true"
    assert page.locator("#name-error").is_visible()
    title = f"Browser campaign {width}"
    name.fill(title)
    page.get_by_role("button", name="Create campaign").click()
    page.wait_for_url(f"{base}/console/campaigns/*")
    assert page.get_by_role("heading", name=title).is_visible()
    # URL tampering: another advertiser's campaign is not found
    page.goto(f"{base}/console/campaigns/{world['b']['campaign']['id']}")
    assert page.get_by_role("heading", name="Not found").is_visible()
    assert page.get_by_text(world["b"]["campaign"]["name"]).count() == 0
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{base}/console/login")
    page.goto(f"{base}/console/")
    assert page.url.endswith("/console/login")
    # the refused form (400) and the tampered URL (404) answer with their statuses
    errors = [e for e in w.errors if not re.search(r"status of 40[04] ", e)]
    assert errors == [], errors
    assert w.outside == []
    context.close()


def test_every_control_is_labelled(browser: Browser, world: dict[str, Any]) -> None:
    base = world["url"]
    context = browser.new_context()
    w = Watched(context.new_page(), base)
    page = w.page
    sign_in(page, base, world["people"]["admin"]["email"])
    for path in (
        "/console/",
        "/console/campaigns/new",
        f"/console/campaigns/{world['a']['campaign']['id']}",
    ):
        page.goto(base + path)
        unlabelled = page.evaluate(
            """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
                .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))
                .map(e => e.name)"""
        )
        assert unlabelled == [], (path, unlabelled)
    w.clean()
    context.close()
