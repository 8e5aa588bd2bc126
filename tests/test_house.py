"""The house rules, checked on every run: lint and formatting (ruff), types (mypy on adserver/ with no
errors) and the architecture's import contracts (import-linter, pyproject.toml): the data
plane never imports the control plane, shared formats belong to neither, the kernels'
twins are for tests, no cycles within a plane. Each runs the real tool on the tree."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize(
    "tool, args",
    [
        ("ruff", ["check", "adserver", "tests", "bench", "loadtest"]),
        ("ruff", ["format", "--check", "adserver", "tests", "bench", "loadtest"]),
        ("mypy", ["adserver"]),
        ("lint-imports", []),
    ],
)
def test_the_tree_keeps_the_house_rules(tool: str, args: list[str]) -> None:
    r = run(str(BIN / tool), *args)
    assert r.returncode == 0, f"{tool} {' '.join(args)}:\n{r.stdout}\n{r.stderr}"


def test_modules_stay_under_500_lines() -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for p in (ROOT / "adserver").rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 500
    }
    assert not long, f"split by idea: {long}"


def test_public_modules_and_classes_say_what_they_are() -> None:
    import ast

    missing = []
    for path in sorted((ROOT / "adserver").rglob("*.py")):
        tree = ast.parse(path.read_text())
        name = str(path.relative_to(ROOT))
        if path.read_text().strip() and not ast.get_docstring(tree):
            missing.append(f"{name}: module")
        missing += [
            f"{name}:{node.lineno}: class {node.name}"
            for node in ast.walk(tree)
            if isinstance(node, ast.ClassDef)
            and not node.name.startswith("_")
            and not ast.get_docstring(node)
        ]
    assert not missing, "no docstring:\n" + "\n".join(missing)


def test_the_snapshot_format_binds_no_kernels() -> None:
    # (import-linter cannot see the compiled modules): binding is serving's (serving/bound.py)
    found = [
        f"{p.relative_to(ROOT)}: {line.strip()}"
        for p in sorted((ROOT / "adserver" / "snapshot").glob("*.py"))
        for line in p.read_text().splitlines()
        if "import" in line and any(m in line for m in ("_auction", "_sponsored", "_targeting"))
    ]
    assert not found, found


def test_the_package_top_holds_only_the_entry_points() -> None:
    # every other module belongs to a part: a plane, the shared layer (common, formats, web,
    # snapshot, wire), kernels, models (learn), training or tools
    loose = sorted(p.name for p in (ROOT / "adserver").glob("*.py"))
    assert loose == [
        "__init__.py",
        "__main__.py",
        "cli.py",
        "cli_learn.py",
        "cli_run.py",
        "cli_users.py",
        "config.py",
        "logs.py",
    ], f"put these in a part: {loose}"
