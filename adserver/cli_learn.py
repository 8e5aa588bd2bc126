"""`adserver train` and `adserver evaluate`: the learning commands of the command line
(adserver/cli.py)."""

from __future__ import annotations

import argparse
import os
import sys

from adserver.config import Config


def cmd_train(args: argparse.Namespace, config: Config) -> int:
    from adserver.learn import ctr
    from adserver.learn.features import SpecError
    from adserver.training import ctr_train

    if not 0 < args.holdout < 1 or not 0 < args.negative_rate <= 1 or args.epochs < 1:
        print(
            "adserver train: want 0 < --holdout < 1, 0 < --negative-rate <= 1, --epochs >= 1",
            file=sys.stderr,
        )
        return 2
    root = args.out or ctr.inbox_root(config.data_dir, args.model)
    s = ctr_train.Settings(
        name=args.model,
        days=args.days,
        holdout=args.holdout,
        split=args.split,
        negative_rate=args.negative_rate,
        epochs=args.epochs,
        bits=args.bits,
        label=args.label,
        created_by=f"adserver train ({os.environ.get('USER', '?')})",
    )
    try:
        version, info = ctr_train.train(config.data_dir, s, progress=not args.quiet, root=root)
    except (ctr_train.NotEnoughData, SpecError) as e:
        print(f"adserver train: {e}", file=sys.stderr)
        return 1
    t = info["training"]
    print(
        f"trained {args.model} on {t['examples']:,} examples ({t['positives']:,} positives,"
        f" {t['kept']:,} kept after downsampling); held out {info['metrics']['examples']:,}"
    )
    print(f"  {'':<22}{'log loss':>10}{'NE':>9}{'AUC':>8}{'calibration':>13}")
    rows = [("this model", info["metrics"])] + [
        (f"{k}" + (f" ({v['version']})" if "version" in v else ""), v)
        for k, v in info["baseline"].items()
    ]
    for name, m in rows:
        print(
            f"  {name:<22}{m['logloss']:>10.5f}{m['ne']:>9.4f}{m['auc']:>8.4f}"
            f"{m['calibration']:>13.3f}"
        )
    where = os.path.join(root, version)
    if args.out:
        print(f"wrote {where}")
    else:
        print(
            f"wrote {where}: the control process verifies it, gates it against the active"
            f" model and activates it if it passes (GET /v1/models/{args.model}/versions)"
        )
    return 0


def cmd_evaluate(args: argparse.Namespace, config: Config) -> int:
    import time

    from adserver.control import evaluations
    from adserver.control.personalizer import Settings, current_settings
    from adserver.control.pz_config import Invalid, iso, parse_arguments, parse_time
    from adserver.control.store import Store

    policies = []
    for text in args.policy:
        name, sep, arguments = text.partition("=")
        try:
            if not sep or not name:
                raise Invalid("want NAME=ARGUMENTS", "--policy")
            parse_arguments(arguments)
        except Invalid as e:
            print(f"adserver evaluate: --policy {text!r}: {e.message}", file=sys.stderr)
            return 2
        policies.append((name, arguments))
    try:
        end = parse_time(args.end) if args.end else time.time()
        start = parse_time(args.start) if args.start else end - 7 * 86400
    except ValueError as e:
        print(f"adserver evaluate: {e}", file=sys.stderr)
        return 2
    store = Store(config.data_dir)
    try:
        s = current_settings(
            store,
            Settings(
                config.personalizer_reward_wait_s,
                config.personalizer_default_reward,
                config.personalizer_reward_aggregation,
            ),
        )
        result = evaluations.evaluate(store, s, start, end, policies, runs=args.runs)
    finally:
        store.close()
    print(f"{result['events']:,} logged choices from {iso(start)} to {iso(end)}")
    print(f"  {'policy':<16}{'SNIPS':>9}{'95 % interval':>20}{'IPS':>9}{'DM':>9}{'DR':>9}")
    for v in result["value"]:
        found = v["estimates"]
        if not found:
            continue
        ci = v["summary"]["confidenceInterval"]
        cells = "".join(
            f"{found[k]['value']:>9.4f}" if k in found else f"{'':>9}" for k in ("ips", "dm", "dr")
        )
        print(
            f"  {v['name']:<16}{v['summary']['expectedReward']:>9.4f}"
            f"{f'[{ci[0]:.4f}, {ci[1]:.4f}]':>20}{cells}"
        )
    if result["optimalPolicy"]:
        print(f"best: {result['optimalPolicy']}")
    return 0
