"""Stage 2: the candidate ad rows of a placement, from the snapshot's posting lists (and, for
sponsored products with a context, the category's products, keyword matches and the nearest
products: `for_placement`).

Assumes a resolved Plan. Returns every posting list that could hold an eligible ad: per ad
type, the lists of the placement's zones, its site, the untargeted list, and the keyword
lists of the request's tokens. Each list is ordered best first (tier, then static eCPM);
an ad may be in several; the filter drops repeats.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from adserver.serving.bound import BoundSnapshot
from adserver.serving.stages import sponsored
from adserver.serving.stages.resolve import Plan
from adserver.snapshot.format import posting_key

_placement_keys: dict[tuple, list[int]] = {}


def lists(
    snap: BoundSnapshot, plan: Plan, tokens: tuple[int, ...], contextual: tuple[int, ...] = ()
) -> list[np.ndarray]:
    """`contextual`: ad types whose candidates come from the request's context (sponsored
    products with a query, product or category: adserver/serving/stages/sponsored.py), so
    the generic lists are skipped for them; keyword lists are kept for every type."""
    p = plan.placement
    net = plan.network_id
    ad_types = tuple(t for t in p.ad_types or () if t not in contextual)
    shape = (net, ad_types, plan.site_id, tuple(p.zone_ids or ()))
    keys = _placement_keys.get(shape)
    if keys is None:  # a storefront asks for the same few placements over and over
        keys = []
        for ad_type in ad_types:
            keys.append(posting_key("all", net, ad_type))
            keys.append(posting_key("site", net, ad_type, plan.site_id))
            for z in shape[3]:
                keys.append(posting_key("zone", net, ad_type, z))
        if len(_placement_keys) > 10000:
            _placement_keys.clear()
        _placement_keys[shape] = keys
    if tokens:
        keys = keys + [
            posting_key("kw", net, t2, t) for t2 in (*ad_types, *contextual) for t in tokens
        ]
    return snap.lists(keys)


CANDIDATES_CACHE = 20000


def for_placement(
    snap: BoundSnapshot,
    plan: Plan,
    tokens: tuple[int, ...],
    pctx: sponsored.Context | None,
    k: int,
    ef: int,
) -> tuple[Sequence[np.ndarray], tuple[int, int], int]:
    """A placement's candidate lists, how many of the first ones are given (category
    matches, or a listings auction's own candidates when no query measures them) and how
    many are given or keyword matches, and how many rows they hold in all. Cached (as tuples of arrays and ints: once the cycle collector
    has seen such an entry it stops tracking it, so full passes do not grow with the caches)
    per snapshot and what they depend on (storefronts repeat placements, queries and pages;
    callers must not modify them)."""
    if pctx is not None and pctx.candidates is not None:  # a listings auction's own
        own = [pctx.candidates] if pctx.candidates.shape[0] else []
        given = len(own) if pctx.vector is None else 0
        return own, (given, given), pctx.candidates.shape[0]
    p = plan.placement
    key = None
    if pctx is None or pctx.vector is None or pctx.key is not None:
        key = (
            plan.network_id,
            tuple(p.ad_types or ()),
            plan.site_id,
            tuple(p.zone_ids or ()),
            tokens,
            None if pctx is None else (pctx.types, tuple(pctx.categories), pctx.key, pctx.active),
            k,
            ef,
        )
        found = snap.candidates.get(key)
        if found is not None:
            return found
    if pctx is None or not pctx.active:
        out, matches = lists(snap, plan, tokens), (0, 0)
    else:  # the category's products, then keyword matches, then the nearest products
        out = snap.lists(sponsored.category_keys(plan, pctx))
        given = len(out)
        out += lists(snap, plan, tokens, pctx.types)
        matches = (given, len(out))
        out += sponsored.retrieved(snap, plan, pctx, k, ef)
    found = tuple(out), matches, sum(x.shape[0] for x in out)
    if key is not None:
        if len(snap.candidates) >= CANDIDATES_CACHE:
            snap.candidates.clear()
        snap.candidates[key] = found
    return found
