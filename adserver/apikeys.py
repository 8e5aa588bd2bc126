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
