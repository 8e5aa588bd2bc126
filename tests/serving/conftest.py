from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.procs import ADMIN_KEY, Proc, env_for, running, wait_ready
from tests.serving.shop import shop  # noqa: F401  (a session fixture)

GOLDEN = Path(__file__).parents[1] / "golden"


class Stack:
    """A running `adserver run` (control + one decision worker) on ephemeral ports."""

    def __init__(self, proc: Proc, data_dir: Path):
        self.proc = proc
        self.data_dir = data_dir
        self.api = proc.urls["management API"]
        self.decisions = proc.urls["decision API"]
        self.admin = httpx.Client(base_url=self.api, headers={"X-Api-Key": ADMIN_KEY}, timeout=30)
        self.client = httpx.Client(base_url=self.decisions, timeout=30)

    def decide(self, body: dict, **kw: object) -> httpx.Response:
        return self.client.post("/api/v2", json=body, **kw)  # type: ignore[arg-type]

    def start_golden(self) -> None:
        """Build the golden network and wait until the decision server serves all of it."""
        wait_ready(self.decisions)
        build_golden_network(self.admin)
        probe = {
            "placements": [
                {"networkId": 1, "siteId": 1, "zoneIds": [1], "adTypes": [2], "flightId": 8}
            ],
            "geo": {"country": "US", "region": "CA"},
        }
        self.wait_for(lambda: self.decide(probe).json()["decisions"]["div0"] is not None)

    def wait_for(self, check: object, timeout: float = 10) -> float:
        """Seconds until check() holds (polling decisions)."""
        started = time.monotonic()
        while not check():  # type: ignore[operator]
            if time.monotonic() - started > timeout:
                raise AssertionError(f"not true after {timeout}s")
            time.sleep(0.02)
        return time.monotonic() - started


@contextlib.contextmanager
def traffic(
    url: str,
    body: dict,
    observe: Callable[[httpx.Response], Any],
    threads: int = 2,
    limit_s: float = 120,
) -> Iterator[list[Any]]:
    """Decision requests from `threads` threads until the block ends (and never longer than
    `limit_s`); yields the list of `observe(response)` values, in arrival order, with
    (0, "", error text) for a request (or an observation) that raised."""
    seen: list[Any] = []
    stop = threading.Event()

    def loop() -> None:
        with httpx.Client(base_url=url, timeout=10) as c:
            deadline = time.monotonic() + limit_s  # bounded even if the test fails
            while not stop.is_set() and time.monotonic() < deadline:
                try:
                    seen.append(observe(c.post("/api/v2", json=body)))
                except Exception as e:  # counted as a failure by the caller
                    seen.append((0, "", repr(e)))

    workers = [threading.Thread(target=loop) for _ in range(threads)]
    for t in workers:
        t.start()
    try:
        yield seen
    finally:
        stop.set()
        for t in workers:
            t.join()


def build_golden_network(admin: httpx.Client) -> None:
    for path, body in json.loads((GOLDEN / "network.json").read_text())["create"]:
        r = admin.post(f"/v1/{path}", json=body)
        assert r.status_code == 201, (path, r.text)


@contextlib.contextmanager
def golden_stack(data: Path, **env: str) -> Iterator[Stack]:
    """`adserver run` over `data` on ephemeral ports, serving the golden network."""
    with running(
        ["run", "--api-port", "0", "--port", "0"], env_for(str(data), **env), want=2
    ) as proc:
        s = Stack(proc, data)
        s.start_golden()
        try:
            yield s
        finally:
            s.admin.close()
            s.client.close()


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with golden_stack(tmp_path_factory.mktemp("stack")) as s:
        yield s
