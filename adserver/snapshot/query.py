"""What the filter kernel knows about one placement of one request."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from adserver.common.text import token_ids
from adserver.snapshot.programs import NO_PROPERTIES, str_id

EMPTY_I64 = np.zeros(0, dtype=np.int64)
EMPTY_U64 = np.zeros(0, dtype=np.uint64)
EMPTY_I8 = np.zeros(0, dtype=np.int8)
EMPTY_F8 = np.zeros(0, dtype=np.float64)
EMPTY_F4 = np.zeros(0, dtype=np.float32)
NO_PHRASE_PTR = np.zeros(1, dtype=np.int64)


class Query:
    """Inputs of the candidate filter. Arrays are numpy; ids are 0 when absent."""

    __slots__ = (
        "now",
        "hour_of_week",
        "site_id",
        "zone_ids",
        "forced_campaign",
        "forced_flight",
        "forced_ad",
        "blocked_creatives",
        "segments",
        "personalized",
        "geo",
        "phrase_ptr",
        "phrase_tok",
        "props",
        "used_flights",
        "used_campaigns",
        "used_advertisers",
        "used_creatives",
        "u_level",
        "u_id",
        "u_ts",
        "throttle",
        "seed",
    )

    def __init__(self, **values: Any):
        self.now = 0
        self.hour_of_week = 0
        self.site_id = 0
        self.zone_ids = EMPTY_I64
        self.forced_campaign = self.forced_flight = self.forced_ad = 0
        self.blocked_creatives = EMPTY_I64
        self.segments = EMPTY_U64
        self.personalized = True
        self.geo = (0, 0, 0, 0)
        self.phrase_ptr = NO_PHRASE_PTR
        self.phrase_tok = EMPTY_U64
        self.props = NO_PROPERTIES
        self.used_flights = self.used_campaigns = EMPTY_I64
        self.used_advertisers = self.used_creatives = EMPTY_I64
        self.u_level = EMPTY_I8  # the user's counted impressions (frequency caps)
        self.u_id = EMPTY_I64
        self.u_ts = EMPTY_F8
        self.throttle = EMPTY_F4  # per flight row: how often it may enter auctions (none: 1)
        self.seed = 0  # this request's pacing draws: one per flight, see throttle_unit
        for k, v in values.items():
            setattr(self, k, v)


NO_PHRASES: tuple[np.ndarray, np.ndarray, tuple[int, ...]] = (NO_PHRASE_PTR, EMPTY_U64, ())
_seen_phrases: dict[
    tuple[str, tuple[str, ...]], tuple[np.ndarray, np.ndarray, tuple[int, ...]]
] = {}
PHRASE_CACHE = 20000  # search queries are heavily skewed: most repeat


def phrases(
    search_term: str | None, keywords: list[str] | None
) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """(ptr, tokens, the distinct tokens sorted) of the request's phrases: the search term
    first, then each keyword (cached: callers must not modify them)."""
    if not search_term and not keywords:
        return NO_PHRASES
    key = (search_term or "", tuple(keywords or ()))
    found = _seen_phrases.get(key)
    if found is None:
        if len(_seen_phrases) >= PHRASE_CACHE:
            _seen_phrases.clear()
        found = _seen_phrases[key] = _phrases(search_term, keywords)
    return found


def _phrases(
    search_term: str | None, keywords: list[str] | None
) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    parts = [token_ids(search_term or "")] + [token_ids(k) for k in keywords or ()]
    parts = [p for p in parts if p.shape[0]]
    if not parts:
        return NO_PHRASES
    # (few and small arrays: each numpy call here costs more than the work it does)
    ptr = np.array([0, *itertools.accumulate(p.shape[0] for p in parts)], dtype=np.int64)
    tok = parts[0] if len(parts) == 1 else np.concatenate(parts)
    return ptr, tok, tuple(sorted(set(tok.tolist())))


def segment_ids(segments: list[Any] | None) -> np.ndarray:
    if not segments:
        return EMPTY_U64
    return np.array([str_id(s) for s in segments], dtype=np.uint64)


def frequency(entries: list[list[Any]] | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(levels, ids, times) of a user's live-state frequency entry."""
    if not entries:
        return EMPTY_I8, EMPTY_I64, EMPTY_F8
    return (
        np.array([e[0] for e in entries], dtype=np.int8),
        np.array([e[1] for e in entries], dtype=np.int64),
        np.array([e[2] for e in entries], dtype=np.float64),
    )
