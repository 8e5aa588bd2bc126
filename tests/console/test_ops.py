"""The operations pages: a model rolled back from the models page in the browser, keys made
(shown once) and revoked, the audit log naming console users; and what an advertiser or a
read-only user cannot do there."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Browser

from tests.console.pages import Watched, sign_in
from tests.serving.test_models import model_tar


def test_a_model_is_rolled_back_from_the_models_page(
    browser: Browser, world: dict[str, Any], admin: httpx.Client, tmp_path: Path
) -> None:
    made = []
    for seed in (31, 32):
        r = admin.put(
            "/v1/models/ctr/versions",
            content=model_tar(tmp_path, seed),
            headers={"content-type": "application/gzip"},
        )
        assert r.status_code == 201, r.text
        version = r.json()["version"]
        r = admin.post(f"/v1/models/ctr/versions/{version}/activate", json={"force": True})
        assert r.status_code == 200, r.text
        made.append(version)
    base = world["url"]
    w = Watched(browser.new_context().new_page(), base)
    page = w.page
    sign_in(page, base, world["people"]["admin"]["email"])
    page.get_by_role("link", name="Models").click()
    section = page.locator("#model-ctr")
    assert f"Active: {made[1]}" in section.inner_text()
    assert section.locator(f"#ctr-{made[0]}").get_by_text("retired").count() == 1
    section.get_by_role("button", name="Roll back to the previous active version").click()
    page.wait_for_url(f"{base}/console/models")
    assert f"Active: {made[0]}" in page.locator("#model-ctr").inner_text()
    assert admin.get("/v1/models").json()["ctr"]["active"] == made[0]
    w.clean()


def test_keys_are_shown_once_and_revoked(console: Any, world: dict[str, Any], admin: Any) -> None:
    c = console("admin")
    mine = world["a"]["advertiser"]["id"]
    r = c.post(
        "/console/keys",
        {"action": "create", "role": "advertiser", "advertiser_id": str(mine), "name": "feed"},
    )
    assert r.status_code == 200 and 'id="new-key"' in r.text
    key = r.text.split('id="new-key">', 1)[1].split("<", 1)[0]
    assert key.startswith("ak_")
    key_id = key.split("_")[1]
    listing = c.get("/console/keys")
    assert key_id in listing.text and key not in listing.text  # never shown again
    row = listing.text.split(f'id="key-{key_id}"', 1)[1].split("</tr>")[0]
    assert "never" in row
    with httpx.Client(base_url=world["url"], headers={"X-Api-Key": key}, timeout=30) as k:
        assert k.get("/v1/me").json()["advertiser_id"] == mine
        row = c.get("/console/keys").text.split(f'id="key-{key_id}"', 1)[1].split("</tr>")[0]
        assert "never" not in row  # its use is shown
        listed = {x["key_id"]: x for x in admin.get("/v1/keys").json()["data"]}
        assert listed[key_id]["last_used_at"] is not None
        r = c.post("/console/keys", {"action": "revoke", "key_id": key_id})
        assert r.status_code == 303
        assert k.get("/v1/me").status_code == 401
    audit = c.get("/console/audit?entity=keys")
    assert f"user:{world['people']['admin']['email']}" in audit.text


def test_advertisers_and_readers_cannot_operate(console: Any, world: dict[str, Any]) -> None:
    buyer = console("a")
    for path in ("/console/models", "/console/keys", "/console/audit"):
        assert buyer.get(path).status_code == 404
    r = buyer.post("/console/keys", {"action": "create", "role": "admin"})
    assert r.status_code == 404
    # Attack: a form without the session's CSRF token
    ops = console("admin")
    r = ops.post("/console/keys", {"action": "create", "role": "admin"}, csrf=False)
    assert r.status_code == 400 and "new-key" not in r.text


def test_the_personalization_page_draws_an_evaluation(
    browser: Browser, world: dict[str, Any], admin: httpx.Client
) -> None:
    r = admin.put(
        "/v1/personalizer/evaluations/console-eval",
        json={
            "name": "console check",
            "startTime": "2026-01-01T00:00:00Z",
            "endTime": "2026-01-02T00:00:00Z",
            "policies": [{"name": "greedy", "arguments": "--cb_explore_adf --epsilon 0"}],
        },
    )
    assert r.status_code in (200, 201), r.text
    base = world["url"]
    w = Watched(browser.new_context().new_page(), base)
    page = w.page
    sign_in(page, base, world["people"]["admin"]["email"])
    page.get_by_role("link", name="Personalization").click()
    page.get_by_label("Evaluation").select_option("console-eval")
    page.get_by_role("button", name="Show").click()
    assert page.get_by_role("heading", name="console check").is_visible()
    page.locator("#policies").wait_for()
    names = page.locator("#policies tbody td:first-child").all_inner_texts()
    assert "greedy" in names
    page.locator("#pz-chart .main-svg").first.wait_for()
    w.clean()


def test_an_evaluation_is_made_and_its_policy_applied_from_the_console(
    browser: Browser, world: dict[str, Any], admin: httpx.Client
) -> None:
    base = world["url"]
    w = Watched(browser.new_context().new_page(), base)
    page = w.page
    sign_in(page, base, world["people"]["admin"]["email"])
    page.goto(f"{base}/console/personalization")
    page.locator("summary", has_text="New evaluation").click()
    page.get_by_label("Id", exact=True).fill("from-console")
    page.get_by_label("From (UTC, RFC 3339)").fill("2026-01-01T00:00:00Z")
    page.get_by_label("To (UTC, RFC 3339)").fill("2026-01-03T00:00:00Z")
    page.get_by_label("Policies to compare").fill("steady: --cb_explore_adf --epsilon 0.05")
    page.get_by_role("button", name="Evaluate").click()
    page.wait_for_url(f"{base}/console/personalization?id=from-console")
    page.locator("#policies").wait_for()
    row = page.locator("#policies tr", has_text="steady")
    row.get_by_role("button", name="Apply").click()
    page.wait_for_url(f"{base}/console/personalization?id=from-console")
    policy = admin.get("/v1/personalizer/configurations/policy").json()
    assert policy["arguments"] == "--cb_explore_adf --epsilon 0.05"
    assert "--epsilon 0.05" in page.get_by_text("Learning policy in force").inner_text()
    # a bad window is refused with the API's reason, shown on the page
    page.locator("summary", has_text="New evaluation").click()
    page.get_by_label("Id", exact=True).fill("bad-window")
    page.get_by_label("From (UTC, RFC 3339)").fill("yesterday")
    page.get_by_role("button", name="Evaluate").click()
    assert page.get_by_role("alert").is_visible()
    assert [e for e in w.problems() if "status of 4" not in e] == []
