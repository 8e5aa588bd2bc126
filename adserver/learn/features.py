"""The features of the CTR/CVR models: what a decision knows about its context and each
candidate ad, the same at serving time (adserver/serving/stages/score.py) and when training
from the decision records (adserver/training/ctr_train.py).

Context fields (one value each unless noted): site, zone, hour_of_week (UTC, Monday 0h = 0),
device (from the User-Agent), segment (each of the user's segments), token (each normalized
query token), category (the page's category: a category page's own, a product page's
product's leaf category). Ad fields: ad, advertiser, creative, flight, campaign, ad_type,
ad_category (the leaf category of the product the ad promotes). Crosses pair a context field
with an ad field (token x ad: which queries an ad answers well).

A model's `features.json` (`Spec`) names the fields and crosses it uses, the hash space (2^bits
buckets) and the hash seed; buckets come from adserver._hashing.hash_features (Cython; twin
in adserver/kernels/hashing_ref.py).
"""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np

CONTEXT = {
    "site": 1,
    "zone": 2,
    "hour_of_week": 3,
    "device": 4,
    "segment": 5,
    "token": 6,
    "category": 7,
}
MULTI = ("segment", "token")
AD = {
    "ad": 16,
    "advertiser": 17,
    "creative": 18,
    "flight": 19,
    "campaign": 20,
    "ad_type": 21,
    "ad_category": 22,
}
AD_ORDER = tuple(AD)  # the columns of a snapshot's ad feature matrix and of logged winners
DEVICES = {"unknown": 0, "desktop": 1, "mobile": 2, "tablet": 3}
MAX_BITS = 26


class SpecError(ValueError):
    """A feature specification that cannot be used (the message names the problem)."""


class Spec(msgspec.Struct, forbid_unknown_fields=True, dict=True):
    """A model's feature specification: the request and ad fields, their crosses, the hash seed
    and bits."""

    bits: int = 20
    seed: int = 0x5EED
    context: list[str] = msgspec.field(default_factory=lambda: list(CONTEXT))
    ad: list[str] = msgspec.field(
        default_factory=lambda: ["ad", "advertiser", "creative", "flight", "ad_category"]
    )
    crosses: list[tuple[str, str]] = msgspec.field(
        default_factory=lambda: [
            ("token", "ad"),
            ("zone", "ad"),
            ("device", "ad"),
            ("segment", "advertiser"),
            ("category", "ad_category"),
            ("hour_of_week", "ad"),
        ]
    )

    def __post_init__(self) -> None:
        if not 4 <= self.bits <= MAX_BITS:
            raise SpecError(f"bits: {self.bits}; want 4 to {MAX_BITS}")
        if not 0 <= self.seed < 2**64:
            raise SpecError("seed: want an unsigned 64-bit integer")
        for name in self.context:
            if name not in CONTEXT:
                raise SpecError(f"context: unknown field {name!r} (known: {', '.join(CONTEXT)})")
        for name in self.ad:
            if name not in AD:
                raise SpecError(f"ad: unknown field {name!r} (known: {', '.join(AD)})")
        if not self.ad:
            raise SpecError("ad: at least one ad field")
        for c, a in self.crosses:
            if c not in self.context or a not in self.ad:
                raise SpecError(
                    f"crosses: ({c!r}, {a!r}) must pair a context field and an"
                    " ad field the spec uses"
                )
        # compiled forms for hash_features
        self._ctx_ids = {CONTEXT[n] for n in self.context}
        self.ad_field = np.array([AD[n] for n in self.ad], dtype=np.uint64)
        self.ad_cols = np.array([AD_ORDER.index(n) for n in self.ad], dtype=np.int64)
        self.cross_arr = np.array(
            [[CONTEXT[c], self.ad.index(a)] for c, a in self.crosses], dtype=np.int32
        ).reshape(len(self.crosses), 2)

    def context_arrays(self, raw: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """(field ids, values) of a context (`raw`: field name -> int, or list for
        segment/token; absent, None or 0 for category: no feature)."""
        fields: list[int] = []
        values: list[int] = []
        for name in self.context:
            v = raw.get(name)
            if v is None:
                continue
            fid = CONTEXT[name]
            if name in MULTI:
                for x in v:
                    fields.append(fid)
                    values.append(int(x) & 0xFFFFFFFFFFFFFFFF)
            elif name != "category" or v:
                fields.append(fid)
                values.append(int(v) & 0xFFFFFFFFFFFFFFFF)
        return np.array(fields, dtype=np.uint64), np.array(values, dtype=np.uint64)


_spec_decoder = msgspec.json.Decoder(Spec)


def decode_spec(raw: bytes) -> Spec:
    try:
        return _spec_decoder.decode(raw)
    except msgspec.ValidationError as e:
        raise SpecError(f"features.json: {e}") from None
    except msgspec.DecodeError as e:
        raise SpecError(f"features.json is not valid JSON: {e}") from None


def encode_spec(spec: Spec) -> bytes:
    return msgspec.json.format(msgspec.json.encode(spec), indent=1)


def device_of(user_agent: str | None) -> int:
    """A coarse device class from a User-Agent header (DEVICES)."""
    if not user_agent:
        return DEVICES["unknown"]
    ua = user_agent.lower()
    if "ipad" in ua or "tablet" in ua:
        return DEVICES["tablet"]
    if "mobi" in ua or "iphone" in ua or "android" in ua:
        return DEVICES["mobile"]
    return DEVICES["desktop"]


def hour_of_week(ts: float) -> int:
    """UTC hour of the week, Monday 0h = 0 (1970-01-01 was a Thursday)."""
    return int((int(ts) // 3600 + 72) % 168)


def ad_matrix(columns: dict[str, np.ndarray]) -> np.ndarray:
    """(ads, len(AD_ORDER)) uint64: every ad row's ad field values, from snapshot columns."""
    fl = columns["ad_flight"]
    parts = {
        "ad": columns["ad_id"],
        "advertiser": columns["fl_advertiser"][fl],
        "creative": columns["ad_creative"],
        "flight": columns["fl_id"][fl],
        "campaign": columns["fl_campaign"][fl],
        "ad_type": columns["ad_type"],
        "ad_category": columns["ad_category"],
    }
    n = fl.shape[0]
    out = np.empty((n, len(AD_ORDER)), dtype=np.uint64)
    for j, name in enumerate(AD_ORDER):
        out[:, j] = (
            parts[name].astype(np.int64).view(np.uint64)
            if parts[name].dtype != np.uint64
            else parts[name]
        )
    return out
