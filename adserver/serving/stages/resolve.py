"""Stage 1: check the request and resolve each placement against the snapshot.

Assumes a decoded DecisionRequest. Raises BadRequest (a 400 naming the field) for requests no
server could answer; a placement that names an unknown network, site or zone is not an
error: it resolves to the reason, and its decision is null. A null networkId (the published
client sends one when a Placement model leaves it unset) is taken from the site.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

import numpy as np

from adserver.common.validation import safe_url
from adserver.serving.bound import BoundSnapshot
from adserver.wire.kevel import MAX_COUNT, MAX_PLACEMENTS, DecisionRequest, Placement


class BadRequest(Exception):
    """A decision request that cannot be served as sent: the field and the problem (400)."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


class Plan:
    """A placement the snapshot can serve."""

    __slots__ = (
        "index",
        "div",
        "placement",
        "network_id",
        "site_id",
        "zone_ids",
        "zone",
        "count",
        "hour_of_week",
    )

    def __init__(
        self,
        index: int,
        div: str,
        placement: Placement,
        network_id: int,
        zone_ids: np.ndarray,
        hour_of_week: int,
    ):
        self.index, self.div, self.placement = index, div, placement
        self.network_id = network_id
        self.site_id: int = placement.site_id or 0  # resolved placements name their site
        self.zone_ids = zone_ids
        self.zone = placement.zone_ids[0] if placement.zone_ids else 0  # the first, or 0
        self.count = placement.count or 1
        self.hour_of_week = hour_of_week


def check(req: DecisionRequest) -> list[str]:
    """Validate what the types cannot say; returns each placement's divName."""
    if not req.placements:
        raise BadRequest("placements", "at least one placement is required")
    if len(req.placements) > MAX_PLACEMENTS:
        raise BadRequest("placements", f"at most {MAX_PLACEMENTS} placements")
    divs: list[str] = []
    for i, p in enumerate(req.placements):
        if not p.ad_types:
            raise BadRequest(f"placements[{i}].adTypes", "at least one ad type is required")
        if p.site_id is None:
            raise BadRequest(f"placements[{i}].siteId", "required")
        if p.count is not None and not 1 <= p.count <= MAX_COUNT:
            raise BadRequest(f"placements[{i}].count", f"must be from 1 to {MAX_COUNT}")
        if p.floor_price is not None and not p.floor_price >= 0:
            raise BadRequest(f"placements[{i}].floorPrice", "must be a non-negative number")
        if p.floor_cpc is not None and not p.floor_cpc >= 0:
            raise BadRequest(f"placements[{i}].floorCpc", "must be a non-negative number")
        if p.click_url is not None and not safe_url(p.click_url):
            raise BadRequest(f"placements[{i}].clickUrl", "must be an absolute http or https URL")
        div = p.div_name or f"div{i}"
        if div in divs:
            raise BadRequest(f"placements[{i}].divName", f"duplicate divName {div!r}")
        divs.append(div)
    return divs


_hours: dict[tuple[str, int], int] = {}


def hour_of_week(time_zone: str, now: float) -> int:
    """Hour of the week (Monday 0h = 0) in `time_zone`; cached per zone and minute."""
    minute = int(now // 60)
    found = _hours.get((time_zone, minute))
    if found is None:
        if len(_hours) > 1000:
            _hours.clear()
        local = dt.datetime.fromtimestamp(now, zoneinfo.ZoneInfo(time_zone))
        found = _hours[(time_zone, minute)] = local.weekday() * 24 + local.hour
    return found


def placement(
    snap: BoundSnapshot, index: int, div: str, p: Placement, now: float, hours: dict[str, int]
) -> Plan | str:
    """A Plan, or why the placement cannot be served."""
    found_net = p.network_id if p.network_id is not None else snap.sites.get(p.site_id)  # type: ignore[arg-type]
    tz = snap.networks.get(found_net) if found_net is not None else None
    if tz is None or found_net is None:
        return f"unknown network {p.network_id}"
    network_id: int = found_net
    if snap.sites.get(p.site_id) != network_id:  # type: ignore[arg-type]
        return f"unknown site {p.site_id} in network {network_id}"
    if (
        p.click_url is not None
        and network_id in snap.click_domains
        and not safe_url(p.click_url, snap.click_domains[network_id])
    ):
        raise BadRequest(f"placements[{index}].clickUrl", "not among the network's click domains")
    zones = p.zone_ids or []
    for z in zones:
        found: Any = snap.zones.get(z)
        if found is None or found[0] != p.site_id:
            return f"unknown zone {z} on site {p.site_id}"
    if tz not in hours:
        hours[tz] = hour_of_week(tz, now)
    key = tuple(zones)
    array = _zone_arrays.get(key)
    if array is None:  # placements repeat their zones (callers must not modify the array)
        if len(_zone_arrays) >= 10000:
            _zone_arrays.clear()
        array = _zone_arrays[key] = np.array(zones, dtype=np.int64)
    return Plan(index, div, p, network_id, array, hours[tz])


_zone_arrays: dict[tuple[int, ...], np.ndarray] = {}
