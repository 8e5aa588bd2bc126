"""Field-by-field validation on top of msgspec, reporting every bad field at once.

msgspec stops at the first error. Settings and API bodies should report all of them, each with
the field's name, so this module converts one field at a time against the Struct's declared
type, then builds the Struct, then runs its `check()` (cross-field rules) if it has one.
Every Decimal in a validated Struct is money: non-negative, at most six decimal places.
"""

from __future__ import annotations

import datetime
import decimal
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

import msgspec

T = TypeVar("T", bound=msgspec.Struct)

MONEY_PLACES = 6
EARLIEST, LATEST = datetime.datetime(1971, 1, 1), datetime.datetime(2199, 12, 31)
"""The times a field takes (a year-1 date would overflow when moved to UTC)."""
MONEY_MAX = 10**9
"""Largest amount of money any field takes: as nanos (x 1e9) it still fits in int64."""


class FieldError(msgspec.Struct, frozen=True):
    """One bad field: its name (dotted path) and what is wrong with it."""

    field: str
    message: str


class Invalid(Exception):
    """Raised with every FieldError found; the API answers it with 400 and the list."""

    def __init__(self, errors: list[FieldError]):
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = errors


def _msgspec_message(err: msgspec.ValidationError, field: str) -> FieldError:
    # msgspec says "Expected `int`, got `str` - at `$.a[0]`"; rebase the path on the field name.
    text = str(err)
    path = field
    if " - at `$" in text:
        text, _, at = text.partition(" - at `$")
        path = field + at.rstrip("`")
    return FieldError(path, text.replace("`", ""))


def decimal_errors(obj: Any, path: str = "") -> Iterator[FieldError]:
    """Money rules over every Decimal, and the range of every datetime, reachable from a
    Struct, list or dict."""
    if isinstance(obj, decimal.Decimal):
        if not obj.is_finite():
            yield FieldError(path, "must be a finite amount")
        elif obj < 0:
            yield FieldError(path, "must not be negative")
        elif obj > MONEY_MAX:
            yield FieldError(path, f"must be at most {MONEY_MAX:,}")
        elif obj.as_tuple().exponent < -MONEY_PLACES:  # type: ignore[operator]
            yield FieldError(path, f"at most {MONEY_PLACES} decimal places")
    elif isinstance(obj, datetime.datetime):
        if not EARLIEST <= obj.replace(tzinfo=None) <= LATEST:
            yield FieldError(path, f"must lie between {EARLIEST.year} and {LATEST.year}")
    elif isinstance(obj, msgspec.Struct):
        for name in obj.__struct_fields__:
            yield from decimal_errors(getattr(obj, name), f"{path}.{name}" if path else name)
    elif isinstance(obj, (list, tuple)):
        for i, item in enumerate(obj):
            yield from decimal_errors(item, f"{path}[{i}]")
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from decimal_errors(v, f"{path}.{k}")


def convert(
    cls: type[T],
    data: Any,
    *,
    strict: bool = True,
    name_of: Callable[[str], str] = str,
) -> T:
    """Build `cls` from a mapping, raising Invalid with every bad field.

    `strict=False` lets strings stand for numbers and booleans (environment variables).
    `name_of` maps a field name to how the user wrote it (a flag, an environment variable).
    """
    if not isinstance(data, Mapping):
        raise Invalid([FieldError("$", "expected a JSON object")])
    fields = {f.encode_name: f for f in msgspec.structs.fields(cls)}
    errors = [FieldError(name_of(k), "unknown field") for k in data if k not in fields]
    good = {}
    for key, info in fields.items():
        if key not in data:
            if info.required:
                errors.append(FieldError(name_of(key), "required"))
            continue
        try:
            value = msgspec.convert(data[key], info.type, strict=strict)
        except msgspec.ValidationError as e:
            errors.append(_msgspec_message(e, name_of(key)))
            continue
        money = [FieldError(name_of(e.field), e.message) for e in decimal_errors(value, key)]
        if money:
            errors.extend(money)
        else:
            good[key] = data[key]
    bad = {e.field for e in errors}
    try:
        # Built from the good fields only, so cross-field rules still report on them.
        obj = msgspec.convert(good, cls, strict=strict)
    except msgspec.ValidationError as e:  # a required field is bad, or a __post_init__ rule
        if not errors:
            errors.append(_msgspec_message(e, "$"))
        errors.extend(
            FieldError(name_of(f), m)
            for f, m in _rules_without(cls, fields, good, strict)
            if name_of(f) not in bad
        )
        raise Invalid(errors) from None
    check = getattr(obj, "check", None)
    later = check() if check is not None else []
    errors.extend(
        FieldError(name_of(e.field), e.message) for e in later if name_of(e.field) not in bad
    )
    if errors:
        raise Invalid(errors)
    return obj


# Values tried, in order, to stand in for a bad required field (the first and the last that
# its type accepts): so the other fields' rules are still checked.
_STAND_INS: list[Any] = [
    1,
    1000,
    2**31 - 1,
    "x",
    "zz",
    "1971-01-02T00:00:00Z",
    "2199-01-01T00:00:00Z",
    False,
    True,
    [],
    {},
]


def _rules_without(
    cls: type, fields: dict[str, Any], good: dict[str, Any], strict: bool
) -> list[tuple[str, str]]:
    """The cross-field rules (`check()`) that fail whatever the bad or absent required fields
    hold: each one stands in once as the lowest and once as the highest value its type takes,
    and only the errors both objects report are kept (a rule that depends on a bad field's
    value is not reported until that field is fixed). Empty when no stand-in fits."""
    missing = [k for k, info in fields.items() if info.required and k not in good]
    if not missing:
        return []
    objects: list[Any] = []
    for pick in (0, -1):
        values = dict(good)
        for k in missing:
            tp = fields[k].type
            options = [v for v in [*_STAND_INS, *_literals(tp)] if _fits(v, tp, strict)]
            if not options:
                return []
            values[k] = options[pick]
        try:
            objects.append(msgspec.convert(values, cls, strict=strict))
        except msgspec.ValidationError:
            return []
    found = [[(e.field, e.message) for e in getattr(o, "check", lambda: [])()] for o in objects]
    return [e for e in found[0] if e in found[1]]


def _literals(tp: Any) -> tuple[Any, ...]:
    import typing

    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    return typing.get_args(tp) if typing.get_origin(tp) is typing.Literal else ()


def _fits(value: Any, tp: Any, strict: bool) -> bool:
    try:
        msgspec.convert(value, tp, strict=strict)
    except msgspec.ValidationError:
        return False
    return True


MAX_DEPTH = 32
"""Deepest nesting of arrays and objects a JSON body may have."""
TOO_DEEP = "the body is nested too deeply (a JSON body holds at most a few hundred levels)"
"""What a typed decoder's RecursionError is answered with (400)."""
INT64 = 2**63 - 1


def check_json(value: Any, max_depth: int = MAX_DEPTH) -> None:
    """Raise Invalid naming the place where a decoded JSON value nests deeper than
    `max_depth` or holds an integer outside int64 (what SQLite and msgpack can store)."""
    stack: list[tuple[Any, str, int]] = [(value, "$", 0)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth >= max_depth:
                raise Invalid([FieldError(path, f"nested deeper than {max_depth} levels")])
            children = (
                ((f"{path}.{k}", v) for k, v in item.items())
                if isinstance(item, dict)
                else ((f"{path}[{i}]", v) for i, v in enumerate(item))
            )
            stack.extend((v, where, depth + 1) for where, v in children)
        elif isinstance(item, int) and not isinstance(item, bool) and not -INT64 <= item <= INT64:
            raise Invalid(
                [
                    FieldError(
                        path.removeprefix("$.") or "$",
                        "integer out of range (at most 2^63 - 1 in size)",
                    )
                ]
            )


def json_body(raw: bytes, max_depth: int = MAX_DEPTH) -> Any:
    """A request body decoded as JSON, or Invalid ("$": not JSON, nested too deep, an
    integer beyond int64) with the place named."""
    try:
        value = msgspec.json.decode(raw)
    except RecursionError:
        raise Invalid([FieldError("$", f"nested deeper than {max_depth} levels")]) from None
    except msgspec.DecodeError as e:
        raise Invalid([FieldError("$", f"body is not valid JSON: {e}")]) from None
    check_json(value, max_depth)
    return value


SAFE_URL = r"(?i)^https?://[^/\s@:\\][^\s\\]*$"
"""An absolute http(s) URL with a host: what a click may be sent on to (never
`javascript:`, `data:`, a scheme-relative `//host` or a bare path)."""
_safe_url = re.compile(SAFE_URL)


def safe_url(url: str, domains: list[str] | None = None) -> bool:
    """An absolute http(s) URL with a host, and, when `domains` is given and not empty,
    whose host is one of them or a subdomain of one."""
    if len(url) > 4096 or _safe_url.match(url) is None:
        return False
    if not domains:
        return True
    from urllib.parse import urlsplit

    try:
        host = (urlsplit(url).hostname or "").rstrip(".").lower()
    except ValueError:
        return False
    return any(host == d or host.endswith("." + d) for d in domains)


def ascii_int(raw: str, max_digits: int = 18) -> int | None:
    """`raw` as a non-negative integer when it is 1 to `max_digits` ASCII digits, else None
    (str.isdigit() also takes '²' and '١', which int() then refuses or reads)."""
    if 0 < len(raw) <= max_digits and raw.isascii() and raw.isdigit():
        return int(raw)
    return None
