"""The simulated storefront's ground truth (adserver/tools/simulate.py): its traffic curve and
the click model a CTR model should learn.

A flight's click probability for a shopper at an hour: its base CTR (drawn per ad type from
`CTR`) x the audience lift (x4.0 when the shopper holds the flight's interest, one of
`INTERESTS`, else x0.4) x the flight's affinity for the shopper's device (log-normal,
sigma `DEVICE_SIGMA`) x the hour's lift (`HOUR_LIFT`: evenings click more), each factor
normalized so that the flight's mean CTR stays its base.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

# share of a day's page views per UTC hour (the network runs in UTC): a storefront whose
# evening peak is later and whose morning is busier than the controller's default curve
TRAFFIC = np.array(
    [
        1.6,
        1.0,
        0.7,
        0.5,
        0.5,
        0.7,
        1.2,
        2.4,
        4.0,
        4.6,
        4.4,
        4.2,
        4.8,
        4.9,
        4.3,
        4.1,
        4.3,
        5.0,
        6.0,
        7.2,
        8.4,
        8.6,
        6.6,
        3.6,
    ]
)
TRAFFIC = TRAFFIC / TRAFFIC.sum()
CTR = {"sponsored": (0.015, 0.05), "native": (0.005, 0.015), "banner": (0.002, 0.008)}
CVR = 0.08  # purchases per click
INTERESTS = ("deals", "parents", "pets", "fitness", "cooks", "tech")
DEVICE_UA = {
    "mobile": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) Mobile/15E148",
    "desktop": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/131.0 Safari/537.36",
    "tablet": "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) Safari/604.1",
}
DEVICE_SHARE = {"mobile": 0.55, "desktop": 0.35, "tablet": 0.10}
AUDIENCE_LIFT = (4.0, 0.4)  # CTR factor when the shopper holds the flight's interest, or not
DEVICE_SIGMA = 0.8  # spread of a flight's device affinities (log-normal)
HOUR_LIFT = np.array([0.8] * 7 + [1.0] * 11 + [1.25] * 6)


@functools.lru_cache(maxsize=None)
def shopper_traits(n: int) -> tuple[str, tuple[int, ...]]:
    """Shopper n's device and interests (fixed per shopper)."""
    r = np.random.default_rng(1_000_003 + n)
    device = str(r.choice(list(DEVICE_SHARE), p=list(DEVICE_SHARE.values())))
    k = 1 + int(r.random() < 0.5)
    return device, tuple(sorted(r.choice(len(INTERESTS), size=k, replace=False).tolist()))


def _audience_norm() -> float:
    """The mean audience factor over shoppers (so that a flight's mean CTR stays `ctr`)."""
    held = 1.5 / len(INTERESTS)  # shoppers hold 1.5 interests of 6 on average
    return held * AUDIENCE_LIFT[0] + (1 - held) * AUDIENCE_LIFT[1]


def true_ctr(f: Any, shopper: int, hour: int) -> float:
    """The ground-truth click probability of flight f's ad shown to shopper n at an hour."""
    device, interests = shopper_traits(shopper)
    audience = AUDIENCE_LIFT[0] if f.interest in interests else AUDIENCE_LIFT[1]
    hour_norm = float((HOUR_LIFT * TRAFFIC).sum())
    return min(
        0.5,
        f.ctr * audience / _audience_norm() * f.device_lift[device] * HOUR_LIFT[hour] / hour_norm,
    )
