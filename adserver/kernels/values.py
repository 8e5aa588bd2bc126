"""How the targeting expressions compare a property's scalar, for the compiler of their
programs (adserver/snapshot/programs.py) and the filter's plain-Python twin alike: its
canonical text for equality, its number for comparisons."""

from __future__ import annotations

import math
from typing import Any


def canon(value: Any) -> str:
    """The canonical text of a scalar: how equality compares it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def number(value: Any) -> float:
    """The numeric value of a scalar, NaN when it has none (booleans have none)."""
    if isinstance(value, bool):
        return math.nan
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            x = float(value)
        except ValueError:
            return math.nan
        return x if math.isfinite(x) else math.nan
    return math.nan
