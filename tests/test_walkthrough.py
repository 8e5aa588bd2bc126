"""The README's "Your first campaign" walkthrough, run as written against a fresh demo: its
commands stay true or this fails."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from tests.procs import env_for, running, wait_ready

ROOT = Path(__file__).resolve().parent.parent


def walkthrough() -> str:
    text = (ROOT / "README.md").read_text()
    found = re.search(
        r"<!-- walkthrough:begin -->\n```sh\n(.*?)```\n<!-- walkthrough:end -->", text, re.S
    )
    assert found, "README.md has no walkthrough block"
    return found[1]


def test_the_readme_walkthrough_runs(tmp_path: Path) -> None:
    assert shutil.which("jq") and shutil.which("curl"), "the walkthrough needs curl and jq"
    data = tmp_path / "indexes"
    env = env_for(str(data))
    del env["ADSERVER_ADMIN_KEY"]
    args = [
        "demo",
        "--api-port",
        "0",
        "--port",
        "0",
        "--ads",
        "80",
        "--products",
        "300",
        "--no-traffic",
    ]
    with running(args, env, want=2) as proc:
        wait_ready(proc.urls["decision API"])
        shell = {**env, "API": proc.urls["management API"], "DEC": proc.urls["decision API"]}
        # KEY is read from indexes/demo-admin-key, as a user in the project directory would
        r = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", walkthrough()],
            cwd=tmp_path,
            env=shell,
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert r.returncode == 0, f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}"
        assert "not approved (pending)" in r.stdout  # the explain before approval
