"""The `adserver` command line, run as a user would."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.procs import env_for, running, wait_ready


def adserver(
    *args: str, env: dict[str, str] | None = None, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "adserver", *args],
        env=env,
        input=input,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("command", ["control", "serve", "run", "demo", "seed", "keys", "train"])
def test_help(command: str) -> None:
    r = adserver(command, "--help")
    assert r.returncode == 0 and "usage: adserver" in r.stdout


def test_keys_create_list_revoke(tmp_path: Path) -> None:
    env = env_for(str(tmp_path))
    made = adserver("keys", "create", "--role", "readonly", "--name", "ci", env=env)
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert key.startswith("ak_")
    key_id = key.split("_")[1]
    listed = adserver("keys", "list", env=env)
    assert key_id in listed.stdout and key not in listed.stdout
    assert adserver("keys", "revoke", key_id, env=env).returncode == 0
    assert '"revoked_at":null' not in adserver("keys", "list", env=env).stdout
    assert adserver("keys", "revoke", "nosuch", env=env).returncode == 1
    r = adserver("keys", "create", "--role", "advertiser", env=env)
    assert r.returncode == 2 and "--advertiser" in r.stderr


def test_seed_then_key_for_a_seeded_advertiser(tmp_path: Path) -> None:
    env = env_for(str(tmp_path))
    r = adserver("seed", "--quiet", "--ads", "100", "--products", "200", "--users", "50", env=env)
    assert r.returncode == 0 and "100 ads" in r.stdout
    assert adserver("seed", "--quiet", env=env).returncode == 1  # not over an existing network
    r = adserver("keys", "create", "--role", "advertiser", "--advertiser", "2", env=env)
    assert r.returncode == 0, r.stderr


def test_demo_seeds_prints_where_things_are_and_serves(tmp_path: Path) -> None:
    env = env_for(str(tmp_path / "data"))
    del env["ADSERVER_ADMIN_KEY"]
    args = ["demo", "--api-port", "0", "--port", "0", "--ads", "120", "--products", "300"]
    with running(args, env, want=2) as proc:
        text = "".join(proc.output)
        key = next(w for line in proc.output for w in line.split() if w.startswith("ak_"))
        assert "management API" in text and "/docs" in text and "/api/v2" in text
        api, decisions = proc.urls["management API"], proc.urls["decision API"]
        r = httpx.get(api + "/v1/flights", headers={"X-Api-Key": key}, timeout=30)
        assert r.status_code == 200 and len(r.json()["data"]) == 12
        wait_ready(decisions)
        body = {
            "placements": [
                {"networkId": 1, "siteId": 1, "zoneIds": [11], "adTypes": [2, 3], "count": 3}
            ]
        }
        r = httpx.post(decisions + "/api/v2", json=body, timeout=30)
        assert r.status_code == 200 and "div0" in r.json()["decisions"]
        # the demo's shoppers make the reports show something
        deadline = time.monotonic() + 30
        while True:
            rows = httpx.get(
                api + "/v1/reports",
                params={"group_by": "flight"},
                headers={"X-Api-Key": key},
                timeout=30,
            ).json()["data"]
            if sum(row["impressions"] for row in rows) > 0:
                break
            assert time.monotonic() < deadline
            time.sleep(0.5)
        # ...and the control process trains a first CTR model from their clicks
        deadline = time.monotonic() + 150
        while True:
            active = httpx.get(api + "/v1/models", headers={"X-Api-Key": key}, timeout=30).json()[
                "ctr"
            ]["active"]
            if active is not None:
                break
            assert time.monotonic() < deadline, "no CTR model trained"
            time.sleep(1)
        made = httpx.get(
            f"{api}/v1/models/ctr/versions/{active}", headers={"X-Api-Key": key}, timeout=30
        ).json()
        assert made["source"] == "trainer" and made["status"] == "active"
        m = made["manifest"]["metrics"]
        assert m["logloss"] < made["manifest"]["baseline"]["prior"]["logloss"]
        deadline = time.monotonic() + 5  # the workers swap it in (they poll every 100 ms)
        while "ctr=" not in httpx.post(decisions + "/api/v2", json=body, timeout=30).headers.get(
            "x-adserver-models", ""
        ):
            assert time.monotonic() < deadline
            time.sleep(0.1)


def test_train_writes_a_model_into_the_inbox(sim_day: dict, tmp_path: Path) -> None:
    import shutil

    data = tmp_path / "data"
    shutil.copytree(sim_day["data"] / "events", data / "events")
    env = env_for(str(data))
    r = adserver(
        "train",
        "ctr",
        "--split",
        "random",
        "--bits",
        "16",
        "--label",
        "nightly",
        "--quiet",
        env=env,
    )
    assert r.returncode == 0, r.stderr
    assert "this model" in r.stdout and "prior" in r.stdout
    made = list((data / "models" / "inbox" / "ctr").iterdir())
    assert [p.name for p in made] == ["000001"]
    assert {p.name for p in made[0].iterdir()} == {"manifest.json", "features.json", "weights.npy"}
    r = adserver("train", "ctr", "--holdout", "1.5", env=env)
    assert r.returncode == 2
    r = adserver("train", "cvr", "--quiet", env=env_for(str(tmp_path / "empty")))
    assert r.returncode == 1 and "0 examples" in r.stderr


def test_json_logs_tell_each_publish_and_swap(tmp_path: Path) -> None:
    import json

    env = env_for(str(tmp_path))
    with running(
        ["run", "--api-port", "0", "--port", "0", "--log-format", "json"], env, want=2
    ) as proc:
        wait_ready(proc.urls["decision API"])
        with httpx.Client(
            base_url=proc.urls["management API"], headers={"X-Api-Key": env["ADSERVER_ADMIN_KEY"]}
        ) as admin:
            assert admin.post("/v1/networks", json={"name": "logged"}).status_code == 201

        def logged() -> list[dict]:
            return [json.loads(line) for line in list(proc.output) if line.startswith("{")]

        deadline = time.monotonic() + 20
        while not (
            sum("published" in r["msg"] for r in logged()) >= 2
            and any("now serves snapshot" in r["msg"] for r in logged())
        ):
            assert time.monotonic() < deadline, "".join(proc.output)
            time.sleep(0.1)
        record = next(r for r in logged() if "published" in r["msg"])
        assert record["level"] == "info" and record["logger"] == "adserver.publisher"
        assert record["ts"].endswith("Z") and isinstance(record["pid"], int)
        # every line a process logged is JSON (the URL announcements are plain prints)
        assert all(
            line.startswith("{") or line.startswith("adserver: ")
            for line in list(proc.output)
            if line.strip()
        ), "".join(proc.output)


def test_a_demo_restart_reuses_its_admin_key(tmp_path: Path) -> None:
    env = env_for(str(tmp_path / "data"))
    del env["ADSERVER_ADMIN_KEY"]
    args = [
        "demo",
        "--api-port",
        "0",
        "--port",
        "0",
        "--ads",
        "60",
        "--products",
        "100",
        "--no-traffic",
    ]

    def started() -> tuple[str, str]:
        with running(args, env, want=2) as proc:
            text = "".join(proc.output)
            key = next(w for line in proc.output for w in line.split() if w.startswith("ak_"))
            r = httpx.get(proc.urls["management API"] + "/v1/me", headers={"X-Api-Key": key})
            assert r.status_code == 200 and r.json()["role"] == "admin"
            return key, text

    first, text = started()
    saved = tmp_path / "data" / "demo-admin-key"
    assert "saved in" in text and saved.read_text().strip() == first
    assert saved.stat().st_mode & 0o777 == 0o600  # a password: its owner's only
    second, text = started()
    assert second == first and "kept in" in text
    listed = adserver("keys", "list", env=env).stdout
    assert listed.count('"created_by":"demo"') == 1, listed  # one key made, not two


def test_a_port_in_use_is_named_before_anything_is_seeded(tmp_path: Path) -> None:
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        env = env_for(str(tmp_path / "data"))
        r = adserver("demo", "--api-port", "0", "--port", str(port), env=env)
        assert r.returncode == 2
        assert f"decision API on 127.0.0.1:{port}" in r.stderr and "--port" in r.stderr
        assert "Traceback" not in r.stderr + r.stdout and "seeding" not in r.stdout
        assert not (tmp_path / "data" / "control.sqlite3").exists()
        r = adserver("control", "--api-port", str(port), env=env)
        assert r.returncode == 2 and "--api-port" in r.stderr and "Traceback" not in r.stderr


def _parsers() -> list:
    import argparse

    from adserver.cli import parser

    out, todo = [], [parser()]
    while todo:
        p = todo.pop()
        out.append(p)
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                todo.extend(action.choices.values())
    return out


def test_every_flag_has_help_and_shows_its_default() -> None:
    import argparse

    for p in _parsers():
        text = p.format_help()
        for action in p._actions:
            if action.help == argparse.SUPPRESS or isinstance(
                action, (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction)
            ):
                continue
            assert action.help, f"{p.prog}: {action.option_strings or action.dest} has no help"
            if action.default not in (None, False, [], "", argparse.SUPPRESS):
                assert (
                    f"default: {action.default}" in text.replace("\n", " ").replace("  ", " ")
                    or f"default {action.default}" in text
                ), (p.prog, action.dest)
