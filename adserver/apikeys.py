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


def check(presented: str, bootstrap: str | None, keys: dict[str, list],
          roles: tuple[str, ...]) -> int | None:
    """The network a presented key is scoped to (UNSCOPED when none), or None when it is not
    a live key of one of `roles`. `keys`: key id -> [key id, salt, hash, role, network id,
    advertiser id], as a snapshot carries them; the bootstrap key is an unscoped admin key."""
    if is_bootstrap(presented, bootstrap):
        return UNSCOPED if "admin" in roles else None
    parts = split(presented)
    key = keys.get(parts[0]) if parts else None
    if not (key and parts and key[3] in roles and matches(parts[1], key[1], key[2])):
        return None
    return key[4] or UNSCOPED
