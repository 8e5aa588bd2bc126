"""Compile the serve-eligible state of the control store into a snapshot version.

Eligible: an active, unarchived ad whose flight, campaign, advertiser, priority and network are
active and unarchived, whose creative is approved, and whose flight has not ended. Dates,
targeting and everything that depends on the request are checked at decision time from the
columns written here (adserver/snapshot/format.py).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import msgspec
import numpy as np

from adserver.common.expr import parse
from adserver.common.text import token_ids
from adserver.control.schema import SPECS, from_row
from adserver.control.store import Store
from adserver.formats import livestate
from adserver.kernels.auction import quality
from adserver.snapshot import format as f
from adserver.snapshot import products as px
from adserver.snapshot import programs, writer
from adserver.wire import kevel

log = logging.getLogger("adserver.publisher")
DEFAULT_PRIOR_CTR = 0.01
DEFAULT_PRIOR_CVR = 0.001

# an ad with everything it hangs on, and what makes all of that live
AD_JOINS = """FROM ads a
JOIN flights fl ON fl.id = a.flight_id
JOIN campaigns cp ON cp.id = fl.campaign_id
JOIN advertisers adv ON adv.id = fl.advertiser_id
JOIN creatives cr ON cr.id = a.creative_id
JOIN priorities p ON p.id = fl.priority_id
JOIN networks n ON n.id = a.network_id"""
LIVE = """a.is_active = 1 AND fl.is_active = 1 AND cp.archived = 0 AND cp.is_active = 1
  AND adv.archived = 0 AND cr.archived = 0 AND cr.status = 'approved' AND p.archived = 0
  AND n.archived = 0"""
ELIGIBLE_ADS = f"""
SELECT a.* {AD_JOINS}
WHERE a.archived = 0 AND fl.archived = 0 AND {LIVE}
  AND (fl."end" IS NULL OR fl."end" > ?)
ORDER BY a.id
"""
# Ads that exist but are held back, and why: explain shows them when a placement forces their
# ad, flight or campaign ("why isn't my ad showing?"). Live flights only, newest ads first.
HELD_ADS = f"""
SELECT a.id, a.flight_id, fl.campaign_id, fl.advertiser_id, a.network_id, CASE
  WHEN a.is_active = 0 THEN 'the ad is paused'
  WHEN fl.is_active = 0 THEN 'the flight is paused'
  WHEN cp.archived = 1 THEN 'the campaign is archived'
  WHEN cp.is_active = 0 THEN 'the campaign is paused'
  WHEN adv.archived = 1 THEN 'the advertiser is archived'
  WHEN cr.archived = 1 THEN 'the creative is archived'
  WHEN cr.status != 'approved' THEN 'the creative is not approved (' || cr.status || ')'
  WHEN p.archived = 1 THEN 'the priority is archived'
  WHEN n.archived = 1 THEN 'the network is archived'
  END AS reason
{AD_JOINS}
WHERE a.archived = 0 AND fl.archived = 0 AND (fl."end" IS NULL OR fl."end" > ?)
  AND NOT ({LIVE})
ORDER BY a.id DESC LIMIT ?
"""
MAX_HELD = 20000  # the snapshot carries at most this many held ads


def _epoch(t: dt.datetime | None) -> int:
    return f.NO_END if t is None else int(t.timestamp())


def _micros(x: Any) -> int:
    return 0 if x is None else int(x * 1_000_000)


class _Csr:
    """Builds a CSR pair (ptr, values) row by row."""

    def __init__(self) -> None:
        self.ptr = [0]
        self.val: list[Any] = []

    def row(self, values: list[Any]) -> None:
        self.val.extend(values)
        self.ptr.append(len(self.val))


class Inputs(msgspec.Struct, kw_only=True):
    """The eligible entities, decoded: what a snapshot is built from."""

    ads: list[Any]  # entities.Ad rows
    flights: dict[int, Any]
    creatives: dict[int, Any]
    priorities: dict[int, Any]
    ad_types: dict[int, Any]
    scope: dict[int, tuple[int, int]]  # flight id -> (network id, advertiser id)


def read_inputs(store: Store, now: dt.datetime | None = None) -> Inputs:
    """Read the serve-eligible rows of the control store."""
    now = now or dt.datetime.now(dt.UTC)
    stamp = now.isoformat().replace("+00:00", "Z")
    ads: list[Any] = [from_row(SPECS["ads"], r) for r in store.read(ELIGIBLE_ADS, (stamp,))]

    def load(name: str, ids: set[int]) -> dict[int, Any]:
        spec = SPECS[name]
        return {
            r["id"]: from_row(spec, r)
            for r in store.read(f"SELECT * FROM {name}")
            if r["id"] in ids
        }

    return Inputs(
        ads=ads,
        flights=load("flights", {a.flight_id for a in ads}),
        creatives=load("creatives", {a.creative_id for a in ads}),
        priorities={
            r["id"]: from_row(SPECS["priorities"], r)
            for r in store.read("SELECT * FROM priorities WHERE archived = 0")
        },
        ad_types={
            r["id"]: from_row(SPECS["ad_types"], r) for r in store.read("SELECT * FROM ad_types")
        },
        scope={
            r["id"]: (r["network_id"], r["advertiser_id"])
            for r in store.read("SELECT id, network_id, advertiser_id FROM flights")
        },
    )


def product_of(ad: Any, creative: Any) -> str | None:
    """The product an ad promotes: its own product id, else its creative's."""
    return ad.product_id or creative.product_id


def sponsored(inp: Inputs) -> dict[int, set[str]]:
    """Network id -> the product ids that serve-eligible ads promote."""
    out: dict[int, set[str]] = defaultdict(set)
    for ad in inp.ads:
        pid = product_of(ad, inp.creatives[ad.creative_id])
        if pid:
            out[inp.scope[ad.flight_id][0]].add(pid)
    return dict(out)


def build(
    inp: Inputs, index: px.ProductIndex | None = None
) -> tuple[dict[str, np.ndarray], dict[bytes, bytes], list[str], dict]:
    """Columns, catalog entries, expression strings and counts of a snapshot; ads promoting
    a product are tied to its row in `index` (the product index version the snapshot names)."""
    ads, flights, creatives, priorities = inp.ads, inp.flights, inp.creatives, inp.priorities
    scope = inp.scope
    prio_ids = sorted(priorities)
    prio_row = {pid: i for i, pid in enumerate(prio_ids)}
    flight_ids = sorted(flights)
    flight_row = {fid: i for i, fid in enumerate(flight_ids)}

    cols: dict[str, list[Any]] = defaultdict(list)
    sites, zones, segs, geo, kws, expr = _Csr(), _Csr(), _Csr(), _Csr(), _Csr(), _Csr()
    fcaps = _Csr()
    kw_tok = _Csr()
    strings: list[str] = []
    for fid in flight_ids:
        fl = flights[fid]
        network_id, advertiser_id = scope[fid]
        cols["fl_id"].append(fid)
        cols["fl_campaign"].append(fl.campaign_id)
        cols["fl_advertiser"].append(advertiser_id)
        cols["fl_network"].append(network_id)
        cols["fl_priority"].append(prio_row[fl.priority_id])
        cols["fl_start"].append(_epoch(fl.start))
        cols["fl_end"].append(_epoch(fl.end))
        cols["fl_rate"].append(f.RATES[fl.rate_type])
        cols["fl_price"].append(_micros(fl.price))
        cols["fl_dedupe"].append(f.DEDUPE[fl.dedupe])
        sites.row(sorted(fl.site_ids))
        zones.row(sorted(fl.zone_ids))
        segs.row([programs.str_id(s) for s in fl.segments])
        geo.row(list(fl.geo))
        fcaps.row(
            [(livestate.LEVELS[c.level], c.count, c.window_seconds) for c in fl.frequency_caps]
        )
        cols["fl_daypart"].append(programs.daypart_mask(fl.dayparts))
        good = []
        for kw in fl.keywords:
            toks = token_ids(kw.text)
            if len(toks):
                good.append(kw)
                kw_tok.row(toks.tolist())
                cols["kw_match"].append(f.MATCH[kw.match])
                cols["kw_negative"].append(int(kw.negative))
                cols["kw_bid"].append(-1 if kw.bid is None or kw.negative else _micros(kw.bid))
        kws.row(good)
        program = (
            programs.compile_expr(parse(fl.custom_targeting), strings)
            if fl.custom_targeting
            else []
        )
        expr.row(program)

    catalog: dict[bytes, bytes] = {}
    posting: dict[int, list[int]] = defaultdict(list)
    for row, ad in enumerate(ads):
        fl = flights[ad.flight_id]
        cr = creatives[ad.creative_id]
        network_id = scope[ad.flight_id][0]
        cols["ad_id"].append(ad.id)
        cols["ad_flight"].append(flight_row[ad.flight_id])
        cols["ad_creative"].append(ad.creative_id)
        cols["ad_type"].append(cr.ad_type_id)
        cols["ad_weight"].append(ad.weight)
        cols["ad_relevancy"].append(ad.relevancy_score or 0)
        cols["ad_prior_ctr"].append(DEFAULT_PRIOR_CTR)
        cols["ad_prior_cvr"].append(DEFAULT_PRIOR_CVR)
        pid = product_of(ad, cr)
        prow = index.row(network_id, pid) if pid and index is not None else -1
        cols["ad_product"].append(prow)
        cols["ad_category"].append(0)
        if prow >= 0:  # found by product (retrieval, candidate lists) and by its categories
            product = index.product(prow)  # type: ignore[union-attr]
            catalog[b"ap" + ad.id.to_bytes(8, "big")] = msgspec.msgpack.encode(
                [
                    kevel.encoder.encode(kevel.product_contents(cr, product)),
                    cr.click_url or product["url"],
                ]
            )
            assert pid is not None  # the ad promotes a product
            posting[
                f.posting_key("prod", network_id, cr.ad_type_id, px.key(network_id, pid))
            ].append(row)
            for level in product["category"]:
                posting[
                    f.posting_key("cat", network_id, cr.ad_type_id, f.category_id(level))
                ].append(row)
            if product["category"]:
                cols["ad_category"][-1] = f.category_id(product["category"][-1])
        key = b"cr" + ad.creative_id.to_bytes(8, "big")
        if key not in catalog:
            catalog[key] = msgspec.msgpack.encode(
                [
                    kevel.encoder.encode(kevel.contents(cr, inp.ad_types.get(cr.ad_type_id))),
                    cr.click_url,
                ]
            )
        positives = [k for k in fl.keywords if not k.negative and token_ids(k.text).size]
        if positives:
            for first in {int(token_ids(k.text)[0]) for k in positives}:
                posting[f.posting_key("kw", network_id, cr.ad_type_id, first)].append(row)
        elif fl.zone_ids:
            for z in set(fl.zone_ids):
                posting[f.posting_key("zone", network_id, cr.ad_type_id, z)].append(row)
        elif fl.site_ids:
            for s in set(fl.site_ids):
                posting[f.posting_key("site", network_id, cr.ad_type_id, s)].append(row)
        else:
            posting[f.posting_key("all", network_id, cr.ad_type_id)].append(row)

    for prio in prio_ids:
        p = priorities[prio]
        cols["prio_id"].append(prio)
        cols["prio_tier"].append(p.tier)
        cols["prio_selection"].append(f.SELECTION[p.selection])
        cols["prio_second"].append(int(p.second_price))
        cols["prio_floor_cpm"].append(_micros(p.floor_cpm))
        cols["prio_floor_cpc"].append(_micros(p.floor_cpc))

    # each list best first: priority tier, then static eCPM (bid x prior quality), then row;
    # the decision path filters a list in order and may stop after enough eligible ads
    # (the same quality rule the auction kernel applies, at the priors every ad starts with)
    # (a flight's highest keyword bid counts: lists are ordered by the most an ad can bid)
    rank_of_flight = {
        fid: (
            priorities[fl.priority_id].tier,
            -max(
                [float(fl.price)]
                + [float(k.bid) for k in fl.keywords if k.bid is not None and not k.negative]
            )
            * quality(f.RATES[fl.rate_type], DEFAULT_PRIOR_CTR, DEFAULT_PRIOR_CVR),
        )
        for fid, fl in flights.items()
    }
    score = [(*rank_of_flight[ad.flight_id], row) for row, ad in enumerate(ads)]
    for rows_ in posting.values():
        rows_.sort(key=score.__getitem__)
    by_product: dict[int, list[int]] = defaultdict(list)
    for row, prow in enumerate(cols["ad_product"]):
        if prow >= 0:
            by_product[prow].append(row)
    sp_prow = sorted(by_product)
    arrays_sp: dict[str, Any] = {
        "sp_prow": np.array(sp_prow, dtype=np.int64),
        "sp_ptr": np.cumsum([0] + [len(by_product[p]) for p in sp_prow], dtype=np.int64),
        "sp_rows": np.array(
            [r for p in sp_prow for r in sorted(by_product[p], key=score.__getitem__)],
            dtype=np.int32,
        ),
    }
    keys = sorted(posting)
    arrays = {
        name: np.array(cols[name], dtype=dtype) for name, dtype in f.COLUMNS.items() if name in cols
    }
    arrays["fl_daypart"] = np.array(cols["fl_daypart"], dtype=np.uint64).reshape(-1, 3)
    for name, csr in (("fl_site", sites), ("fl_zone", zones), ("fl_seg", segs)):
        arrays[name + "_ptr"] = np.array(csr.ptr, dtype=np.int64)
        arrays[name + "_val"] = np.array(csr.val, dtype=f.COLUMNS[name + "_val"])
    arrays["fl_geo_ptr"] = np.array(geo.ptr, dtype=np.int64)
    for part in ("country", "region", "metro", "city"):
        arrays["geo_" + part] = np.array(
            [programs.geo_id(getattr(g, part)) for g in geo.val], dtype=np.uint64
        )
    arrays["geo_exclude"] = np.array([int(g.exclude) for g in geo.val], dtype=np.int8)
    arrays["fl_fcap_ptr"] = np.array(fcaps.ptr, dtype=np.int64)
    for i, name in enumerate(("fcap_level", "fcap_count", "fcap_window")):
        arrays[name] = np.array([c[i] for c in fcaps.val], dtype=f.COLUMNS[name])
    arrays["fl_kw_ptr"] = np.array(kws.ptr, dtype=np.int64)
    arrays["kw_tok_ptr"] = np.array(kw_tok.ptr, dtype=np.int64)
    arrays["kw_tok"] = np.array(kw_tok.val, dtype=np.uint64)
    arrays["fl_expr_ptr"] = np.array(expr.ptr, dtype=np.int64)
    for i, name in enumerate(("ins_op", "ins_key", "ins_num", "ins_str", "ins_arg")):
        arrays[name] = np.array([ins[i] for ins in expr.val], dtype=f.COLUMNS[name])
    arrays.update(arrays_sp)
    arrays["post_key"] = np.array(keys, dtype=np.uint64)
    arrays["post_ptr"] = np.cumsum([0] + [len(posting[k]) for k in keys], dtype=np.int64)
    arrays["post_rows"] = np.array([r for k in keys for r in posting[k]], dtype=np.int32)
    for name, dtype in f.COLUMNS.items():  # empty snapshots still have every column
        arrays.setdefault(name, np.zeros(0, dtype=dtype))
    counts = {
        "ads": len(ads),
        "flights": len(flight_ids),
        "creatives": len(creatives),
        "priorities": len(prio_ids),
        "posting_lists": len(keys),
    }
    return arrays, catalog, strings, counts


def _meta(store: Store, strings: list[str]) -> dict[str, Any]:
    """Small lookups the workers keep in dicts: networks, sites, zones, API keys."""
    return {
        "networks": {
            r["id"]: r["time_zone"]
            for r in store.read("SELECT id, time_zone FROM networks WHERE archived = 0")
        },
        "click_domains": {
            r["id"]: [d.lower() for d in json.loads(r["click_domains"])]
            for r in store.read(
                "SELECT id, click_domains FROM networks"
                " WHERE archived = 0 AND click_domains != '[]'"
            )
        },
        "sites": {
            r["id"]: r["network_id"]
            for r in store.read("SELECT id, network_id FROM sites WHERE archived = 0")
        },
        "zones": {
            r["id"]: [r["site_id"], r["network_id"]]
            for r in store.read("SELECT id, site_id, network_id FROM zones WHERE archived = 0")
        },
        "keys": [
            [r["key_id"], r["salt"], r["hash"], r["role"], r["network_id"], r["advertiser_id"]]
            for r in store.read("SELECT * FROM api_keys WHERE revoked_at IS NULL")
        ],
        "strings": strings,
    }


_indexes: dict[str, px.ProductIndex] = {}


def product_index(root: str) -> px.ProductIndex | None:
    """The published product index (rows and data only), kept open between compiles."""
    version = px.current(root)
    if version is None:
        return None
    if version not in _indexes:
        _indexes.clear()
        _indexes[version] = px.ProductIndex(root, version, graphs=False)
    return _indexes[version]


def compile_snapshot(
    store: Store,
    root: str,
    now: dt.datetime | None = None,
    on_sponsored: Callable[[dict[int, set[str]]], None] | None = None,
) -> str:
    """Gather, write and publish a new version; returns its name. `on_sponsored` is told
    which products the eligible ads promote (the catalog builder indexes them)."""
    started = time.perf_counter()
    inp = read_inputs(store, now)
    index = product_index(root)
    arrays, catalog, strings, counts = build(inp, index)
    if on_sponsored is not None:
        on_sponsored(sponsored(inp))
    meta = _meta(store, strings)
    stamp = (now or dt.datetime.now(dt.UTC)).isoformat().replace("+00:00", "Z")
    meta["held"] = [list(r) for r in store.read(HELD_ADS, (stamp, MAX_HELD))]
    meta["keyword_bids"] = bool((arrays["kw_bid"] >= 0).any())
    if index is not None:
        meta["products"] = index.version
        meta["sponsored_ad_types"] = sorted(
            i for i, t in inp.ad_types.items() if t.format == "sponsored_product"
        )
    counts["compile_ms"] = int((time.perf_counter() - started) * 1000)
    version = writer.write(root, arrays, catalog, meta, counts)
    writer.publish(root, version)
    writer.prune(root)
    log.info(
        "snapshot %s published: %d ads, %d flights, compiled in %d ms",
        version,
        arrays["ad_id"].shape[0],
        arrays["fl_id"].shape[0],
        counts["compile_ms"],
    )
    return version
