"""Compile targeting into the flat arrays the filter kernel runs, and encode request
properties the same way. Both planes use this module, so the hashes agree.

Semantics (the reference twin in adserver/kernels/targeting_ref.py states them on the AST):
a property path names every scalar under it (lists fan out); `==` holds when any of them
equals the value (strings, booleans and numbers compare by their canonical text, numbers
also numerically); `!=` is `not ==`; `< <= > >=` hold when any numeric value satisfies them;
`contains` holds when any value equals the operand or, for a string operand, contains it;
`exists` holds when the path has any value.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from adserver.common.hashing import hash_str
from adserver.kernels.values import canon, number
from adserver.snapshot import format as f

PROP_SEED = 0x70726F70
GEO_SEED = 0x67656F


def key_id(path: str) -> int:
    return hash_str(path, PROP_SEED)


def str_id(value: Any) -> int:
    return hash_str(canon(value), PROP_SEED)


def geo_id(value: str | None) -> int:
    """Id of a geo name (country, region, metro or city), 0 when absent."""
    return 0 if not value else hash_str(value.strip().lower(), GEO_SEED)


Instruction = tuple[int, int, float, int, int]  # op, key, num, str, arg


def compile_expr(ast: tuple, strings: list[str]) -> list[Instruction]:
    """Postfix instructions of an expression AST; string operands of `contains` go to
    `strings` (their index is the instruction's arg)."""
    out: list[Instruction] = []
    nan = math.nan

    def eq(path: str, value: Any) -> None:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out.append((f.OP_EQ_NUM, key_id(path), float(value), 0, 0))
        else:
            out.append((f.OP_EQ_STR, key_id(path), nan, str_id(value), 0))

    def walk(node: tuple) -> None:
        kind = node[0]
        if kind in ("and", "or"):
            for child in node[1:]:
                walk(child)
            out.append((f.OP_AND if kind == "and" else f.OP_OR, 0, nan, 0, len(node) - 1))
        elif kind == "not":
            walk(node[1])
            out.append((f.OP_NOT, 0, nan, 0, 0))
        elif kind == "exists":
            out.append((f.OP_EXISTS, key_id(node[1]), nan, 0, 0))
        elif kind == "cmp":
            op, path, value = node[1], node[2], node[3]
            if op in ("==", "!="):
                eq(path, value)
                if op == "!=":
                    out.append((f.OP_NOT, 0, nan, 0, 0))
            else:
                code = {"<": f.OP_LT, "<=": f.OP_LE, ">": f.OP_GT, ">=": f.OP_GE}[op]
                out.append((code, key_id(path), float(value), 0, 0))
        elif kind == "in":
            for value in node[2]:
                eq(node[1], value)
            if len(node[2]) > 1:
                out.append((f.OP_OR, 0, nan, 0, len(node[2])))
        elif kind == "contains":
            value = node[2]
            if isinstance(value, str):
                strings.append(value)
                out.append((f.OP_CONTAINS, key_id(node[1]), nan, str_id(value), len(strings) - 1))
            else:
                eq(node[1], value)
        else:  # pragma: no cover - the parser makes no other nodes
            raise ValueError(kind)

    walk(ast)
    return out


class Properties:
    """A request's `properties`, flattened into parallel arrays the kernel reads."""

    __slots__ = ("key", "num", "str", "raw")

    def __init__(self, props: dict[str, Any] | None):
        keys: list[int] = []
        nums: list[float] = []
        strs: list[int] = []
        self.raw: list[str | None] = []

        def add(path: str, value: Any) -> None:
            if value is None:
                return
            if isinstance(value, dict):
                for k, v in value.items():
                    add(f"{path}.{k}", v)
            elif isinstance(value, list):
                for v in value:
                    add(path, v)
            else:
                keys.append(key_id(path))
                nums.append(number(value))
                strs.append(str_id(value))
                self.raw.append(value if isinstance(value, str) else None)

        for k, v in (props or {}).items():
            add(k, v)
        self.key = np.array(keys, dtype=np.uint64)
        self.num = np.array(nums, dtype=np.float64)
        self.str = np.array(strs, dtype=np.uint64)


def daypart_mask(dayparts: list[Any]) -> tuple[int, int, int]:
    """Three 64-bit words with bit (day * 24 + hour) set for every allowed hour; all ones
    when there are no dayparts."""
    if not dayparts:
        bits = (1 << 168) - 1
    else:
        bits = 0
        for part in dayparts:
            for d in part.days:
                for h in range(part.start_hour, part.end_hour):
                    bits |= 1 << (d * 24 + h)
    mask = (1 << 64) - 1
    return bits & mask, (bits >> 64) & mask, (bits >> 128) & mask


NO_PROPERTIES = Properties(None)
_PROPERTIES: dict[tuple[Any, ...], Properties] = {}
PROPERTIES_CACHE = 4096


def properties(props: dict[str, Any] | None) -> Properties:
    """`Properties(props)`, shared between requests whose properties are the same flat
    scalars (placements repeat them: page types, categories); never modified after."""
    if not props:
        return NO_PROPERTIES
    # with the value types: True == 1 and hash alike, but compare as "true" and "1"
    key = (*props.items(), *map(type, props.values()))
    try:
        found = _PROPERTIES.get(key)
    except TypeError:  # a list or object value: not hashable, flatten it each time
        return Properties(props)
    if found is None:
        if len(_PROPERTIES) >= PROPERTIES_CACHE:
            _PROPERTIES.clear()
        found = _PROPERTIES[key] = Properties(props)
    return found
