"""Signed tracking tokens (HMAC-SHA256), and the key file both planes read.

A token is `<payload>.<mac>`, both base64url without padding: the payload is a msgpack list
`[version, key id, expiry (unix s), event kind, fields...]`, the mac the first 16 bytes of
HMAC-SHA256(secret of key id, payload bytes). Both parts use only URL-safe characters, so a
token goes into a query string as it is. The control process owns the key file
`<data>/keys/tracking.json` (`{"current": kid, "keys": {kid: base64 secret}}`); workers read
it. Verification works on the decoded query value, never on raw URL bytes.
"""

from __future__ import annotations

import base64
import hmac
import json
import os
import secrets
import time
from typing import Any

import msgspec
from msgspec import msgpack

TOKEN_VERSION = 1
MAC_BYTES = 16
DEFAULT_TTL_S = 7 * 86400


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def key_path(data_dir: str) -> str:
    return os.path.join(data_dir, "keys", "tracking.json")


def ensure_keys(data_dir: str) -> dict[str, Any]:
    """Create the key file with one fresh key if there is none (control process only)."""
    path = key_path(data_dir)
    if os.path.exists(path):
        return read_keys(data_dir)
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    kid = secrets.token_hex(4)
    doc = {"current": kid, "keys": {kid: _b64(secrets.token_bytes(32))}}
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(doc, out)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
    return doc


def read_keys(data_dir: str) -> dict[str, Any]:
    with open(key_path(data_dir)) as src:
        return json.load(src)


class Signer:
    """Signs with the current key; verifies with any key in the file."""

    def __init__(self, keys: dict[str, Any], ttl_s: int = DEFAULT_TTL_S):
        self.kid = keys["current"]
        self.secrets = {k: _unb64(v) for k, v in keys["keys"].items()}
        self.ttl_s = ttl_s
        self.encoder = msgpack.Encoder()

    def sign(self, kind: int, fields: list[Any], now: float | None = None) -> str:
        exp = int((now or time.time()) + self.ttl_s)
        payload = self.encoder.encode([TOKEN_VERSION, self.kid, exp, kind, *fields])
        mac = hmac.digest(self.secrets[self.kid], payload, "sha256")[:MAC_BYTES]
        return f"{_b64(payload)}.{_b64(mac)}"

    def verify(self, token: str, now: float | None = None) -> tuple[int, list[Any]] | str:
        """(kind, fields) of a good token, or why it is refused: 'malformed', 'unknown key',
        'bad signature', 'expired'."""
        try:
            p, _, m = token.partition(".")
            payload, mac = _unb64(p), _unb64(m)
            decoded = msgpack.decode(payload)
            version, kid, exp, kind = decoded[:4]
        except (ValueError, TypeError, msgspec.DecodeError):
            return "malformed"
        if version != TOKEN_VERSION:
            return "malformed"
        secret = self.secrets.get(kid)
        if secret is None:
            return "unknown key"
        if not hmac.compare_digest(hmac.digest(secret, payload, "sha256")[:MAC_BYTES], mac):
            return "bad signature"
        if exp < (now or time.time()):
            return "expired"
        return kind, decoded[4:]

