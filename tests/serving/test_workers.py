"""Several workers on one socket; a worker killed with SIGKILL is replaced."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx

from tests.serving.conftest import golden_stack

BODY = {"placements": [{"networkId": 1, "siteId": 1, "zoneIds": [1], "adTypes": [2]}]}


def workers_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid and b"worker" in cmd:
            found.append(int(entry.name))
    return sorted(found)


def test_two_workers_and_restart_after_kill(tmp_path: Path) -> None:
    with golden_stack(tmp_path, ADSERVER_WORKERS="2") as s:
        proc, url = s.proc, s.decisions
        with httpx.Client(base_url=url, timeout=10) as c:
            pids = workers_of(proc.popen.pid)
            assert len(pids) == 2
            os.kill(pids[0], signal.SIGKILL)
            deadline = time.monotonic() + 30
            while True:  # the supervisor starts a replacement
                now = workers_of(proc.popen.pid)
                if len(now) == 2 and pids[0] not in now:
                    break
                assert time.monotonic() < deadline, now
                time.sleep(0.1)
            ok = 0
            deadline = time.monotonic() + 30
            while ok < 200:  # the socket keeps answering from the survivor and the new one
                assert time.monotonic() < deadline
                try:
                    r = c.post("/api/v2", json=BODY)
                    ok += r.status_code == 200 and r.json()["decisions"]["div0"] is not None
                except httpx.TransportError:
                    time.sleep(0.05)
            text = c.get("/metrics").text
            assert "adserver_decision_requests_total" in text
