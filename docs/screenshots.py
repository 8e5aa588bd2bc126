"""Screenshots of the console's main pages, for the README: a fresh demo (seeded, its
shoppers browsing for a minute) on ephemeral ports, driven in the system's Chromium.

    .venv/bin/python docs/screenshots.py [--out docs/screenshots] [--wait 60]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys

from playwright.sync_api import Page, sync_playwright

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench.console import demo  # noqa: E402  (the repository's root on the path first)

PAGES = [
    ("advertiser", "reports", "/console/reports?group=flight&metric=clicks"),
    ("advertiser", "preview", "/console/preview?site_id=1&zone_id=11&ad_type_id=2&count=2&show=1"),
    ("advertiser", "flights", "/console/flights"),
    ("advertiser", "flight", "/console/flights/1"),
    ("admin", "review", "/console/review"),
    ("admin", "campaigns", "/console/"),
]


def sign_in(page: Page, base: str, email: str, password: str) -> None:
    page.goto(f"{base}/console/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_label("Password").press("Enter")
    page.wait_for_url(f"{base}/console/")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "screenshots"))
    ap.add_argument("--wait", type=float, default=60, help="seconds of demo traffic first")
    args = ap.parse_args()
    with demo(args.wait) as (base, users), sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        for who in ("advertiser", "admin"):
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            email = f"{who}@demo.example"
            sign_in(page, base, email, users[email])
            if who == "advertiser":  # a change to a creative: back to review
                page.goto(f"{base}/console/creatives")
                page.locator("tbody tr a").first.click()
                page.get_by_label("Title").fill("Winter sale: 20 % off")
                page.get_by_role("button", name="Save").click()
            for role, name, path in PAGES:
                if role == who:
                    page.goto(base + path)
                    page.wait_for_timeout(1500)
                    page.screenshot(path=os.path.join(args.out, f"{name}.png"))
            page.close()
        browser.close()


if __name__ == "__main__":
    main()
