"""Snapshots swap under traffic without a failed request, and changes serve within 2 s."""

from __future__ import annotations

import httpx

from tests.serving.conftest import Stack, traffic

BODY = {"placements": [{"networkId": 1, "siteId": 1, "zoneIds": [2], "adTypes": [2]}]}
PUBLISHES = 20


def test_publishes_under_traffic(stack: Stack) -> None:
    def observe(r: httpx.Response) -> tuple[int, str, str]:
        title = r.json()["decisions"]["div0"]["contents"][0]["data"]["title"]
        return r.status_code, r.headers["x-adserver-snapshot"], title

    delays = []
    with traffic(stack.decisions, BODY, observe) as seen:
        for i in range(PUBLISHES):
            title = f"swap {i}"
            assert stack.admin.patch("/v1/creatives/2", json={"title": title}).status_code == 200
            delays.append(stack.wait_for(lambda: bool(seen) and seen[-1][2] == title, 5))
    failures = [s for s in seen if s[0] != 200]
    assert not failures, failures[:5]
    assert len(seen) > PUBLISHES * 5
    assert max(delays) < 2.0, delays
    # every response is consistent with exactly one snapshot version
    by_version: dict[str, set[str]] = {}
    for _, version, title in seen:
        by_version.setdefault(version, set()).add(title)
    assert all(len(titles) == 1 for titles in by_version.values()), by_version
    order = [int(v) for v in sorted(by_version, key=int)]
    titles = [next(iter(by_version[f"{v:08d}"])) for v in order]
    swaps = [t for t in titles if t.startswith("swap ")]
    assert swaps == sorted(swaps, key=lambda t: int(t.split()[1]))
    assert len(swaps) == PUBLISHES
