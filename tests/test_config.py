"""Settings: sources, precedence, and every error reported at once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from adserver.config import Config, ConfigError, load


def test_defaults_are_the_documented_ones() -> None:
    c = load(env={})
    assert (c.host, c.port, c.api_host, c.api_port) == ("127.0.0.1", 8080, "127.0.0.1", 8081)
    assert c.data_dir == "./indexes" and c.workers == 1 and c.admin_key is None


def test_precedence_file_then_env_then_flags(tmp_path: Path) -> None:
    f = tmp_path / "adserver.toml"
    f.write_text('[adserver]\nport = 9000\nworkers = 2\ndata_dir = "/srv/ads"\n')
    c = load(env={"ADSERVER_WORKERS": "3"}, flags={"data_dir": "/x"}, path=str(f))
    assert (c.port, c.workers, c.data_dir) == (9000, 3, "/x")
    c = load(env={"ADSERVER_CONFIG": str(f)})
    assert c.port == 9000


def test_every_invalid_setting_is_named(tmp_path: Path) -> None:
    f = tmp_path / "bad.toml"
    f.write_text("log_level = 'loud'\n")
    with pytest.raises(ConfigError) as err:
        load(
            env={
                "ADSERVER_PORT": "http",
                "ADSERVER_WORKERS": "0",
                "ADSERVER_COLOUR": "red",
                "ADSERVER_TIME_ZONE": "Mars/Olympus",
                "ADSERVER_ADMIN_KEY": "short",
            },
            flags={"api_port": 70000},
            path=str(f),
        )
    named = {e.field for e in err.value.errors}
    assert named == {
        "ADSERVER_PORT",
        "ADSERVER_WORKERS",
        "ADSERVER_COLOUR",
        "--api-port",
        "ADSERVER_ADMIN_KEY",
        "ADSERVER_TIME_ZONE",
        f"{f}: log_level",
    }
    assert "Mars/Olympus" in str(err.value)


def test_unreadable_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "x.toml").write_text("port = [")
    with pytest.raises(ConfigError, match="cannot read config file"):
        load(env={}, path=str(tmp_path / "x.toml"))


def test_same_port_twice_is_refused() -> None:
    with pytest.raises(ConfigError, match="ADSERVER_API_PORT: must differ from port"):
        load(env={"ADSERVER_PORT": "9000", "ADSERVER_API_PORT": "9000"})


def test_cli_exits_non_zero_listing_errors(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "ADSERVER_WORKERS": "none", "ADSERVER_PORT": "-1"}
    r = subprocess.run(
        [sys.executable, "-m", "adserver", "control"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2
    assert "ADSERVER_WORKERS" in r.stderr and "ADSERVER_PORT" in r.stderr


def test_config_struct_documents_each_setting() -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    for name in Config.__struct_fields__:
        assert f"ADSERVER_{name.upper()}" in readme, name
