"""Console users and their sessions.

A user signs in with an email and a password (argon2id, argon2-cffi) and holds the scope an
API key would: a role (admin, advertiser, readonly), and the network and advertiser it is
limited to. A session is a random token in an HttpOnly, Secure, SameSite=Strict cookie;
the store keeps its SHA-256 only, with the session's CSRF token (every form posts it back)
and its end, on the project's clock. A disabled user's sessions end at once.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sqlite3
from typing import Any

import argon2
import msgspec

from adserver.common import clock
from adserver.common.validation import FieldError, Invalid
from adserver.control.auth import Principal
from adserver.control.store import Store, now

SESSION_S = 12 * 3600
MIN_PASSWORD = 10
MAX_PASSWORD = 200
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,189}\.[^@\s]{1,63}$")
ROLES = ("admin", "advertiser", "readonly")
_hasher = argon2.PasswordHasher()
# verified when the email is unknown, so that a wrong email costs what a wrong password does
_DUMMY = _hasher.hash(secrets.token_urlsafe(16))


class User(msgspec.Struct, frozen=True):
    """A console user as the pages see it (never the password's hash)."""

    id: int
    email: str
    role: str
    network_id: int | None
    advertiser_id: int | None

    def principal(self) -> Principal:
        """The scope the management API checks, as for an API key of the same role."""
        return Principal(f"user:{self.email}", self.role, self.network_id, self.advertiser_id)  # type: ignore[arg-type]


class Session(msgspec.Struct, frozen=True):
    """A signed-in session: its user and the CSRF token its forms carry."""

    user: User
    csrf: str
    expires_at: float


def _user(row: sqlite3.Row) -> User:
    return User(row["id"], row["email"], row["role"], row["network_id"], row["advertiser_id"])


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def create_user(
    store: Store,
    email: str,
    password: str,
    role: str,
    network_id: int | None = None,
    advertiser_id: int | None = None,
) -> User:
    """Add a user (Invalid naming each bad field). An advertiser user belongs to an
    advertiser and takes its network; admin and read-only users may be limited to a network
    (none: every network)."""
    errors = []
    if not EMAIL.match(email or ""):
        errors.append(FieldError("email", "not an email address"))
    if not MIN_PASSWORD <= len(password or "") <= MAX_PASSWORD:
        errors.append(
            FieldError("password", f"must be {MIN_PASSWORD} to {MAX_PASSWORD} characters")
        )
    if role not in ROLES:
        errors.append(FieldError("role", f"must be one of {', '.join(ROLES)}"))
    if role == "advertiser" and advertiser_id is None:
        errors.append(FieldError("advertiser_id", "required for an advertiser user"))
    if role != "advertiser" and advertiser_id is not None:
        errors.append(FieldError("advertiser_id", "only an advertiser user has one"))
    if errors:
        raise Invalid(errors)
    hashed = _hasher.hash(password)
    with store.transaction() as db:
        if advertiser_id is not None:
            row = db.execute(
                "SELECT network_id FROM advertisers WHERE id = ?", (advertiser_id,)
            ).fetchone()
            if row is None:
                raise Invalid([FieldError("advertiser_id", f"no advertiser {advertiser_id}")])
            network_id = row["network_id"]
        elif (
            network_id is not None
            and not db.execute("SELECT 1 FROM networks WHERE id = ?", (network_id,)).fetchone()
        ):
            raise Invalid([FieldError("network_id", f"no network {network_id}")])
        if db.execute("SELECT 1 FROM console_users WHERE email = ?", (email,)).fetchone():
            raise Invalid([FieldError("email", "a user with this email exists")])
        cur = db.execute(
            "INSERT INTO console_users (email, password_hash, role, network_id, advertiser_id,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (email, hashed, role, network_id, advertiser_id, now()),
        )
        row = db.execute("SELECT * FROM console_users WHERE id = ?", (cur.lastrowid,)).fetchone()
    return _user(row)


def find_user(store: Store, email: str) -> User | None:
    rows = store.read(
        "SELECT * FROM console_users WHERE email = ? AND disabled_at IS NULL", (email,)
    )
    return _user(rows[0]) if rows else None


def set_password(store: Store, email: str, password: str) -> bool:
    """Replace a user's password and end its sessions; False when there is no such user."""
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise Invalid(
            [FieldError("password", f"must be {MIN_PASSWORD} to {MAX_PASSWORD} characters")]
        )
    with store.transaction() as db:
        row = db.execute("SELECT id FROM console_users WHERE email = ?", (email,)).fetchone()
        if row is None:
            return False
        db.execute(
            "UPDATE console_users SET password_hash = ? WHERE id = ?",
            (_hasher.hash(password), row["id"]),
        )
        db.execute("DELETE FROM console_sessions WHERE user_id = ?", (row["id"],))
    return True


def disable(store: Store, email: str) -> bool:
    """Disable a user and end its sessions; False when there is no such user."""
    with store.transaction() as db:
        row = db.execute("SELECT id FROM console_users WHERE email = ?", (email,)).fetchone()
        if row is None:
            return False
        db.execute("UPDATE console_users SET disabled_at = ? WHERE id = ?", (now(), row["id"]))
        db.execute("DELETE FROM console_sessions WHERE user_id = ?", (row["id"],))
    return True


def check_password(store: Store, email: str, password: str) -> tuple[User, str] | None:
    """The live user an email and password match, with its stored hash; None when they do
    not match one (the same work either way: a wrong email costs a hash too)."""
    rows = store.read(
        "SELECT * FROM console_users WHERE email = ? AND disabled_at IS NULL", (email[:320],)
    )
    stored = rows[0]["password_hash"] if rows else _DUMMY
    try:
        _hasher.verify(stored, password[:MAX_PASSWORD])
    except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
        return None
    return (_user(rows[0]), stored) if rows else None


def sign_in(store: Store, email: str, password: str) -> tuple[str, Session] | None:
    """A new session's cookie token and the session, or None when the email and password do
    not match a live user."""
    found = check_password(store, email, password)
    if found is None:
        return None
    user, stored = found
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    started = clock.now()
    with store.transaction() as db:
        if _hasher.check_needs_rehash(stored):
            db.execute(
                "UPDATE console_users SET password_hash = ? WHERE id = ?",
                (_hasher.hash(password), user.id),
            )
        db.execute("DELETE FROM console_sessions WHERE expires_at < ?", (started,))
        db.execute(
            "INSERT INTO console_sessions (token_hash, user_id, csrf, created_at, expires_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (_digest(token), user.id, csrf, started, started + SESSION_S),
        )
    return token, Session(user, csrf, started + SESSION_S)


def session(store: Store, token: str | None) -> Session | None:
    """The live session a cookie's token names, or None."""
    if not token or len(token) > 100:
        return None
    rows = store.read(
        "SELECT s.csrf, s.expires_at, u.* FROM console_sessions s JOIN console_users u ON u.id = s.user_id"
        " WHERE s.token_hash = ? AND u.disabled_at IS NULL",
        (_digest(token),),
    )
    if not rows or rows[0]["expires_at"] <= clock.now():
        return None
    return Session(_user(rows[0]), rows[0]["csrf"], rows[0]["expires_at"])


def sign_out(store: Store, token: str | None) -> None:
    if token:
        with store.transaction() as db:
            db.execute("DELETE FROM console_sessions WHERE token_hash = ?", (_digest(token),))


def csrf_ok(expected: str, presented: Any) -> bool:
    """Whether a form's CSRF field is the session's token (compared in constant time)."""
    return isinstance(presented, str) and hmac.compare_digest(expected.encode(), presented.encode())
