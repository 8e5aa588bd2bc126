"""The console in a real browser (the system's Chromium via Playwright) against a real
control process: an advertiser signs in with the keyboard, creates a campaign after a
refused try shows the error at its field, and a tampered URL shows a not-found page; the
pages fetch nothing from elsewhere, log no console errors and fit a phone's width."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Browser

from tests.console.pages import Watched, sign_in


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
    errors = [e for e in w.problems() if not re.search(r"status of 40[04] ", e)]
    assert errors == [], errors
    assert w.outside == []
    context.close()


@pytest.mark.parametrize("width", [1280, 375])
def test_every_page_labels_its_controls_and_fits_the_screen(
    browser: Browser, world: dict[str, Any], width: int
) -> None:
    base = world["url"]
    context = browser.new_context(viewport={"width": width, "height": 800})
    w = Watched(context.new_page(), base)
    page = w.page
    sign_in(page, base, world["people"]["admin"]["email"])
    a = world["a"]
    for path in (
        "/console/",
        "/console/campaigns/new",
        f"/console/campaigns/{a['campaign']['id']}",
        "/console/flights/new",
        f"/console/flights/{a['flight']['id']}",
        f"/console/creatives/{a['creative']['id']}",
        "/console/review",
        "/console/reports",
        "/console/preview",
        "/console/networks",
    ):
        page.goto(base + path)
        wide = page.evaluate("document.documentElement.scrollWidth")
        assert wide <= width, (path, wide)
        unlabelled = page.evaluate(
            """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
                .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))
                .map(e => e.name)"""
        )
        assert unlabelled == [], (path, unlabelled)
    w.clean()
    context.close()


def test_a_creative_goes_through_review(browser: Browser, world: dict[str, Any]) -> None:
    base = world["url"]
    a = world["a"]
    buyer = browser.new_context()
    w = Watched(buyer.new_page(), base)
    page = w.page
    sign_in(page, base, world["people"]["a"]["email"])
    page.goto(f"{base}/console/creatives/new")
    page.get_by_label("Ad type").select_option(str(a["ad_type"]["id"]))
    page.get_by_label("Name (required)").fill("Winter banner")
    page.get_by_label("Kind (required)").select_option("html")
    page.get_by_label("Status").select_option("pending")  # submitted for review
    page.get_by_label("Body").fill("<p style='color:red'>Winter sale</p><script>alert(1)</script>")
    page.get_by_label("Click url").fill("https://shop.example/winter")
    page.get_by_role("button", name="Create creative").click()
    page.wait_for_url(f"{base}/console/creatives/*")
    creative = int(page.url.rsplit("/", 1)[1])

    ops = browser.new_context()
    w2 = Watched(ops.new_page(), base)
    review = w2.page
    dialogs: list[str] = []
    review.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    sign_in(review, base, world["people"]["admin"]["email"])
    review.get_by_role("link", name="Review", exact=True).click()
    card = review.locator(f"#creative-{creative}")
    assert card.get_by_text("Winter banner").is_visible()
    frame = card.frame_locator("iframe")
    assert frame.get_by_text("Winter sale").is_visible()  # the HTML renders
    color = frame.locator("p").evaluate("p => getComputedStyle(p).color")
    assert color == "rgb(255, 0, 0)"  # with its own styles
    # a rejection needs a reason
    card.get_by_role("button", name="Reject").click()
    assert review.get_by_role("alert").inner_text().startswith("a rejection needs a reason")
    review.get_by_label(f"Select creative {creative}").check()
    review.get_by_role("button", name="Approve selected").click()
    review.wait_for_url(f"{base}/console/review")
    assert review.locator(f"#creative-{creative}").count() == 0

    page.reload()
    assert page.get_by_label("Status").input_value() == "approved"
    errors = [e for e in w.problems() + w2.problems() if not re.search(r"status of 400 ", e)]
    assert errors == [], errors
    assert w.outside == [] and w2.outside == []
    assert dialogs == []  # the creative's script never ran
    buyer.close()
    ops.close()
