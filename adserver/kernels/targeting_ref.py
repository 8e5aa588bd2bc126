"""Plain-Python twin of the Cython candidate filter (native/_targeting.pyx).

Written for clarity: each rule is a small function over the snapshot's columns, applied in
the same order as the kernel. `eval_ast` states the custom-targeting semantics directly on the
expression tree and the raw properties; tests check the compiled programs agree with it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from adserver.kernels import codes as f
from adserver.kernels.values import canon, number


class Targeting:
    """The candidate filter's plain-Python twin (native/_targeting.pyx), bound to a snapshot's
    columns as the kernel is."""

    def __init__(self, columns: Mapping[str, np.ndarray], strings: list[str]):
        self.c = {k: np.asarray(v) for k, v in columns.items()}
        self.strings = strings

    # -- rules -------------------------------------------------------------------------

    def _csr(self, name: str, f_: int) -> list[Any]:
        ptr = self.c[f"fl_{name}_ptr"]
        return self.c[f"fl_{name}_val"][ptr[f_] : ptr[f_ + 1]].tolist()

    def _capped(self, f_: int, q: Any) -> bool:
        """A frequency cap of the flight that the user's counted impressions reach."""
        c = self.c
        own = (c["fl_id"][f_], c["fl_campaign"][f_], c["fl_advertiser"][f_])
        for cap in range(c["fl_fcap_ptr"][f_], c["fl_fcap_ptr"][f_ + 1]):
            level = int(c["fcap_level"][cap])
            since = q.now - int(c["fcap_window"][cap])
            seen = sum(
                1
                for lv, ident, ts in zip(q.u_level.tolist(), q.u_id.tolist(), q.u_ts.tolist())
                if lv == level and ident == own[level] and ts > since
            )
            if seen >= c["fcap_count"][cap]:
                return True
        return False

    def _keyword(self, k: int, phrases: list[list[int]]) -> bool:
        c = self.c
        toks = c["kw_tok"][c["kw_tok_ptr"][k] : c["kw_tok_ptr"][k + 1]].tolist()
        match = c["kw_match"][k]
        if match == f.M_BROAD:
            union = {t for p in phrases for t in p}
            return all(t in union for t in toks)
        if match == f.M_EXACT:
            return any(p == toks for p in phrases)
        n = len(toks)
        return any(p[i : i + n] == toks for p in phrases for i in range(len(p) - n + 1))

    def keyword_bids(self, rows: np.ndarray, q: Any) -> np.ndarray:
        """Twin of the Cython method: per row the best matched keyword bid, -1 for none."""
        c = self.c
        phrases = [
            q.phrase_tok[q.phrase_ptr[p] : q.phrase_ptr[p + 1]].tolist()
            for p in range(len(q.phrase_ptr) - 1)
        ]
        out = []
        for row in rows.tolist():
            f_ = int(c["ad_flight"][row])
            matched = [
                k
                for k in range(c["fl_kw_ptr"][f_], c["fl_kw_ptr"][f_ + 1])
                if not c["kw_negative"][k] and self._keyword(k, phrases)
            ]
            bids = [
                int(c["kw_bid"][k]) if c["kw_bid"][k] >= 0 else int(c["fl_price"][f_])
                for k in matched
            ]
            own = any(c["kw_bid"][k] >= 0 for k in matched)
            out.append(max(bids) / 1e6 if own else -1.0)
        return np.array(out, dtype=np.float64)

    def _keywords_ok(self, f_: int, phrases: list[list[int]]) -> bool:
        c = self.c
        ks = range(c["fl_kw_ptr"][f_], c["fl_kw_ptr"][f_ + 1])
        if any(c["kw_negative"][k] and self._keyword(k, phrases) for k in ks):
            return False
        positives = [k for k in ks if not c["kw_negative"][k]]
        return not positives or any(self._keyword(k, phrases) for k in positives)

    def _geo_ok(self, f_: int, geo: tuple[int, int, int, int]) -> bool:
        c = self.c
        include, matched, excluded = False, False, False
        for j in range(c["fl_geo_ptr"][f_], c["fl_geo_ptr"][f_ + 1]):
            parts = [c["geo_" + p][j] for p in ("country", "region", "metro", "city")]
            m = (
                geo[0] != 0
                and parts[0] == geo[0]
                and all(p == 0 or p == g for p, g in zip(parts[1:], geo[1:]))
            )
            if c["geo_exclude"][j]:
                excluded |= m
            else:
                include, matched = True, matched or m
        return not excluded and (not include or matched)

    def _program_ok(self, f_: int, props: Any) -> bool:
        c = self.c
        stack: list[bool] = []
        for i in range(c["fl_expr_ptr"][f_], c["fl_expr_ptr"][f_ + 1]):
            op = c["ins_op"][i]
            if op in (f.OP_AND, f.OP_OR):
                n = int(c["ins_arg"][i])
                args, stack = stack[len(stack) - n :], stack[: len(stack) - n]
                stack.append(all(args) if op == f.OP_AND else any(args))
            elif op == f.OP_NOT:
                stack.append(not stack.pop())
            else:
                stack.append(self._leaf(i, props))
        return not stack or stack[0]

    def _leaf(self, i: int, props: Any) -> bool:
        c = self.c
        op, key, x, s = c["ins_op"][i], c["ins_key"][i], c["ins_num"][i], c["ins_str"][i]
        for j in range(len(props.key)):
            if props.key[j] != key:
                continue
            num = props.num[j]
            if (
                op == f.OP_EXISTS
                or (op == f.OP_EQ_STR and props.str[j] == s)
                or (op == f.OP_EQ_NUM and num == x)
                or (op == f.OP_LT and num < x)
                or (op == f.OP_LE and num <= x)
                or (op == f.OP_GT and num > x)
                or (op == f.OP_GE and num >= x)
            ):
                return True
            if op == f.OP_CONTAINS and (
                props.str[j] == s
                or (props.raw[j] is not None and self.strings[c["ins_arg"][i]] in props.raw[j])
            ):
                return True
        return False

    # -- the filter ----------------------------------------------------------------------

    def filter(
        self, rows: np.ndarray, q: Any, paused: np.ndarray, explain: bool = False, limit: int = 0
    ) -> tuple[np.ndarray, np.ndarray | None]:
        return self.filter_lists([rows], q, paused, explain, limit)

    def filter_lists(
        self,
        lists: list[np.ndarray],
        q: Any,
        paused: np.ndarray,
        explain: bool = False,
        limit: int = 0,
        counts: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        out: list[int] = []
        reasons: list[int] = []
        seen: set[int] = set()
        for i, rows in enumerate(lists):
            passing, why = self._one(rows, q, paused, explain, 0 if explain else limit, seen)
            out += passing
            reasons += why
            if counts is not None:
                counts[i] = len(passing)
        return (
            np.array(out, dtype=np.int32),
            np.array(reasons, dtype=np.int8) if explain else None,
        )

    def _one(
        self,
        rows: np.ndarray,
        q: Any,
        paused: np.ndarray,
        explain: bool,
        limit: int,
        seen: set[int],
    ) -> tuple[list[int], list[int]]:
        c = self.c
        phrases = [
            q.phrase_tok[q.phrase_ptr[p] : q.phrase_ptr[p + 1]].tolist()
            for p in range(len(q.phrase_ptr) - 1)
        ]
        used = {
            1: set(q.used_flights.tolist()),
            2: set(q.used_campaigns.tolist()),
            3: set(q.used_advertisers.tolist()),
            4: set(q.used_creatives.tolist()),
        }
        out: list[int] = []
        reasons: list[int] = []
        for row in rows.tolist():
            f_ = int(c["ad_flight"][row])
            dedupe_key = {
                1: c["fl_id"][f_],
                2: c["fl_campaign"][f_],
                3: c["fl_advertiser"][f_],
                4: c["ad_creative"][row],
            }
            sites, zones, segs = self._csr("site", f_), self._csr("zone", f_), self._csr("seg", f_)
            if row in seen:
                reason = f.DUPLICATE
            elif len(paused) and paused[f_]:
                reason = f.PAUSED
            elif self._capped(f_, q):
                reason = f.FREQUENCY
            elif not c["fl_start"][f_] <= q.now < c["fl_end"][f_]:
                reason = f.DATES
            elif (sites and q.site_id not in sites) or (
                zones and not set(zones) & set(q.zone_ids.tolist())
            ):
                reason = f.SITE_ZONE
            elif (
                (q.forced_campaign and c["fl_campaign"][f_] != q.forced_campaign)
                or (q.forced_flight and c["fl_id"][f_] != q.forced_flight)
                or (q.forced_ad and c["ad_id"][row] != q.forced_ad)
            ):
                reason = f.FORCED
            elif c["ad_creative"][row] in q.blocked_creatives.tolist():
                reason = f.BLOCKED
            elif c["fl_dedupe"][f_] and dedupe_key[c["fl_dedupe"][f_]] in used[c["fl_dedupe"][f_]]:
                reason = f.DEDUPED
            elif segs and not (q.personalized and set(segs) & set(q.segments.tolist())):
                reason = f.SEGMENTS
            elif not self._geo_ok(f_, q.geo):
                reason = f.GEO
            elif not (int(c["fl_daypart"][f_, q.hour_of_week // 64]) >> (q.hour_of_week % 64)) & 1:
                reason = f.DAYPART
            elif not self._keywords_ok(f_, phrases):
                reason = f.KEYWORDS
            elif not self._program_ok(f_, q.props):
                reason = f.CUSTOM
            elif len(q.throttle) and throttle_unit(q.seed, f_) >= float(q.throttle[f_]):
                reason = f.THROTTLED
            else:
                reason = f.PASS
            if reason != f.DUPLICATE:
                seen.add(row)
            reasons.append(reason)
            if reason == f.PASS:
                out.append(row)
                if len(out) == limit:
                    break
        return out, reasons


def _values(props: dict[str, Any] | None, path: str) -> list[Any]:
    """Every scalar under `path` (dotted) of a properties object; lists fan out."""

    def scalars(v: Any) -> list[Any]:
        if v is None:
            return []
        if isinstance(v, list):
            return [s for item in v for s in scalars(item)]
        return [v]

    found: list[Any] = []

    def walk(obj: Any, prefix: str) -> None:
        if isinstance(obj, dict):
            for k, v in obj.items():
                walk(v, f"{prefix}.{k}" if prefix else k)
        elif isinstance(obj, list):
            for item in obj:
                walk(item, prefix)
        elif obj is not None and prefix == path:
            found.append(obj)

    walk(props or {}, "")
    return found


def eval_ast(node: tuple, props: dict[str, Any] | None) -> bool:
    """The meaning of an expression, straight from the tree (see adserver/snapshot/programs)."""
    kind = node[0]
    if kind == "and":
        return all(eval_ast(n, props) for n in node[1:])
    if kind == "or":
        return any(eval_ast(n, props) for n in node[1:])
    if kind == "not":
        return not eval_ast(node[1], props)
    if kind == "exists":
        return bool(_values(props, node[1]))

    def eq(values: list[Any], v: Any) -> bool:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return any(number(x) == float(v) for x in values)
        return any(canon(x) == canon(v) for x in values)

    if kind == "cmp":
        op, path, v = node[1], node[2], node[3]
        values = _values(props, path)
        if op == "==":
            return eq(values, v)
        if op == "!=":
            return not eq(values, v)
        nums = [number(x) for x in values]
        test = {
            "<": lambda a: a < v,
            "<=": lambda a: a <= v,
            ">": lambda a: a > v,
            ">=": lambda a: a >= v,
        }[op]
        return any(not math.isnan(a) and test(a) for a in nums)
    if kind == "in":
        values = _values(props, node[1])
        return any(eq(values, v) for v in node[2])
    if kind == "contains":
        values = _values(props, node[1])
        v = node[2]
        if isinstance(v, str):
            return any(canon(x) == v or (isinstance(x, str) and v in x) for x in values)
        return eq(values, v)
    raise ValueError(kind)


MASK64 = (1 << 64) - 1


def throttle_unit(seed: int, flight_row: int) -> float:
    """The request's uniform draw in [0, 1) for a flight's pacing throttle: splitmix64 of
    the seed and the flight row, top 53 bits. One draw per flight and request, so a flight
    with many ads is not favoured; the filter kernel computes the same."""
    z = (seed + (flight_row + 1) * 0x9E3779B97F4A7C15) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    z ^= z >> 31
    return (z >> 11) * (1.0 / 9007199254740992.0)
