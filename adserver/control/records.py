"""What an event or decision record must be for the aggregator to count it: its kind's fields,
each in range (ids, times, money, counts), so every total stays an integer far below 2^63.
A record that is not is quarantined, never counted (control/quarantine.py)."""

from __future__ import annotations

from typing import Any

from adserver.common.entities import MAX_AMOUNT, MAX_BID
from adserver.control.quarantine import Poison

ID_MAX = 2**62
MONEY_MICROS_MAX = MAX_AMOUNT * 1_000_000


def _int(rec: dict[str, Any], name: str, low: int, high: int, default: Any = None) -> None:
    value = rec.get(name, default)
    if type(value) is not int or not low <= value <= high:
        raise Poison(f"{name}: {value!r} is not an integer from {low} to {high}")


def check_record(rec: Any) -> None:
    """Raise Poison unless `rec` has the shape and ranges its kind needs. The edges check all
    of this already; a record written by an older version, or a bug, must not reach the
    ledger (every total stays an integer far below 2^63)."""
    if not isinstance(rec, dict):
        raise Poison(f"not a record: {type(rec).__name__}")
    ts = rec.get("ts")
    if not isinstance(ts, (int, float)) or isinstance(ts, bool) or not 1e9 <= ts <= 2**33:
        raise Poison(f"ts: {ts!r} is not a time")
    t = rec.get("t")
    if t in ("imp", "click", "event"):
        for name in (
            "ad",
            "flight",
            "creative",
            "campaign",
            "advertiser",
            "site",
            "zone",
            "network",
        ):
            _int(rec, name, 0, ID_MAX)
        _int(rec, "price", 0, MAX_BID * 1_000_000)
        _int(rec, "rate", 0, 16)
        _int(rec, "mult", 1, 10_000, 1)
        _int(rec, "ev", -1, 1_000_000)
        for name in ("override", "additional", "gmv"):
            _int(rec, name, 0, MONEY_MICROS_MAX, 0)
        for name in ("id", "user"):
            if not isinstance(rec.get(name), str):
                raise Poison(f"{name}: not a string")
    elif t == "conv":
        _int(rec, "network", 0, ID_MAX)
        _int(rec, "revenue", 0, MONEY_MICROS_MAX, 0)
        items = rec.get("items")
        if not isinstance(items, list) or not items:
            raise Poison("items: not a list of items")
        for item in items:
            if not (
                isinstance(item, list)
                and len(item) == 3
                and isinstance(item[0], str)
                and type(item[1]) is int
                and 0 <= item[1] <= MONEY_MICROS_MAX
                and type(item[2]) is int
                and 1 <= item[2] <= 100_000
            ):
                raise Poison(f"items: {item!r} is not [product id, micros, quantity]")
    elif t == "d":
        for placement in rec.get("placements") or ():
            for value in placement[4:7]:
                if type(value) is not int or not 0 <= value <= ID_MAX:
                    raise Poison(f"placements: site/zone/network {value!r} is not an id")


def network_of(rec: Any) -> int | None:
    """The network a record names, when it names one plausibly (for the quarantine row)."""
    if isinstance(rec, dict):
        net = rec.get("network")
        if type(net) is int and 0 <= net <= ID_MAX:
            return net
    return None
