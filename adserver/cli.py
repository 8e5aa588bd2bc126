"""The `adserver` command: control, serve, run, demo, seed, keys, users, simulate, train, evaluate,
products."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from adserver import __version__, cli_users, logs
from adserver import config as config_mod
from adserver.cli_learn import cmd_evaluate, cmd_train
from adserver.cli_run import (
    PortInUse,
    cmd_control,
    cmd_demo,
    cmd_run,
    cmd_seed,
    cmd_serve,
    cmd_worker,
)
from adserver.config import Config


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="TOML settings file (or ADSERVER_CONFIG)")
    p.add_argument("--data-dir", help="data root")
    p.add_argument(
        "--log-level", choices=["debug", "info", "warning", "error"], help="least level logged"
    )
    p.add_argument(
        "--log-format", choices=["text", "json"], help="log lines as text or one JSON object each"
    )


def _serving(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", help="decision server address")
    p.add_argument("--port", type=int, help="decision server port")
    p.add_argument("--workers", type=int, help="decision worker processes")


def _control(p: argparse.ArgumentParser) -> None:
    p.add_argument("--api-host", help="management API address")
    p.add_argument("--api-port", type=int, help="management API port")


def _add(p: argparse.ArgumentParser, *groups: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add the flags of each group (_common, _control, ...) to a command's parser."""
    for group in groups:
        group(p)


def _scale(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ads", type=int, default=600, help="ads to generate")
    p.add_argument("--products", type=int, default=2000, help="catalog size")
    p.add_argument("--users", type=int, default=1000, help="user profiles")
    p.add_argument("--seed", type=int, default=7, help="random seed")
    p.add_argument("--reset", action="store_true", help="delete the data root's store first")


class Help(argparse.HelpFormatter):
    """Every option's help ends with its default, when it has one worth saying."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (
            action.default not in (None, False, [], "", argparse.SUPPRESS)
            and "%(default)" not in text
            and "default:" not in text
        ):
            text += " (default: %(default)s)"
        return text


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose help shows defaults; its subcommands' parsers are too."""

    def __init__(self, **kw: Any) -> None:
        kw.setdefault("formatter_class", Help)
        super().__init__(**kw)


def parser() -> argparse.ArgumentParser:
    top = Parser(
        prog="adserver",
        description="Self-hosted retail media and personalization decision server.",
    )
    top.add_argument("--version", action="version", version=f"adserver {__version__}")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("control", help="run the control plane (management API, compiler)")
    _add(p, _common, _control)
    p.add_argument("--api-fd", type=int, help=argparse.SUPPRESS)  # a socket bound by `run`
    p = sub.add_parser("serve", help="run the decision workers (data plane)")
    _add(p, _common, _serving)
    p = sub.add_parser("worker", help="one decision worker (started by serve and run)")
    _common(p)
    p.add_argument("--fd", type=int, required=True, help="the listening socket serve bound")
    p.add_argument("--worker-id", required=True, help="its name in logs and event files")
    p = sub.add_parser("run", help="run both planes")
    _add(p, _common, _control, _serving)
    p = sub.add_parser("demo", help="seed a demo network if the store is empty, then run")
    _add(p, _common, _control, _serving, _scale)
    p.add_argument(
        "--no-traffic",
        action="store_true",
        help="do not send the half minute of shopper traffic the demo starts with",
    )
    p = sub.add_parser("seed", help="generate a demo network at a chosen scale")
    _add(p, _common, _scale)
    p.add_argument("--quiet", action="store_true", help="no progress bars")

    p = sub.add_parser(
        "simulate",
        help="replay a synthetic day through the real decision path"
        " and report how budgets were paced",
    )
    p.add_argument("--data-dir", required=True, help="an empty directory for the simulation")
    p.add_argument("--flights", type=int, default=200, help="flights in the synthetic network")
    p.add_argument("--requests", type=int, default=150_000, help="page views in the day")
    p.add_argument("--workers", type=int, default=2, help="decision workers simulated")
    p.add_argument(
        "--interval",
        type=float,
        default=30.0,
        help="simulated seconds between pacing controller steps",
    )
    p.add_argument(
        "--history-days",
        type=int,
        default=7,
        help="days of logged traffic the forecast learns from",
    )
    p.add_argument(
        "--days",
        type=int,
        default=1,
        help="days simulated one after another; the report is the last one's",
    )
    p.add_argument("--seed", type=int, default=1, help="random seed of the synthetic world")
    p.add_argument("--plot", metavar="PNG", help="draw planned vs actual spend curves here")
    p.add_argument("--report", metavar="JSON", help="write the per-flight report here")
    p.add_argument("--quiet", action="store_true", help="no progress lines")

    p = sub.add_parser(
        "train",
        help="train a CTR or CVR model from the logs; the control process gates and activates it",
    )
    _common(p)
    p.add_argument(
        "model",
        choices=["ctr", "cvr"],
        help="which model: click-through (ctr) or conversion (cvr) rate",
    )
    p.add_argument("--days", type=float, default=7.0, help="window of logs")
    p.add_argument("--holdout", type=float, default=0.2, help="share held out")
    p.add_argument(
        "--split",
        choices=["time", "random"],
        default="time",
        help="hold out the latest examples (time) or a random share",
    )
    p.add_argument(
        "--negative-rate", type=float, default=0.25, help="share of non-clicks kept for training"
    )
    p.add_argument("--epochs", type=int, default=2, help="passes over the training examples")
    p.add_argument("--bits", type=int, default=20, help="2^bits hashed features")
    p.add_argument("--label", default="", help="a name for this version")
    p.add_argument("--out", help="write the model directory here instead of the models inbox")
    p.add_argument("--quiet", action="store_true", help="no progress bars")

    p = sub.add_parser(
        "evaluate",
        help="offline evaluation of personalization policies over"
        " the logged rank and reward events",
    )
    _common(p)
    p.add_argument("--start", help="ISO 8601 time (default: 7 days ago)")
    p.add_argument("--end", help="ISO 8601 time (default: now)")
    p.add_argument(
        "--policy",
        action="append",
        default=[],
        metavar="NAME=ARGUMENTS",
        help='a candidate, e.g. greedy="--cb_explore_adf --epsilon 0" (repeatable)',
    )
    p.add_argument("--runs", type=int, default=200, help="bootstrap resamples")

    keys = sub.add_parser("keys", help="create, list and revoke API keys")
    ksub = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    p = ksub.add_parser("create", help="create a key and print it (shown only once)")
    _common(p)
    p.add_argument(
        "--role",
        required=True,
        choices=["admin", "advertiser", "readonly"],
        help="what the key may do (README: Management API, keys)",
    )
    p.add_argument("--name", default="", help="a label for the key")
    p.add_argument("--network", type=int, help="limit the key to one network")
    p.add_argument("--advertiser", type=int, help="the advertiser of an advertiser key")
    p = ksub.add_parser("list", help="list keys (never their secrets)")
    _common(p)
    p = ksub.add_parser("revoke", help="revoke a key by its key id")
    _common(p)
    p.add_argument("key_id", help="the key's id (the part after ak_), or its number")

    cli_users.add_parser(sub, _common)

    products = sub.add_parser("products", help="load a catalog file through the management API")
    psub = products.add_subparsers(dest="products_command", required=True, metavar="ACTION")
    p = psub.add_parser("import", help="upsert the products of a JSON Lines or CSV file")
    _add(p, _common, _control)
    p.add_argument("file", help="a .jsonl or .csv file (format: adserver/tools/catalog_import.py)")
    p.add_argument("--network", type=int, required=True, help="the catalog's network id")
    p.add_argument("--format", choices=["jsonl", "csv"], help="default: from the file name")
    p.add_argument("--api", help="management API URL (default: from --api-host/--api-port)")
    p.add_argument(
        "--key", help="an admin API key (default: ADSERVER_API_KEY or the configured admin key)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return top


FLAG_SETTINGS = (
    "data_dir",
    "log_level",
    "log_format",
    "host",
    "port",
    "workers",
    "api_host",
    "api_port",
)


def load_config(args: argparse.Namespace) -> Config:
    flags = {k: getattr(args, k) for k in FLAG_SETTINGS if getattr(args, k, None) is not None}
    return config_mod.load(flags=flags, path=getattr(args, "config", None))


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        config = load_config(args)
    except config_mod.ConfigError as e:
        print(f"adserver: {e}", file=sys.stderr)
        return 2
    logs.setup(config.log_level, config.log_format)
    handler = COMMANDS[args.command]
    try:
        return handler(args, config) or 0
    except PortInUse as e:
        print(f"adserver: {e}", file=sys.stderr)
        return 2


def cmd_simulate(args: argparse.Namespace, config: Config) -> int:
    from adserver.tools.simulate import Settings, simulate

    for name, lo in (
        ("flights", 2),
        ("requests", 100),
        ("workers", 1),
        ("interval", 1),
        ("days", 1),
    ):
        if getattr(args, name) < lo:
            print(f"adserver simulate: --{name} must be at least {lo}", file=sys.stderr)
            return 2
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            print(
                "adserver simulate: --plot needs matplotlib: pip install 'adserver[sim]'",
                file=sys.stderr,
            )
            return 2
    settings = Settings(
        flights=args.flights,
        requests=args.requests,
        workers=args.workers,
        interval=args.interval,
        history_days=args.history_days,
        days=args.days,
        seed=args.seed,
        plot=args.plot,
        report=args.report,
        progress=not args.quiet,
    )
    result = simulate(config.data_dir, settings)
    s = result["summary"]
    print(
        f"simulated {s['page_views']:,} page views over {s['flights']} flights "
        f"({s['under_supplied']} under-supplied) in {s['wall_s']} s; {s['errors']} errors"
    )
    print(f"  max overspend (billed)   {s['max_overspend']:.2%}   (target <= 1 %)")
    print(f"  max delivered over cap   {s['max_delivered_over_cap']:.2%}   (shown, not billed)")
    util = s["min_utilization_where_supply_allows"]
    print(
        f"  min utilization (supply) {util:.2%}   (target >= 98 %; "
        f"p10 {s['utilization_p10_where_supply_allows']:.2%})"
    )
    print(
        f"  median slot deviation Ω  {s['median_omega_paced']:.2%}   (target <= 5 %, or the"
        f" counting-noise floor where higher: {s['median_noise_floor']:.2%})"
    )
    print(f"  even flights out early   {s['even_exhausted_before_90pct']}       (target 0)")
    for rate, b in s["by_rate"].items():
        if b["flights"]:
            print(
                f"  {rate.upper()} flights: {b['flights']} paced, median Ω {b['median_omega']:.2%}"
                f" (counting-noise floor {b['median_noise_floor']:.2%}), min utilization "
                f"{b['min_utilization']:.2%}"
            )
    notes = {
        "omega": f"judged against the noise floor {s['median_noise_floor']:.1%}",
        "utilization": f"noise-limited: the least-used flight's budget is measured to"
        f" +-{(s['utilization_noise'] or 0):.1%}",
    }
    print(
        "  targets met: "
        + ", ".join(
            f"{k} {'yes' if v else 'NO'}" + (f" ({notes[k]})" if s["noise_limited"].get(k) else "")
            for k, v in s["met"].items()
        )
    )
    if any(s["noise_limited"].values()):
        print(
            "  (a small day: counting noise is above the targets; more --requests measure"
            " the controller itself)"
        )
    return 0


def cmd_keys(args: argparse.Namespace, config: Config) -> int:
    import msgspec

    from adserver.control import auth
    from adserver.control.store import Store

    store = Store(config.data_dir)
    try:
        if args.keys_command == "create":
            if args.role == "advertiser" and args.advertiser is None:
                print(
                    "adserver keys create: --advertiser is required for an advertiser key",
                    file=sys.stderr,
                )
                return 2
            with store.transaction() as db:
                network = args.network
                if args.advertiser is not None:
                    row = db.execute(
                        "SELECT network_id FROM advertisers WHERE id = ?", (args.advertiser,)
                    ).fetchone()
                    if row is None:
                        print(
                            f"adserver keys create: no advertiser {args.advertiser}",
                            file=sys.stderr,
                        )
                        return 1
                    network = row[0]
                key, info = auth.create_key(
                    db,
                    role=args.role,
                    name=args.name,
                    created_by="cli",
                    network_id=network,
                    advertiser_id=args.advertiser,
                )
            print(key)
            print(
                f"(key id {info.key_id}, role {info.role}; the key is not shown again)",
                file=sys.stderr,
            )
        elif args.keys_command == "list":
            for info in auth.list_keys(store):
                print(msgspec.json.encode(info).decode())
        else:
            with store.transaction() as db:
                revoked = auth.revoke_key(db, args.key_id)
            if revoked is None:
                print(f"adserver keys revoke: no key {args.key_id}", file=sys.stderr)
                return 1
            print(f"revoked {revoked.key_id} at {revoked.revoked_at}")
    finally:
        store.close()
    return 0


def cmd_products(args: argparse.Namespace, config: Config) -> int:
    from adserver.tools import catalog_import

    key = args.key or os.environ.get("ADSERVER_API_KEY") or config.admin_key
    if not key:
        print("adserver products import: give --key (or ADSERVER_API_KEY)", file=sys.stderr)
        return 2
    api = args.api or f"http://{config.api_host}:{config.api_port}"
    try:
        summary = catalog_import.run(
            args.file, args.network, api, key, args.format, progress=not args.quiet
        )
    except catalog_import.CatalogFileError as e:
        print(f"adserver products import: {e}", file=sys.stderr)
        return 1
    print(summary.text())
    return 1 if summary.rows and not summary.upserted else 0


COMMANDS = {
    "control": cmd_control,
    "serve": cmd_serve,
    "worker": cmd_worker,
    "run": cmd_run,
    "demo": cmd_demo,
    "seed": cmd_seed,
    "keys": cmd_keys,
    "users": cli_users.cmd_users,
    "simulate": cmd_simulate,
    "train": cmd_train,
    "evaluate": cmd_evaluate,
    "products": cmd_products,
}
