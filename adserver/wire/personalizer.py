"""Azure Personalizer's rank/reward wire format (v1.0 and the 2022-09-01-preview shape the
newer client speaks): request and response types, the checks the service made, error bodies.

Field names are Personalizer's (camelCase). Facts: ../shared/specs/personalizer.md. Both
published clients send `null` for unset optional fields, so every optional field accepts it;
unknown fields are ignored.
"""

from __future__ import annotations

from typing import Any

import msgspec

MAX_ACTIONS = 50
MAX_SLOTS = 50
MAX_ID = 256


class Constraints(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """Our extension: business rules for an action, enforced like ad frequency caps."""

    daily_cap: int | None = None  # shown at most this often per UTC day (all workers)
    min_share: float | None = None  # explored at least this share of rank calls


class RankableAction(msgspec.Struct, rename="camel"):
    """An action to rank, with its features."""

    id: str
    features: list[dict[str, Any]] | None = None
    constraints: Constraints | None = None


class RankRequest(msgspec.Struct, rename="camel"):
    """Personalizer's rank request: context features, actions, excluded ones, event id."""

    actions: list[RankableAction]
    context_features: list[dict[str, Any]] | None = None
    excluded_actions: list[str] | None = None
    event_id: str | None = None
    defer_activation: bool | None = None


class RankedAction(msgspec.Struct, rename="camel"):
    """An action and its probability in a ranking."""

    id: str
    probability: float


class RankResponse(msgspec.Struct, rename="camel"):
    """Personalizer's rank response: the ranking, the reward action and the event id."""

    ranking: list[RankedAction]
    event_id: str
    reward_action_id: str


class SlotRequest(msgspec.Struct, rename="camel"):
    """One slot of a multi-slot rank: its id, features and baseline action."""

    id: str
    baseline_action: str
    features: list[dict[str, Any]] | None = None
    excluded_actions: list[str] | None = None


class MultiSlotRankRequest(msgspec.Struct, rename="camel"):
    """Personalizer's multi-slot rank request."""

    actions: list[RankableAction]
    slots: list[SlotRequest]
    context_features: list[dict[str, Any]] | None = None
    event_id: str | None = None
    defer_activation: bool | None = None


class SlotResponse(msgspec.Struct, rename="camel"):
    """One slot's chosen action."""

    id: str
    reward_action_id: str


class MultiSlotRankResponse(msgspec.Struct, rename="camel"):
    """Personalizer's multi-slot rank response: each slot's action and the event id."""

    slots: list[SlotResponse]
    event_id: str


class RewardRequest(msgspec.Struct, rename="camel"):
    """A ranking's reward (0-1)."""

    value: float


class SlotReward(msgspec.Struct, rename="camel"):
    """One slot's reward."""

    slot_id: str
    value: float


class MultiSlotRewardRequest(msgspec.Struct, rename="camel"):
    """The rewards of a multi-slot ranking, per slot."""

    reward: list[SlotReward]


class Invalid(Exception):
    """A request the service refuses with 400 BadRequest; `target` names the field."""

    def __init__(self, message: str, target: str = ""):
        super().__init__(message)
        self.message, self.target = message, target


def error_body(code: str, message: str, target: str | None = None) -> bytes:
    """Personalizer's error shape, which both clients parse."""
    err: dict[str, Any] = {"code": code, "message": message}
    if target:
        err["target"] = target
    return msgspec.json.encode({"error": err})


def check_actions(
    actions: list[RankableAction], excluded: list[str] | None, event_id: str | None
) -> None:
    if not actions:
        raise Invalid("at least one action is required", "actions")
    if len(actions) > MAX_ACTIONS:
        raise Invalid(f"at most {MAX_ACTIONS} actions; got {len(actions)}", "actions")
    seen: set[str] = set()
    for i, a in enumerate(actions):
        if not a.id or len(a.id) > MAX_ID:
            raise Invalid(f"an action id must have 1 to {MAX_ID} characters", f"actions[{i}].id")
        if a.id in seen:
            raise Invalid(f"action id {a.id!r} appears twice", f"actions[{i}].id")
        seen.add(a.id)
    for x in excluded or ():
        if x not in seen:
            raise Invalid(f"excluded action {x!r} is not among the actions", "excludedActions")
    shares = 0.0
    for i, a in enumerate(actions):
        c = a.constraints
        if c is None:
            continue
        if c.daily_cap is not None and c.daily_cap < 0:
            raise Invalid("dailyCap must be at least 0", f"actions[{i}].constraints.dailyCap")
        if c.min_share is not None:
            if not 0.0 <= c.min_share <= 1.0:
                raise Invalid(
                    "minShare must be between 0 and 1", f"actions[{i}].constraints.minShare"
                )
            shares += c.min_share
    if shares > 1.0:
        raise Invalid(f"the actions' minShare add up to {shares:.3g}, more than 1", "actions")
    if event_id is not None and (not event_id or len(event_id) > MAX_ID):
        raise Invalid(f"eventId must have 1 to {MAX_ID} characters", "eventId")


def check_rank(req: RankRequest) -> None:
    check_actions(req.actions, req.excluded_actions, req.event_id)
    if req.excluded_actions and len(set(req.excluded_actions)) >= len(req.actions):
        raise Invalid("every action is excluded", "excludedActions")


def check_multislot(req: MultiSlotRankRequest) -> None:
    check_actions(req.actions, None, req.event_id)
    if not req.slots:
        raise Invalid("at least one slot is required", "slots")
    if len(req.slots) > MAX_SLOTS:
        raise Invalid(f"at most {MAX_SLOTS} slots; got {len(req.slots)}", "slots")
    ids = {a.id for a in req.actions}
    seen: set[str] = set()
    for i, s in enumerate(req.slots):
        if not s.id or len(s.id) > MAX_ID or s.id in seen:
            raise Invalid("slot ids must be unique, 1 to 256 characters", f"slots[{i}].id")
        seen.add(s.id)
        if s.baseline_action not in ids:
            raise Invalid(
                f"baseline action {s.baseline_action!r} is not among the actions",
                f"slots[{i}].baselineAction",
            )
        for x in s.excluded_actions or ():
            if x not in ids:
                raise Invalid(
                    f"excluded action {x!r} is not among the actions", f"slots[{i}].excludedActions"
                )


def check_reward(value: float, target: str = "value") -> None:
    if not -1.0 <= value <= 1.0 or value != value:
        raise Invalid(f"a reward must be between -1 and 1; got {value}", target)


def check_multislot_reward(req: MultiSlotRewardRequest) -> None:
    for i, r in enumerate(req.reward):
        check_reward(r.value, f"reward[{i}].value")


rank_decoder = msgspec.json.Decoder(RankRequest)
multislot_decoder = msgspec.json.Decoder(MultiSlotRankRequest)
reward_decoder = msgspec.json.Decoder(RewardRequest)
multislot_reward_decoder = msgspec.json.Decoder(MultiSlotRewardRequest)
encoder = msgspec.json.Encoder()
