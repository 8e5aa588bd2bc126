"""The custom targeting expression language, parsed into a small tuple AST.

    expression := or
    or         := and ("or" and)*
    and        := not ("and" not)*
    not        := "not" not | "(" expression ")" | test
    test       := "exists" PATH | PATH OP value | PATH ["not"] "in" "[" value ("," value)* "]"
                | PATH "contains" value
    OP         := "==" | "!=" | "<" | "<=" | ">" | ">="
    PATH       := "$" name ("." name)*          a key of the request's `properties`
    value      := "string" | 'string' | number | true | false

Examples: `$page == "search" and $price >= 20`, `$brand in ["acme", "zeta"] or not $member`.
Keywords are case-insensitive. The control plane parses on write (a parse error is a 400 that
names the position); the snapshot compiler turns the AST into what the serving kernel runs.

AST nodes: ("or", a, b, ...), ("and", a, b, ...), ("not", a), ("exists", path),
("cmp", op, path, value), ("in", path, (values...)), ("contains", path, value).
"""

from __future__ import annotations

import re
from typing import Any

MAX_LENGTH = 4096
MAX_DEPTH = 32

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<num>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)
    | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
    | (?P<path>\$[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
    | (?P<op>==|!=|<=|>=|<|>|\(|\)|\[|\]|,)
    | (?P<word>[A-Za-z_]+)
    )""",
    re.VERBOSE,
)
_ESCAPE = re.compile(r"\\(.)")


class ExprError(ValueError):
    """A parse error, with the 0-based character position where it was found."""

    def __init__(self, message: str, position: int):
        super().__init__(f"{message} at position {position}")
        self.position = position


def _tokenize(text: str) -> list[tuple[str, Any, int]]:
    tokens = []
    pos = 0
    end = len(text.rstrip())
    while pos < end:
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            at = pos + len(text[pos:]) - len(text[pos:].lstrip())
            if text[at] in "\"'":
                raise ExprError("unterminated string", at)
            raise ExprError(f"unexpected character {text[at]!r}", at)
        kind = m.lastgroup or ""
        raw = m.group(kind)
        start = m.start(kind)
        if kind == "num":
            value: Any = float(raw) if any(c in raw for c in ".eE") else int(raw)
        elif kind == "str":
            value = _ESCAPE.sub(r"\1", raw[1:-1])
        elif kind == "path":
            value = raw[1:]
        elif kind == "word":
            value = raw.lower()
            if value in ("true", "false"):
                kind, value = "bool", value == "true"
        else:
            value = raw
        tokens.append((kind, value, start))
        pos = m.end()
    tokens.append(("end", None, end))
    return tokens


class _Parser:
    def __init__(self, text: str):
        self.tokens = _tokenize(text)
        self.i = 0
        self.depth = 0

    def peek(self) -> tuple[str, Any, int]:
        return self.tokens[self.i]

    def take(self, kind: str, value: Any = None) -> Any:
        k, v, pos = self.tokens[self.i]
        if k != kind or (value is not None and v != value):
            want = repr(value) if value is not None else kind
            got = "end of expression" if k == "end" else repr(v)
            want = "end of expression" if kind == "end" else want
            raise ExprError(f"expected {want}, found {got}", pos)
        self.i += 1
        return v

    def at_word(self, word: str) -> bool:
        k, v, _ = self.peek()
        return k == "word" and v == word

    def expression(self) -> tuple:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExprError("expression nested too deeply", self.peek()[2])
        node = self.binary("or", lambda: self.binary("and", self.unary))
        self.depth -= 1
        return node

    def binary(self, word: str, operand: Any) -> tuple:
        items = [operand()]
        while self.at_word(word):
            self.i += 1
            items.append(operand())
        return items[0] if len(items) == 1 else (word, *items)

    def unary(self) -> tuple:
        if self.at_word("not"):
            self.i += 1
            return ("not", self.unary())
        k, v, _ = self.peek()
        if k == "op" and v == "(":
            self.i += 1
            node = self.expression()
            self.take("op", ")")
            return node
        if self.at_word("exists"):
            self.i += 1
            return ("exists", self.take("path"))
        return self.test()

    def value(self) -> Any:
        k, v, pos = self.peek()
        if k in ("num", "str", "bool"):
            self.i += 1
            return v
        raise ExprError(f"expected a value, found {'end' if k == 'end' else repr(v)}", pos)

    def test(self) -> tuple:
        path = self.take("path")
        k, v, pos = self.peek()
        if k == "op" and v in ("==", "!=", "<", "<=", ">", ">="):
            self.i += 1
            at = self.peek()[2]
            value = self.value()
            if v not in ("==", "!=") and (isinstance(value, (str, bool))):
                raise ExprError(f"{v} compares numbers only", at)
            return ("cmp", v, path, value)
        negate = False
        if self.at_word("not"):
            self.i += 1
            negate = True
            if not self.at_word("in"):
                raise ExprError("expected 'in' after 'not'", self.peek()[2])
        if self.at_word("in"):
            self.i += 1
            self.take("op", "[")
            values = [self.value()]
            while self.peek()[:2] == ("op", ","):
                self.i += 1
                values.append(self.value())
            self.take("op", "]")
            node: tuple = ("in", path, tuple(values))
            return ("not", node) if negate else node
        if self.at_word("contains"):
            self.i += 1
            return ("contains", path, self.value())
        raise ExprError("expected a comparison, 'in' or 'contains'", pos)


def parse(text: str) -> tuple:
    """Parse an expression into its AST, raising ExprError naming the position of a mistake."""
    if len(text) > MAX_LENGTH:
        raise ExprError(f"longer than {MAX_LENGTH} characters", MAX_LENGTH)
    if not text.strip():
        raise ExprError("empty expression", 0)
    p = _Parser(text)
    node = p.expression()
    p.take("end")
    return node
