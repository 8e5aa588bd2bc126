"""A short, bounded locust run of the storefront scenario against `adserver demo`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.procs import ADMIN_KEY, env_for, running, wait_ready

ROOT = Path(__file__).parents[2]


def test_storefront_load_finds_no_failures(tmp_path: Path) -> None:
    env = env_for(str(tmp_path / "data"))
    args = ["demo", "--no-traffic", "--api-port", "0", "--port", "0"]
    with running(args, env, want=2) as proc:
        url = proc.urls["decision API"]
        wait_ready(url)
        locust = Path(sys.executable).parent / "locust"
        r = subprocess.run(
            [
                str(locust),
                "-f",
                str(ROOT / "loadtest" / "locustfile.py"),
                "--headless",
                "-u",
                "20",
                "-r",
                "10",
                "-t",
                "12s",
                "--host",
                url,
                "--only-summary",
                "--stop-timeout",
                "5",
                "--exit-code-on-error",
                "1",
            ],
            env={**os.environ, "ADSERVER_ADMIN_KEY": ADMIN_KEY, "LOAD_CLICK_RATE": "0.2"},
            capture_output=True,
            text=True,
            timeout=120,
        )
    report = r.stdout + r.stderr
    assert r.returncode == 0, report[-3000:]
    assert "decide search" in report and "impression" in report and "click" in report
    agg = next(line for line in report.splitlines() if line.strip().startswith("Aggregated"))
    assert " 0(0.00%)" in agg, agg
