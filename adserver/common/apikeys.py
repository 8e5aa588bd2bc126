"""The API key format and digest, shared by the control plane (which issues keys) and the
data plane (which checks the explain header against the keys a snapshot carries).

A key reads `ak_<key_id>_<secret>`; stored is sha256(salt || secret) only. The secret is 32
random bytes, so a slow password hash would add latency and no safety.
"""

from __future__ import annotations

import hashlib
import hmac


def digest(salt: bytes, secret: str) -> bytes:
    return hashlib.sha256(salt + secret.encode()).digest()


def split(presented: str) -> tuple[str, str] | None:
    """(key_id, secret) of a well-formed key, else None."""
    parts = presented.split("_", 2)
    if len(parts) != 3 or parts[0] != "ak" or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


def matches(presented_secret: str, salt: bytes, stored: bytes) -> bool:
    return hmac.compare_digest(digest(salt, presented_secret), stored)


def is_bootstrap(presented: str, bootstrap: str | None) -> bool:
    return bool(bootstrap) and hmac.compare_digest(presented.encode(), bootstrap.encode())  # type: ignore[union-attr]


UNSCOPED = 0  # `check` of a key without a network (the bootstrap key, a global key)


def check(
    presented: str, bootstrap: str | None, keys: dict[str, list], roles: tuple[str, ...]
) -> int | None:
    """The network a presented key is scoped to (UNSCOPED when none), or None when it is not
    a live key of one of `roles`. `keys`: key id -> [key id, salt, hash, role, network id,
    advertiser id], as a snapshot carries them; the bootstrap key is an unscoped admin key."""
    caller = identify(presented, bootstrap, keys)
    return caller.network if caller is not None and caller.role in roles else None


class Caller:
    """Who presented a key: its role, network (UNSCOPED for none) and advertiser (None for
    none), as the snapshot's key table says."""

    __slots__ = ("role", "network", "advertiser")

    def __init__(self, role: str, network: int, advertiser: int | None):
        self.role, self.network, self.advertiser = role, network, advertiser

    def may_see(self, network: int, advertiser: int | None = None) -> bool:
        """Whether the key's scope covers `network` (and `advertiser`, when given)."""
        if self.network not in (UNSCOPED, network):
            return False
        return self.advertiser is None or advertiser is None or self.advertiser == advertiser


def identify(presented: str | None, bootstrap: str | None, keys: dict[str, list]) -> Caller | None:
    """The caller a presented key stands for, or None when it is not a live key."""
    if not presented:
        return None
    if is_bootstrap(presented, bootstrap):
        return Caller("admin", UNSCOPED, None)
    parts = split(presented)
    key = keys.get(parts[0]) if parts else None
    if not (key and parts and matches(parts[1], key[1], key[2])):
        return None
    return Caller(key[3], key[4] or UNSCOPED, key[5] if len(key) > 5 else None)


def presented_key(headers: object) -> str | None:
    """The API key a request carries: `X-Api-Key`, Kevel's `X-Adzerk-ApiKey`, or
    `Authorization: Bearer <key>` (a Starlette Headers or any mapping of lower-case names)."""
    get = headers.get  # type: ignore[attr-defined]
    key = get("x-api-key") or get("x-adzerk-apikey")
    if key:
        return key
    auth = get("authorization") or ""
    return auth[7:].strip() or None if auth[:7].lower() == "bearer " else None
