"""What the project declares about itself matches what it ships: the license."""

from __future__ import annotations

import os
import tomllib
from importlib import metadata

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_the_license_file_is_the_declared_license() -> None:
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as src:
        project = tomllib.load(src)["project"]
    assert project["license"] == "Apache-2.0" and project["license-files"] == ["LICENSE"]
    with open(os.path.join(ROOT, "LICENSE")) as src:
        text = src.read()
    assert text.split()[:3] == ["Apache", "License", "Version"] and "2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
    # the installed package says so too
    assert metadata.metadata("adserver")["License-Expression"] == "Apache-2.0"
