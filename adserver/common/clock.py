"""The time the decision and tracking paths read: the wall clock, or the accelerated clock of
`adserver simulate` (adserver/tools/simulate.py), which replays a day through the real app."""

from __future__ import annotations

import time
from collections.abc import Callable

_now: Callable[[], float] = time.time


def now() -> float:
    return _now()


def use(source: Callable[[], float] | None) -> None:
    """Read time from `source` from now on (None: the wall clock again)."""
    global _now
    _now = source or time.time
