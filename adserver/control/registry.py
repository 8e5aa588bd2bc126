"""The model registry: CTR/CVR model versions, their gate, activation, rollback and shadow.

A version enters from the trainer (adserver/training/ctr_train.py), from the inbox
(`models/inbox/<name>/<any directory>/`, polled by the control process) or through the API
(`PUT /v1/models/{name}/versions`, a tar of the directory). It is registered only if its
files verify (manifest, checksums, feature specification, weights; adserver/learn/ctr.Model);
it activates only if it also passes the gate: its held-out metrics are not worse than the
active model's (or, with none active, the constant prior's) by more than the margins. The
trainer's versions carry metrics it measured on this server's logs; a version from the API
or the inbox is measured here (`measured_gate`: both models on the newest server-held
examples), never judged by what its manifest claims:

- log loss at most `logloss` (relative) above the reference's,
- AUC at most `auc` (absolute) below,
- calibration (predicted / observed positives) within 1 +- `calibration`, or +- two
  standard errors of the observed count (2 / sqrt(held-out positives)) where that is wider:
  with 20 held-out clicks a perfectly calibrated model measures outside +-25 % one time in
  four (Poisson noise), and a small network's good models must not be refused on noise; from
  64 positives on, the configured margin is the one that applies.

The reference is the active model scored on those of the candidate's held-out examples that
it never trained on (newer than its training window), beside the candidate on the same
examples, when the trainer measured them (manifest `baseline.active` naming the active
version); else the active model's own held-out metrics. Activating publishes `models/<name>/CURRENT`; workers verify,
warm and swap it in within their poll interval (100 ms). Rollback re-activates the previous
active version (its files re-verified, no gate). A shadow version is scored on live traffic
and logged beside the active one's predictions without affecting the auction.
"""

from __future__ import annotations

import builtins
import dataclasses
import json
import logging
import math
import os
import shutil
import threading
from typing import Any

import numpy as np

from adserver.control.auth import Principal
from adserver.control.repo import NotFound
from adserver.control.store import Store, now
from adserver.formats import versions
from adserver.learn import ctr

log = logging.getLogger("adserver.models")


MEASURE_GROUPS = 20_000  # the newest decided placements an uploaded model is measured on


class Refused(Exception):
    """A model version that was not registered or not activated; the message says why."""


@dataclasses.dataclass(frozen=True)
class Margins:
    """How much worse than the active model a candidate may measure and still activate."""

    logloss: float = 0.01
    auc: float = 0.005
    calibration: float = 0.25


def gate(candidate: dict[str, Any], active: dict[str, Any] | None, margins: Margins) -> str | None:
    """Why `candidate` (a manifest) may not replace `active` (its manifest, or None);
    None when it may."""
    m = candidate.get("metrics") or {}
    for key in ("logloss", "auc", "calibration"):
        if not isinstance(m.get(key), (int, float)):
            return f"the manifest has no held-out {key}"
    base = candidate.get("baseline") or {}
    if active is not None:
        same = base.get("active") or {}
        if same.get("version") == active.get("version") and same.get("candidate"):
            ref, against = same, f"active version {active.get('version')} on the same examples"
            m = {**m, **{k: v for k, v in same["candidate"].items() if k in ("logloss", "auc")}}
        else:
            ref, against = (
                active.get("metrics") or {},
                f"active version {active.get('version')}'s own held-out metrics",
            )
    else:
        ref, against = base.get("prior") or {}, "the prior pCTR on the same examples"
    cal = m["calibration"]
    margin = calibration_margin(margins.calibration, m.get("positives"))
    if math.isnan(cal) or abs(cal - 1.0) > margin:
        why = (
            ""
            if margin == margins.calibration
            else f" (two standard errors at {m['positives']} held-out positives)"
        )
        return f"calibration {cal:.3f} is outside 1 +- {margin:.3g}{why}"
    if isinstance(ref.get("logloss"), (int, float)) and m["logloss"] > ref["logloss"] * (
        1 + margins.logloss
    ):
        return (
            f"log loss {m['logloss']:.6f} is worse than {ref['logloss']:.6f} of {against}"
            f" (margin {margins.logloss:.1%})"
        )
    if (
        isinstance(ref.get("auc"), (int, float))
        and not math.isnan(ref["auc"])
        and (math.isnan(m["auc"]) or m["auc"] < ref["auc"] - margins.auc)
    ):
        return f"AUC {m['auc']:.4f} is below {ref['auc']:.4f} of {against} (margin {margins.auc})"
    return None


def calibration_margin(configured: float, positives: Any) -> float:
    """The calibration margin a candidate is held to: the configured one, widened to two
    standard errors of its held-out positive count (Poisson: 1 / sqrt(count)) when that is
    wider. A manifest without a count is held to the configured margin."""
    if isinstance(positives, int) and not isinstance(positives, bool) and positives > 0:
        return max(configured, 2.0 / math.sqrt(positives))
    return configured


class Registry:
    """The CTR and CVR models' registry: imports verify files, the gate decides activation,
    pointers move under one lock, and old versions are pruned."""

    def __init__(self, store: Store, data_dir: str, margins: Margins = Margins()):
        self.store, self.data_dir, self.margins = store, data_dir, margins
        self.lock = threading.Lock()

    # -- reading -------------------------------------------------------------------------

    def list(self, name: str | None = None) -> list[dict[str, Any]]:
        sql, params = "SELECT * FROM models", tuple[str, ...]()
        if name is not None:
            sql, params = sql + " WHERE name = ?", (name,)
        return [_row(r) for r in self.store.read(sql + " ORDER BY name, version DESC", params)]

    def get(self, name: str, version: str) -> dict[str, Any]:
        rows = self.store.read(
            "SELECT * FROM models WHERE name = ? AND version = ?", (name, version)
        )
        if not rows:
            raise NotFound(f"no {name} model version {version!r}")
        out = _row(rows[0])
        path = os.path.join(ctr.models_root(self.data_dir, name), version, "manifest.json")
        try:
            with open(path) as src:
                out["manifest"] = json.load(src)
        except (OSError, ValueError):
            out["manifest"] = None
        return out

    def summary(self) -> dict[str, Any]:
        return {
            name: {
                "active": ctr.pointer(self.data_dir, name),
                "shadow": ctr.pointer(self.data_dir, name, ctr.SHADOW),
                "versions": len(self.list(name)),
            }
            for name in ctr.NAMES
        }

    # -- entering ------------------------------------------------------------------------

    def import_dir(
        self, name: str, path: str, source: str, who: Principal, label: str = ""
    ) -> dict[str, Any]:
        """Verify a model directory, copy it in as a new version and submit it (gate, then
        activation). Raises Refused when its files do not verify (nothing is kept)."""
        if name not in ctr.NAMES:
            raise Refused(f"unknown model {name!r}; want one of {', '.join(ctr.NAMES)}")
        try:
            model = ctr.Model(path)
        except ctr.ModelError as e:
            raise Refused(str(e)) from None
        if model.name != name:
            raise Refused(f"the manifest says {model.name!r}, not {name!r}")
        root = ctr.models_root(self.data_dir, name)
        with self.lock:
            version, tmp = versions.begin(root, 6)
            for f in ctr.FILES:
                shutil.copyfile(os.path.join(path, f), os.path.join(tmp, f))
            manifest = dict(
                model.manifest, version=version, label=label or model.manifest.get("label") or ""
            )
            versions.seal_with_manifest(root, tmp, version, manifest, ctr.FILES)
        return self.submit(name, version, source, who)

    def submit(self, name: str, version: str, source: str, who: Principal) -> dict[str, Any]:
        """Register a version written under models/<name>/ and activate it if it passes the
        gate; the row says what happened (status, reason)."""
        try:
            model = ctr.load(self.data_dir, name, version)
        except ctr.ModelError as e:
            self._record(name, version, "refused", source, who, {}, str(e))
            raise Refused(str(e)) from None
        m = model.manifest
        self._record(
            name, version, "registered", source, who, m, None, label=str(m.get("label") or "")
        )
        try:
            return self.activate(name, version, who)
        except Refused:
            return self.get(name, version)

    # -- changing what serves ------------------------------------------------------------

    def activate(
        self, name: str, version: str, who: Principal, force: bool = False
    ) -> dict[str, Any]:
        """Make a registered version active if its files verify and (unless `force`) it
        passes the gate; Refused says why not (recorded as the version's reason)."""
        row = self.get(name, version)
        with self.lock:
            model = self._verify(name, version, who)
            active = ctr.pointer(self.data_dir, name)
            if active == version:
                return self.get(name, version)
            ref = None
            if active is not None:
                try:
                    ref = ctr.load(self.data_dir, name, active).manifest
                    ref["version"] = active
                except ctr.ModelError:
                    ref = None  # a damaged active model is no reference
            if force:
                why = None
            elif row.get("source") == "trainer":  # measured here, on the server's own logs
                why = gate(model.manifest, ref, self.margins)
            else:  # uploaded: its manifest's metrics are the uploader's word, not evidence
                why = self.measured_gate(name, version, model, active)
            if why is not None:
                self._set(
                    name,
                    version,
                    row["status"] if row["status"] != "refused" else "registered",
                    f"gate: {why}",
                    who,
                    "refuse",
                )
                raise Refused(f"gate: {why}")
            self._publish(
                name, version, active, who, "forced past the gate" if force else "passed the gate"
            )
        return self.get(name, version)

    def measured_gate(
        self, name: str, version: str, model: ctr.Model, active: str | None
    ) -> str | None:
        """The gate for a version that came from outside (the API or the inbox): its
        metrics, and the reference's (the active model, else the constant prior), measured
        here on the newest server-held examples (`MEASURE_GROUPS` placements of the last
        week of logs), never read from its manifest. Too few examples to tell: refused
        (an operator may force it). The measured metrics replace the manifest's in the
        version's row."""
        from adserver.training import ctr_train

        s = ctr_train.Settings(name=name)
        ex = ctr_train.collect(self.data_dir, s)
        groups = range(max(0, len(ex.y) - MEASURE_GROUPS), len(ex.y))
        y = np.concatenate([ex.y[g] for g in groups]) if len(groups) else np.zeros(0)
        if y.shape[0] < s.min_examples or y.sum() < s.min_positives:
            return (
                f"the server holds too few examples to measure it ({y.shape[0]} shown,"
                f" {int(y.sum())} {'clicked' if name == 'ctr' else 'converted'}; at"
                f" least {s.min_examples} and {s.min_positives}): activate with force"
            )
        base = float(y.mean())
        measured = ctr_train.metrics(y, ctr_train.predict(model, ex, groups), base)
        prior = ctr_train.metrics(y, np.full(y.shape[0], base), base)
        reference = None
        if active is not None:
            try:
                current = ctr.load(self.data_dir, name, active)
                reference = {
                    "version": active,
                    "metrics": ctr_train.metrics(y, ctr_train.predict(current, ex, groups), base),
                }
            except ctr.ModelError:
                reference = None
        with self.store.transaction() as db:
            db.execute(
                "UPDATE models SET metrics = ? WHERE name = ? AND version = ?",
                (json.dumps({**measured, "measured": "server"}), name, version),
            )
        why = gate({"metrics": measured, "baseline": {"prior": prior}}, reference, self.margins)
        return None if why is None else f"{why} (measured on {y.shape[0]} server-held examples)"

    def rollback(self, name: str, who: Principal) -> dict[str, Any]:
        """Re-activate the version that was active before the current one."""
        active = ctr.pointer(self.data_dir, name)
        rows = self.store.read(
            "SELECT version FROM models WHERE name = ? AND activated_at IS NOT NULL"
            " AND version != ? ORDER BY activated_at DESC LIMIT 1",
            (name, active or ""),
        )
        if not rows:
            raise Refused(f"no earlier active {name} version to roll back to")
        version = rows[0][0]
        with self.lock:
            self._verify(name, version, who)
            self._publish(name, version, active, who, f"rollback from {active}")
        return self.get(name, version)

    def pin(self, name: str, version: str, pinned: bool, who: Principal) -> dict[str, Any]:
        """Keep a version whatever `prune` would do (or let it go again)."""
        self.get(name, version)
        with self.store.transaction() as db:
            db.execute(
                "UPDATE models SET pinned = ? WHERE name = ? AND version = ?",
                (int(pinned), name, version),
            )
            _audit(db, who, name, version, "pin" if pinned else "unpin", {"pinned": pinned})
        return self.get(name, version)

    def prune(self, keep: int) -> builtins.list[str]:
        """Delete the files of the versions not worth keeping: all but the newest `keep`,
        the active one, the shadow, the previous active one (rollback's target) and pinned
        ones. Their rows stay, with status 'pruned' (the audit and reports name them).
        Returns the versions pruned, as name/version."""
        gone = []
        with self.lock:
            for name in ctr.NAMES:
                active = ctr.pointer(self.data_dir, name)
                kept = {active, ctr.pointer(self.data_dir, name, ctr.SHADOW)}
                kept.update(
                    r[0]
                    for r in self.store.read(
                        "SELECT version FROM models WHERE name = ? AND activated_at IS NOT NULL"
                        " AND version != ? ORDER BY activated_at DESC LIMIT 1",
                        (name, active or ""),
                    )
                )
                rows = self.store.read(
                    "SELECT version, pinned FROM models WHERE name = ? AND"
                    " status != 'pruned' ORDER BY version DESC",
                    (name,),
                )
                kept.update(r[0] for r in rows[:keep])
                kept.update(r[0] for r in rows if r[1])
                for version in [r[0] for r in rows if r[0] not in kept]:
                    shutil.rmtree(
                        os.path.join(ctr.models_root(self.data_dir, name), version),
                        ignore_errors=True,
                    )
                    with self.store.transaction() as db:
                        db.execute(
                            "UPDATE models SET status = 'pruned' WHERE name = ? AND version = ?",
                            (name, version),
                        )
                    gone.append(f"{name}/{version}")
        if gone:
            log.info(
                "model versions pruned (keeping %d, the active, shadow, previous and"
                " pinned ones): %s",
                keep,
                ", ".join(gone),
            )
        return gone

    def shadow(self, name: str, version: str | None, who: Principal) -> dict[str, Any]:
        """Score live traffic with `version` beside the active model (None: stop)."""
        with self.lock:
            old = ctr.pointer(self.data_dir, name, ctr.SHADOW)
            if version is not None:
                self.get(name, version)
                self._verify(name, version, who)
            versions.publish(ctr.models_root(self.data_dir, name), version or "", ctr.SHADOW)
            if old is not None and old != version:
                self._set(
                    name,
                    old,
                    "retired" if old != ctr.pointer(self.data_dir, name) else "active",
                    "no longer the shadow",
                    who,
                    "unshadow",
                )
            if version is not None:
                self._set(
                    name, version, "shadow", "shadow: scored and logged, not used", who, "shadow"
                )
        return self.summary()[name]

    # -- plumbing ------------------------------------------------------------------------

    def _verify(self, name: str, version: str, who: Principal) -> ctr.Model:
        try:
            return ctr.load(self.data_dir, name, version)
        except ctr.ModelError as e:
            self._set(name, version, "refused", str(e), who, "refuse")
            raise Refused(str(e)) from None

    def _publish(self, name: str, version: str, old: str | None, who: Principal, why: str) -> None:
        root = ctr.models_root(self.data_dir, name)
        versions.publish(root, version)
        if ctr.pointer(self.data_dir, name, ctr.SHADOW) == version:
            versions.publish(root, "", ctr.SHADOW)
        stamp = now()
        with self.store.transaction() as db:
            if old is not None and old != version:
                db.execute(
                    "UPDATE models SET status = 'retired' WHERE name = ? AND version = ?",
                    (name, old),
                )
            db.execute(
                "UPDATE models SET status = 'active', reason = ?, activated_at = ?"
                " WHERE name = ? AND version = ?",
                (why, stamp, name, version),
            )
            _audit(db, who, name, version, "activate", {"previous": old, "why": why})
        log.info("%s model %s activated (previous %s): %s", name, version, old, why)

    def _record(
        self,
        name: str,
        version: str,
        status: str,
        source: str,
        who: Principal,
        manifest: dict[str, Any],
        reason: str | None,
        label: str = "",
    ) -> None:
        with self.store.transaction() as db:
            db.execute(
                "INSERT INTO models (name, version, status, source, label, created_at,"
                " created_by, metrics, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (name, version) DO UPDATE SET status = excluded.status,"
                " reason = excluded.reason",
                (
                    name,
                    version,
                    status,
                    source,
                    label,
                    now(),
                    str(manifest.get("created_by") or who.key_id),
                    json.dumps(manifest.get("metrics")) if manifest.get("metrics") else None,
                    reason,
                ),
            )
            _audit(
                db,
                who,
                name,
                version,
                "register" if status != "refused" else "refuse",
                {"status": status, "source": source, "reason": reason},
            )

    def _set(
        self, name: str, version: str, status: str, reason: str, who: Principal, action: str
    ) -> None:
        with self.store.transaction() as db:
            db.execute(
                "UPDATE models SET status = ?, reason = ? WHERE name = ? AND version = ?",
                (status, reason, name, version),
            )
            _audit(db, who, name, version, action, {"status": status, "reason": reason})


def _row(r: Any) -> dict[str, Any]:
    out = dict(r)
    out["metrics"] = json.loads(out["metrics"]) if out.get("metrics") else None
    return out


def _audit(
    db: Any, who: Principal, name: str, version: str, action: str, after: dict[str, Any]
) -> None:
    db.execute(
        "INSERT INTO audit (at, key_id, entity, entity_id, action, network_id,"
        " advertiser_id, before, after) VALUES (?, ?, 'models', ?, ?, NULL, NULL, NULL, ?)",
        (now(), who.key_id, f"{name}/{version}", action, json.dumps(after)),
    )
