"""The custom targeting expression parser."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adserver.common.expr import MAX_DEPTH, ExprError, parse


@pytest.mark.parametrize(
    "text, ast",
    [
        ('$page == "search"', ("cmp", "==", "page", "search")),
        ("$price >= 20.5", ("cmp", ">=", "price", 20.5)),
        ("$n != -3", ("cmp", "!=", "n", -3)),
        ("$member == TRUE", ("cmp", "==", "member", True)),
        ("$a.b contains 'x'", ("contains", "a.b", "x")),
        ("EXISTS $coupon", ("exists", "coupon")),
        ('$brand in ["acme", "zeta"]', ("in", "brand", ("acme", "zeta"))),
        ("$x not in [1, 2]", ("not", ("in", "x", (1, 2)))),
        (r'$q == "say \"hi\""', ("cmp", "==", "q", 'say "hi"')),
        (
            "$a == 1 or $b == 2 and $c == 3",
            ("or", ("cmp", "==", "a", 1), ("and", ("cmp", "==", "b", 2), ("cmp", "==", "c", 3))),
        ),
        (
            "($a == 1 or $b == 2) and not $c == 3",
            (
                "and",
                ("or", ("cmp", "==", "a", 1), ("cmp", "==", "b", 2)),
                ("not", ("cmp", "==", "c", 3)),
            ),
        ),
    ],
)
def test_parses(text: str, ast: tuple) -> None:
    assert parse(text) == ast


@pytest.mark.parametrize(
    "text, position",
    [
        ("", 0),
        ("$a ==", 5),
        ("$a = 3", 3),
        ("page == 1", 0),
        ("($a == 1", 8),
        ("$a == 1 $b == 2", 8),
        ('$a < "x"', 5),
        ("$a >= true", 6),
        ('$a == "x', 6),
        ("$a in []", 7),
        ("$a not 1", 7),
        ("$a", 2),
    ],
)
def test_errors_name_the_position(text: str, position: int) -> None:
    with pytest.raises(ExprError) as err:
        parse(text)
    assert err.value.position == position, str(err.value)


def test_depth_and_length_are_bounded() -> None:
    with pytest.raises(ExprError, match="deeply"):
        parse("(" * (MAX_DEPTH + 1) + "$a == 1" + ")" * (MAX_DEPTH + 1))
    with pytest.raises(ExprError, match="longer"):
        parse("$a == 1 or " * 500 + "$a == 1")


names = st.from_regex(r"[a-z_][a-z0-9_]{0,8}(\.[a-z_][a-z0-9_]{0,5})?", fullmatch=True)
values = st.one_of(
    st.integers(-(10**6), 10**6),
    st.booleans(),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=12),
)


def _lit(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(v)


def _render(node: tuple) -> str:
    kind = node[0]
    if kind in ("and", "or"):
        return "(" + f" {kind} ".join(_render(n) for n in node[1:]) + ")"
    if kind == "not":
        return f"not ({_render(node[1])})"
    if kind == "exists":
        return f"exists ${node[1]}"
    if kind == "cmp":
        return f"${node[2]} {node[1]} {_lit(node[3])}"
    if kind == "in":
        return f"${node[1]} in [{', '.join(_lit(v) for v in node[2])}]"
    return f"${node[1]} contains {_lit(node[2])}"


numbers = st.integers(-(10**6), 10**6)
leaf = st.one_of(
    st.tuples(st.just("cmp"), st.sampled_from(["==", "!="]), names, values),
    st.tuples(st.just("cmp"), st.sampled_from(["<", "<=", ">", ">="]), names, numbers),
    st.tuples(st.just("in"), names, st.lists(values, min_size=1, max_size=4).map(tuple)),
    st.tuples(st.just("contains"), names, values),
    st.tuples(st.just("exists"), names),
)
trees = st.recursive(
    leaf,
    lambda kids: st.one_of(
        st.tuples(st.just("not"), kids),
        st.lists(kids, min_size=2, max_size=3).map(lambda k: ("and", *k)),
        st.lists(kids, min_size=2, max_size=3).map(lambda k: ("or", *k)),
    ),
    max_leaves=8,
)


def _flatten(node: tuple) -> tuple:
    # rendering adds parentheses, so (a and (b and c)) reads back as the same tree shape
    if node[0] in ("and", "or"):
        return (node[0], *(_flatten(n) for n in node[1:]))
    if node[0] == "not":
        return ("not", _flatten(node[1]))
    return node


@given(trees)
def test_render_then_parse_round_trips(tree: tuple) -> None:
    assert parse(_render(tree)) == _flatten(tree)
