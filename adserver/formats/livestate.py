"""The live state: `<data>/live.lmdb`, written by the control process, read by the workers.

Keys:
- `paused`: msgpack list of flight ids that must not serve now (a cap reached).
- `throttle`: msgpack `[[flight id, p], ...]`, the pacing throttle of each flight below 1:
  the probability that it enters a request's auctions (adserver/control/pacing.py).
- `grants`: msgpack `{"n": grant number, "lead": worker number, "flights": [[flight id,
  allowance, unit cost, lead allowance], ...]}`, the hard-cap allowance each worker may
  commit per controller interval for flights near a cap (in the cap's ledger units: nano-units
  of spend, or impressions or clicks), the most one decision can cost, and what the lead
  worker gets instead. A worker starts counting again at each new grant number.
- `r:<network id>:<user key>`: msgpack list of the user's recent products (newest first,
  at most RECENT): the products of ads they clicked and of their purchases, from the
  `users` table of the control store (sponsored products on home and cart pages).
- `pa:<UTC day>:<action id>`: msgpack int, how often the Personalizer action was shown that
  day (for per-action daily caps, adserver/serving/personalize.py).
- `u:<network id>:<user key>`: msgpack `[[level, id, unix time], ...]`, the user's counted
  impressions within the longest frequency-cap window, for the flights, campaigns and
  advertisers that carry a frequency cap (level 0 flight, 1 campaign, 2 advertiser).

Money never lives here (the ledger is in the control store), so nothing here needs more than
LMDB's default durability; the control process can rebuild it from the store.
"""

from __future__ import annotations

import os
from typing import Any

import lmdb
from msgspec import msgpack

FILENAME = "live.lmdb"
MAP_SIZE = 4 << 30
PAUSED = b"paused"
THROTTLE = b"throttle"
GRANTS = b"grants"
LEVELS = {"flight": 0, "campaign": 1, "advertiser": 2}


def path(data_dir: str) -> str:
    return os.path.join(data_dir, FILENAME)


def user_key(network_id: int, user: str) -> bytes:
    return f"u:{network_id}:{user}".encode()[:500]  # LMDB keys are at most 511 bytes


RECENT = 20
PROFILES_LOADED = b"profiles-loaded"


def recent_key(network_id: int, user: str) -> bytes:
    return f"r:{network_id}:{user}".encode()[:500]


def action_key(day: str, action: str) -> bytes:
    return f"pa:{day}:{action}".encode()[:500]


def open_writer(data_dir: str) -> lmdb.Environment:
    os.makedirs(data_dir, exist_ok=True)
    return lmdb.open(path(data_dir), map_size=MAP_SIZE, subdir=False, max_readers=512)


def open_reader(data_dir: str) -> lmdb.Environment | None:
    """Read-only handle for a worker (after fork); None until the control process made it."""
    if not os.path.exists(path(data_dir)):
        return None
    env = lmdb.open(path(data_dir), map_size=MAP_SIZE, subdir=False, readonly=True, max_readers=512)
    env.reader_check()  # clear reader slots of crashed processes
    return env


def decode(raw: bytes | None) -> Any:
    return None if raw is None else msgpack.decode(raw)


encode = msgpack.encode
