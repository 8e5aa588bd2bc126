"""What a worker reads from live.lmdb, as arrays over its snapshot's flight rows: which flights
are paused (a cap reached, or this worker's hard-cap allowance spent), each flight's pacing
throttle, and the allowances the control process granted (adserver/control/pacing.py).

The worker re-reads the live state every poll (0.1 s) and rebuilds the arrays only when a key
changed or a new snapshot came in. The allowance counters are the worker's own memory: the
data plane writes no shared state.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from adserver.formats import livestate
from adserver.serving.bound import BoundSnapshot
from adserver.snapshot.query import EMPTY_F4


class LiveView:
    """A worker's read of live.lmdb: the flights paused by caps, the pacing throttles and its
    own allowances near hard caps."""

    def __init__(self, index: int = 0) -> None:
        self.index = index  # this worker's number: the grants' lead rotates over them
        self.paused = np.zeros(0, dtype=np.int8)  # per flight row; empty: none paused
        self.throttle = EMPTY_F4  # per flight row; empty: all at 1
        self.grant = -1  # the grant number the allowances below belong to
        self.left: dict[int, list[int]] = {}  # flight id -> [allowance left, unit cost]
        self._seen: tuple[Any, ...] = ()
        self._rows: dict[int, int] = {}
        self._cap_paused: list[int] = []

    def refresh(self, env: Any, snap: BoundSnapshot | None) -> None:
        if env is None or snap is None:
            return
        with env.begin() as txn:
            raw = (
                txn.get(livestate.PAUSED),
                txn.get(livestate.THROTTLE),
                txn.get(livestate.GRANTS),
            )
        key = (snap.version, *raw)
        if key == self._seen:
            return
        if not self._seen or self._seen[0] != snap.version:
            ids = snap.columns["fl_id"].tolist()
            self._rows = dict(zip(ids, range(len(ids))))
        self._seen = key
        paused_raw, throttle_raw, grants_raw = raw
        self._cap_paused = livestate.decode(paused_raw) or []
        throttles = livestate.decode(throttle_raw) or []
        if throttles:
            throttle = np.ones(len(self._rows), dtype=np.float32)
            for fid, p in throttles:
                row = self._rows.get(fid)
                if row is not None:
                    throttle[row] = p
            self.throttle = throttle
        else:
            self.throttle = EMPTY_F4
        grants = livestate.decode(grants_raw) or {"n": -1, "lead": -1, "flights": []}
        if grants["n"] != self.grant:  # a new interval: count again from the new allowance
            self.grant = grants["n"]
            lead = grants.get("lead") == self.index
            self.left = {
                fid: [int(lead_a if lead else a), int(cost)]
                for fid, a, cost, lead_a in grants["flights"]
            }
        self._rebuild_paused()

    def paused_for(self, snap: BoundSnapshot) -> np.ndarray:
        """The paused mask if it covers `snap`'s flight rows (a request may still run on the
        snapshot before a swap), else the snapshot's empty one."""
        return (
            self.paused if self.paused.shape[0] == snap.columns["fl_id"].shape[0] else snap.no_pause
        )

    def throttle_for(self, snap: BoundSnapshot) -> np.ndarray | None:
        """The throttles if they cover `snap`'s flight rows, else None (all at 1)."""
        return self.throttle if self.throttle.shape[0] == snap.columns["fl_id"].shape[0] else None

    def _rebuild_paused(self) -> None:
        pause = [self._rows[f] for f in self._cap_paused if f in self._rows]
        pause += [
            self._rows[f] for f, (left, _cost) in self.left.items() if left <= 0 and f in self._rows
        ]
        if pause:
            paused = np.zeros(len(self._rows), dtype=np.int8)
            paused[pause] = 1
            self.paused = paused
        else:
            self.paused = np.zeros(0, dtype=np.int8)

    def charge(self, flight_ids: list[int]) -> None:
        """Count decisions made for flights under an allowance (each at its largest cost); a
        flight with nothing left is paused in this worker until the next grant. The decision
        that spends the last of an allowance may cost more than what was left: billing stops
        at the cap (adserver/control/billing.Billing)."""
        for fid in flight_ids:
            entry = self.left.get(fid)
            if entry is None:
                continue
            entry[0] -= entry[1]
            if entry[0] <= 0:
                row = self._rows.get(fid)
                if row is None:
                    continue
                if self.paused.shape[0] != len(self._rows):
                    self.paused = np.zeros(len(self._rows), dtype=np.int8)
                self.paused[row] = 1  # in place: the request's next placement sees it
