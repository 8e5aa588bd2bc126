"""Names, dtypes and codes of a snapshot version (documented in indexes/README.md).

A version directory holds one `.npy` file per column below (memory-mapped by workers),
`catalog/` (an LMDB environment: creative contents and metadata) and `manifest.json`.
Rows: ads (A), flights (F), priorities (P), keywords (K), expression instructions (I),
geo entries (G), posting lists (L keys). `*_ptr` arrays are CSR offsets of length n+1.
"""

from __future__ import annotations

import numpy as np

from adserver.common.hashing import cross, hash_str
from adserver.kernels.codes import (  # noqa: F401  (the snapshot's vocabulary, declared once)
    BLOCKED,
    CUSTOM,
    DATES,
    DAYPART,
    DEDUPED,
    DUPLICATE,
    FLOOR,
    FORCED,
    FREQUENCY,
    GEO,
    KEYWORDS,
    LOST_LOTTERY,
    M_BROAD,
    M_EXACT,
    M_PHRASE,
    NOT_RELEVANT,
    OP_AND,
    OP_CONTAINS,
    OP_EQ_NUM,
    OP_EQ_STR,
    OP_EXISTS,
    OP_GE,
    OP_GT,
    OP_LE,
    OP_LT,
    OP_NOT,
    OP_OR,
    OUTBID,
    PASS,
    PAUSED,
    RATE_CPA,
    RATE_CPC,
    RATE_CPM,
    RATE_FLAT,
    SEGMENTS,
    SITE_ZONE,
    THROTTLED,
    UNAVAILABLE,
)

FORMAT_VERSION = 4  # 2: ad_product; 3: kw_bid; 4: ad_category

COLUMNS: dict[str, np.dtype] = {
    # ads
    "ad_id": np.dtype(np.int64),
    "ad_flight": np.dtype(np.int32),
    "ad_creative": np.dtype(np.int64),
    "ad_type": np.dtype(np.int64),
    "ad_weight": np.dtype(np.int32),
    "ad_relevancy": np.dtype(np.int16),
    "ad_prior_ctr": np.dtype(np.float64),
    "ad_prior_cvr": np.dtype(np.float64),
    "ad_product": np.dtype(np.int64),  # row in the snapshot's product index, -1: none
    "ad_category": np.dtype(np.uint64),  # category_id of its product's leaf category, 0: none
    # flights
    "fl_id": np.dtype(np.int64),
    "fl_campaign": np.dtype(np.int64),
    "fl_advertiser": np.dtype(np.int64),
    "fl_network": np.dtype(np.int64),
    "fl_priority": np.dtype(np.int32),
    "fl_start": np.dtype(np.int64),
    "fl_end": np.dtype(np.int64),
    "fl_rate": np.dtype(np.int8),
    "fl_price": np.dtype(np.int64),
    "fl_dedupe": np.dtype(np.int8),
    "fl_site_ptr": np.dtype(np.int64),
    "fl_site_val": np.dtype(np.int64),
    "fl_zone_ptr": np.dtype(np.int64),
    "fl_zone_val": np.dtype(np.int64),
    "fl_seg_ptr": np.dtype(np.int64),
    "fl_seg_val": np.dtype(np.uint64),
    "fl_geo_ptr": np.dtype(np.int64),
    "geo_country": np.dtype(np.uint64),
    "geo_region": np.dtype(np.uint64),
    "geo_metro": np.dtype(np.uint64),
    "geo_city": np.dtype(np.uint64),
    "geo_exclude": np.dtype(np.int8),
    "fl_daypart": np.dtype(
        np.uint64
    ),  # (F, 3): bit h of the 168 hours of the week, Monday 0h first
    "fl_kw_ptr": np.dtype(np.int64),
    "kw_tok_ptr": np.dtype(np.int64),
    "kw_tok": np.dtype(np.uint64),
    "kw_match": np.dtype(np.int8),
    "kw_negative": np.dtype(np.int8),
    "kw_bid": np.dtype(np.int64),  # micro-units, -1: the flight's price
    "fl_fcap_ptr": np.dtype(np.int64),
    "fcap_level": np.dtype(np.int8),
    "fcap_count": np.dtype(np.int32),
    "fcap_window": np.dtype(np.int64),
    "fl_expr_ptr": np.dtype(np.int64),
    "ins_op": np.dtype(np.int8),
    "ins_key": np.dtype(np.uint64),
    "ins_num": np.dtype(np.float64),
    "ins_str": np.dtype(np.uint64),
    "ins_arg": np.dtype(np.int32),
    # priorities
    "prio_id": np.dtype(np.int64),
    "prio_tier": np.dtype(np.int32),
    "prio_selection": np.dtype(np.int8),
    "prio_second": np.dtype(np.int8),
    "prio_floor_cpm": np.dtype(np.int64),
    "prio_floor_cpc": np.dtype(np.int64),
    # sponsored products: product-index rows that ads promote (sorted), CSR into ad rows
    "sp_prow": np.dtype(np.int64),
    "sp_ptr": np.dtype(np.int64),
    "sp_rows": np.dtype(np.int32),
    # posting lists: sorted keys, CSR into ad rows
    "post_key": np.dtype(np.uint64),
    "post_ptr": np.dtype(np.int64),
    "post_rows": np.dtype(np.int32),
}

NO_END = np.iinfo(np.int64).max

RATES = {"flat": RATE_FLAT, "cpm": RATE_CPM, "cpc": RATE_CPC, "cpa": RATE_CPA}
DEDUPE = {"none": 0, "flight": 1, "campaign": 2, "advertiser": 3, "creative": 4}
SELECTION = {"lottery": 0, "auction": 1}
MATCH = {"exact": M_EXACT, "phrase": M_PHRASE, "broad": M_BROAD}

MAX_STACK = 64

# why a candidate was not chosen, as explain says it
REASONS = {
    PASS: "chosen",
    DUPLICATE: "duplicate",
    DATES: "outside flight dates",
    SITE_ZONE: "site or zone targeting",
    FORCED: "not the forced campaign, flight or ad",
    BLOCKED: "creative blocked by the request",
    SEGMENTS: "audience segment targeting or consent",
    GEO: "geo targeting",
    DAYPART: "daypart",
    KEYWORDS: "keyword targeting",
    CUSTOM: "custom targeting expression",
    DEDUPED: "deduplicated within the request",
    FLOOR: "below the floor",
    OUTBID: "outbid",
    LOST_LOTTERY: "not drawn in the lottery",
    PAUSED: "budget or cap reached",
    FREQUENCY: "frequency cap",
    THROTTLED: "held back by pacing",
    NOT_RELEVANT: "not relevant to the query or page",
    UNAVAILABLE: "product unavailable",
}


_KINDS = {k: hash_str(k) for k in ("zone", "site", "all", "kw", "prod", "cat")}


def posting_key(kind: str, network: int, ad_type: int, value: int = 0) -> int:
    """The key of a posting list: (kind, network, ad type, value)."""
    return cross(cross(cross(_KINDS[kind], network), ad_type), value)


CATEGORY_SEED = 0x636174


def category_id(level: str) -> int:
    """The id of a category (one level of a product's path), case and spacing folded."""
    return hash_str(" ".join(level.lower().split()), CATEGORY_SEED)
