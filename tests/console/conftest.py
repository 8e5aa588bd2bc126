"""A control process with two networks, each with an advertiser and a campaign, and console
users: a global admin, and one advertiser user per network (created through the API with the
bootstrap key, as an operator would)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.control.network import build, created
from tests.serving.shop import shop  # noqa: F401  (a session fixture: a real adserver run)

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def world(admin: httpx.Client, control: str) -> dict[str, Any]:
    a = build(admin, "Console A")
    b = build(admin, "Console B")
    for side, name in ((a, "Spring of A"), (b, "Spring of B")):  # build() names both "Spring"
        r = admin.patch(f"/v1/campaigns/{side['campaign']['id']}", json={"name": name})
        assert r.status_code == 200, r.text
        side["campaign"] = r.json()
        r = admin.patch(f"/v1/flights/{side['flight']['id']}", json={"name": f"Flight {name}"})
        assert r.status_code == 200, r.text
        side["flight"] = r.json()
    suffix = f"{a['network']['id']}"
    people = {
        "admin": {"email": f"ops{suffix}@example.com", "role": "admin"},
        "a": {
            "email": f"buyer-a{suffix}@example.com",
            "role": "advertiser",
            "advertiser_id": a["advertiser"]["id"],
        },
        "b": {
            "email": f"buyer-b{suffix}@example.com",
            "role": "advertiser",
            "advertiser_id": b["advertiser"]["id"],
        },
    }
    for who in people.values():
        created(admin, "/v1/users", {**who, "password": PASSWORD})
    return {"url": control, "a": a, "b": b, "people": people}


class Console:
    """A signed-in console session over plain HTTP (the session cookie is Secure, so it is
    sent by hand: an http client's jar keeps Secure cookies for https)."""

    def __init__(self, url: str):
        self.http = httpx.Client(base_url=url, timeout=30, follow_redirects=False)
        self.session = ""
        self.csrf = ""

    def login_form(self) -> tuple[str, str]:
        r = self.http.get("/console/login")
        assert r.status_code == 200
        token = r.cookies["adserver_login"]
        return token, _csrf(r.text)

    def sign_in(self, email: str, password: str = PASSWORD) -> httpx.Response:
        token, csrf = self.login_form()
        r = self.http.post(
            "/console/login",
            data={"email": email, "password": password, "csrf": csrf},
            headers={"cookie": f"adserver_login={token}"},
        )
        if r.status_code == 303:
            self.session = r.cookies["adserver_session"]
            self.csrf = _csrf(self.get("/console/").text)
        return r

    def get(self, path: str) -> httpx.Response:
        return self.http.get(path, headers={"cookie": f"adserver_session={self.session}"})

    def post(self, path: str, data: dict[str, Any], csrf: bool = True) -> httpx.Response:
        form = {**data, **({"csrf": self.csrf} if csrf else {})}
        return self.http.post(
            path, data=form, headers={"cookie": f"adserver_session={self.session}"}
        )


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page has no CSRF field"
    return found.group(1)


@pytest.fixture
def console(world: dict[str, Any]) -> Iterator[Any]:
    def make(who: str | None = None) -> Console:
        c = Console(world["url"])
        if who is not None:
            r = c.sign_in(world["people"][who]["email"])
            assert r.status_code == 303, r.text
        made.append(c)
        return c

    made: list[Console] = []
    yield make
    for c in made:
        c.http.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    path = shutil.which("chromium")
    assert path, "the tests need the system's chromium (./dev installs it)"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=["--no-sandbox"])
        yield b
        b.close()
