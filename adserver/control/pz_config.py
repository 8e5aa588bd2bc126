"""Personalizer's stored configuration: the service configuration and the learning policy as
the API reads and writes them (camelCase; durations in ISO 8601, such as "PT10M"), their
checks, the pz_settings table (the control process is its one writer) and the times the
Personalizer routes and evaluations print and parse. A leaf of the control plane: the
learner (control/personalizer.py), the evaluations and the routes
(control/personalizer_api.py) all read it.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Literal

import msgspec

from adserver.common.validation import EARLIEST, LATEST
from adserver.control.auth import Principal
from adserver.control.store import Store, now

DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$")


def seconds(text: str) -> float:
    """ISO 8601 duration (days, hours, minutes, seconds) in seconds; ValueError if not one."""
    m = DURATION.match(text or "")
    if not m or text in ("P", "PT") or text.endswith("T"):
        raise ValueError(f"{text!r} is not an ISO 8601 duration such as PT10M")
    d, h, mi, s = (float(x) if x else 0.0 for x in m.groups())
    return d * 86400 + h * 3600 + mi * 60 + s


def duration(total: float) -> str:
    d, rest = divmod(int(round(total)), 86400)
    h, rest = divmod(rest, 3600)
    mi, s = divmod(rest, 60)
    out = "P" + (f"{d}D" if d else "")
    tail = (f"{h}H" if h else "") + (f"{mi}M" if mi else "") + (f"{s}S" if s else "")
    return out + ("T" + tail if tail or not d else "")


class ServiceConfiguration(msgspec.Struct, rename="camel", omit_defaults=False):
    """Personalizer's service configuration, as its clients send it (camelCase, ISO 8601
    durations)."""

    reward_wait_time: str = "PT10M"
    default_reward: float = 0.0
    reward_aggregation: Literal["earliest", "sum"] = "earliest"
    exploration_percentage: float = 0.2
    model_export_frequency: str = "PT5M"
    log_retention_days: int = 90
    learning_mode: Literal["Online", "Apprentice", "LoggingOnly"] = "Online"
    is_auto_optimization_enabled: bool = False
    auto_optimization_frequency: str | None = None
    auto_optimization_start_date: str | None = None
    last_configuration_edit_date: str | None = None
    log_mirror_enabled: bool | None = None
    log_mirror_sas_uri: str | None = None


class PolicyConfiguration(msgspec.Struct, rename="camel"):
    """The learning policy: a name and its arguments (Vowpal Wabbit style)."""

    name: str = "default"
    arguments: str = "--cb_explore_adf --epsilon 0.2 --cb_type mtr -l 0.03 -b 18"


class Invalid(Exception):
    """A Personalizer request that cannot be taken: the message and the field (target)."""

    def __init__(self, message: str, target: str):
        super().__init__(message)
        self.message, self.target = message, target


def check_service(c: ServiceConfiguration) -> None:
    for name, value, lo, hi in (
        ("rewardWaitTime", c.reward_wait_time, 5, 2 * 86400),
        ("modelExportFrequency", c.model_export_frequency, 60, 86400),
    ):
        try:
            s = seconds(value)
        except ValueError as e:
            raise Invalid(str(e), name) from None
        if not lo <= s <= hi:
            raise Invalid(f"{name} must be from {duration(lo)} to {duration(hi)}", name)
    if not -1 <= c.default_reward <= 1:
        raise Invalid("defaultReward must be between -1 and 1", "defaultReward")
    if not 0 <= c.exploration_percentage <= 1:
        raise Invalid("explorationPercentage must be between 0 and 1", "explorationPercentage")
    if not 0 <= c.log_retention_days <= 365 * 10:
        raise Invalid("logRetentionDays must be from 0 to 3650", "logRetentionDays")


FLAGS = {
    "--epsilon": ("epsilon", float),
    "--lambda": ("lam", float),
    "-l": ("lr", float),
    "-b": ("bits", int),
}


def parse_arguments(text: str) -> dict[str, Any]:
    """The learner settings a policy's argument string names (Vowpal Wabbit's spelling:
    --epsilon E, --softmax [--lambda L], -l RATE, -b BITS); other flags are accepted and
    have no effect here."""
    words = text.split()
    out: dict[str, Any] = {"softmax": "--softmax" in words}
    for i, w in enumerate(words):
        if w in FLAGS:
            name, kind = FLAGS[w]
            try:
                out[name] = kind(words[i + 1])
            except (IndexError, ValueError):
                raise Invalid(f"{w} needs a {kind.__name__} value", "arguments") from None
    if not 0 <= out.get("epsilon", 0.2) <= 1:
        raise Invalid("--epsilon must be between 0 and 1", "arguments")
    if not 8 <= out.get("bits", 18) <= 24:
        raise Invalid("-b must be from 8 to 24", "arguments")
    if not 0 < out.get("lr", 0.03) <= 10:
        raise Invalid("-l must be in (0, 10]", "arguments")
    return out


class Settings:
    """pz_settings in the control store (the control process is its one writer)."""

    def __init__(self, store: Store):
        self.store = store

    def get(self, name: str) -> Any:
        rows = self.store.read("SELECT value FROM pz_settings WHERE name = ?", (name,))
        kind = ServiceConfiguration if name == "service" else PolicyConfiguration
        return msgspec.json.decode(rows[0][0], type=kind) if rows else kind()

    def put(self, name: str, value: Any, who: Principal) -> None:
        raw = msgspec.json.encode(value).decode()
        with self.store.transaction() as db:
            db.execute(
                "INSERT INTO pz_settings VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE"
                " SET value = excluded.value, updated_at = excluded.updated_at",
                (name, raw, now()),
            )
            _audit(db, who, name, "update", raw)

    def delete(self, name: str, who: Principal) -> None:
        with self.store.transaction() as db:
            db.execute("DELETE FROM pz_settings WHERE name = ?", (name,))
            _audit(db, who, name, "reset")


def _audit(db: Any, who: Principal, what: str, action: str, after: str | None = None) -> None:
    """An audit row for a change to the installation's Personalizer (no network's)."""
    db.execute(
        "INSERT INTO audit (at, key_id, entity, entity_id, action, network_id,"
        " advertiser_id, before, after) VALUES (?, ?, 'personalizer', ?, ?, NULL,"
        " NULL, NULL, ?)",
        (now(), who.key_id, what, action, after),
    )


def learner_settings(store: Store) -> tuple[ServiceConfiguration, dict[str, Any]] | None:
    """The stored service configuration and policy arguments, None when neither was set."""
    if not store.read("SELECT 1 FROM pz_settings LIMIT 1"):
        return None
    s = Settings(store)
    return s.get("service"), parse_arguments(s.get("policy").arguments)


def iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat().replace("+00:00", "Z")


def parse_time(text: str) -> float:
    """An ISO 8601 time (a trailing Z allowed; naive means UTC) as a Unix time; ValueError
    also for a year outside 1971-2199 (year 1 in +01:00 overflows when moved to UTC)."""
    t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if not EARLIEST.year <= t.year <= LATEST.year:
        raise ValueError(f"{text!r} is not between {EARLIEST.year} and {LATEST.year}")
    return (t if t.tzinfo else t.replace(tzinfo=dt.UTC)).timestamp()
