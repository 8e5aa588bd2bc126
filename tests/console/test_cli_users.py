"""`adserver users`: create (a made password printed once, or one read from stdin), list
(never a hash), password and disable (both end sessions); bad fields named, exit 2."""

from __future__ import annotations

import json
from pathlib import Path

from adserver.control.console import users
from adserver.control.store import Store
from tests.test_cli import adserver


def test_users_from_the_command_line(tmp_path: Path) -> None:
    data = str(tmp_path)
    store = Store(data)
    with store.transaction() as db:
        db.execute(
            "INSERT INTO networks (id, name, time_zone, created_at, updated_at)"
            " VALUES (1, 'N', 'UTC', 'now', 'now')"
        )
    store.close()
    r = adserver(
        "users", "create", "--data-dir", data, "--email", "ops@example.com", "--role", "admin"
    )
    assert r.returncode == 0, r.stderr
    made = r.stdout.split("password: ", 1)[1].split()[0]
    assert json.loads(r.stdout.splitlines()[0])["role"] == "admin"
    store = Store(data)
    assert users.sign_in(store, "ops@example.com", made) is not None
    token, _ = users.sign_in(store, "ops@example.com", made) or ("", None)
    store.close()

    listed = adserver("users", "list", "--data-dir", data)
    assert "ops@example.com" in listed.stdout and "argon2" not in listed.stdout

    r = adserver(
        "users",
        "password",
        "--data-dir",
        data,
        "--email",
        "ops@example.com",
        "--password-stdin",
        input="a new long password\n",
    )
    assert r.returncode == 0 and "password:" not in r.stdout
    store = Store(data)
    assert users.session(store, token) is None  # the old password's sessions ended
    assert users.sign_in(store, "ops@example.com", made) is None
    assert users.sign_in(store, "ops@example.com", "a new long password") is not None
    store.close()

    r = adserver(
        "users",
        "create",
        "--data-dir",
        data,
        "--email",
        "nope",
        "--role",
        "advertiser",
        "--password-stdin",
        input="short\n",
    )
    assert r.returncode == 2
    assert "email:" in r.stderr and "password:" in r.stderr and "advertiser_id:" in r.stderr
    assert (
        adserver("users", "disable", "--data-dir", data, "--email", "x@y.example").returncode == 1
    )
    assert (
        adserver("users", "disable", "--data-dir", data, "--email", "ops@example.com").returncode
        == 0
    )
    store = Store(data)
    assert users.sign_in(store, "ops@example.com", "a new long password") is None
    store.close()
