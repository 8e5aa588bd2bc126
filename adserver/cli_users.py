"""`adserver users`: the console's users (create, list, set a password, disable).

    adserver users create --email ops@example.com --role admin [--network N]
    adserver users create --email buyer@brand.example --role advertiser --advertiser 7
    adserver users password --email ops@example.com
    adserver users disable --email buyer@brand.example

A password is read from standard input with --password-stdin, else a new random one is made
and printed once. Disabling a user or setting its password ends its sessions.
"""

from __future__ import annotations

import argparse
import secrets
import sys

from adserver.config import Config


def add_parser(sub: argparse._SubParsersAction, common: object) -> None:
    users = sub.add_parser("users", help="create, list and disable console users")
    usub = users.add_subparsers(dest="users_command", required=True, metavar="ACTION")
    p = usub.add_parser("create", help="create a console user (its password printed once)")
    common(p)  # type: ignore[operator]
    p.add_argument("--email", required=True, help="the user's email: its sign-in name")
    p.add_argument(
        "--role",
        required=True,
        choices=["admin", "advertiser", "readonly"],
        help="what the user may do (as an API key of the same role)",
    )
    p.add_argument("--network", type=int, help="limit an admin or read-only user to a network")
    p.add_argument("--advertiser", type=int, help="the advertiser of an advertiser user")
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    p = usub.add_parser("list", help="list users (never their passwords)")
    common(p)  # type: ignore[operator]
    p = usub.add_parser("password", help="set a user's password (ends its sessions)")
    common(p)  # type: ignore[operator]
    p.add_argument("--email", required=True, help="the user's email")
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    p = usub.add_parser("disable", help="disable a user (ends its sessions)")
    common(p)  # type: ignore[operator]
    p.add_argument("--email", required=True, help="the user's email")


def _password(args: argparse.Namespace) -> tuple[str, bool]:
    """The password to set, and whether it was made here (and must be printed)."""
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n"), False
    return secrets.token_urlsafe(12), True


def cmd_users(args: argparse.Namespace, config: Config) -> int:
    import msgspec

    from adserver.common.validation import Invalid
    from adserver.control.console import users
    from adserver.control.store import Store

    store = Store(config.data_dir)
    name = f"adserver users {args.users_command}"
    try:
        if args.users_command == "create":
            password, made = _password(args)
            user = users.create_user(
                store, args.email, password, args.role, args.network, args.advertiser
            )
            print(msgspec.json.encode(user).decode())
            if made:
                print(f"password: {password}   (shown only now)")
        elif args.users_command == "list":
            for row in store.read(
                "SELECT id, email, role, network_id, advertiser_id, created_at, disabled_at"
                " FROM console_users ORDER BY id"
            ):
                print(msgspec.json.encode(dict(row)).decode())
        elif args.users_command == "password":
            password, made = _password(args)
            if not users.set_password(store, args.email, password):
                print(f"{name}: no user {args.email}", file=sys.stderr)
                return 1
            if made:
                print(f"password: {password}   (shown only now)")
        elif not users.disable(store, args.email):
            print(f"{name}: no user {args.email}", file=sys.stderr)
            return 1
    except Invalid as e:
        for err in e.errors:
            print(f"{name}: {err.field}: {err.message}", file=sys.stderr)
        return 2
    finally:
        store.close()
    return 0
