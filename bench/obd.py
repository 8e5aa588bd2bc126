"""Off-policy estimators on the Open Bandit Dataset sample, beside OBP's own figures.

    .venv/bin/python -m bench.obd [--runs 30]

Needs the sample: `pip install --no-deps --ignore-requires-python obp==0.5.7` (./dev setup
installs it with the test and bench extras). Prints a markdown table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse

from adserver.training import obd

OBP = {"ips": "0.311", "snips": "0.312", "dm": "0.152-0.157", "dr": "0.290-0.293"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=30)
    args = ap.parse_args()
    r = obd.check(runs=args.runs)
    print(
        f"BTS CTR in its own logs {r['truth_bts_ctr']:.5f}; random policy CTR"
        f" {r['random_ctr']:.5f}; IPS estimate {r['estimates']['ips']:.5f}"
        f" ({r['ips_relative_to_random']:.3f}x random)"
    )
    print("| estimator | estimate (all rounds) | mean relative error, ours | OBP's |")
    print("|---|---|---|---|")
    for k in ("ips", "snips", "dm", "dr"):
        print(
            f"| {k.upper()} | {r['estimates'][k]:.5f} | {r['relative_error'][k]:.3f} | {OBP[k]} |"
        )


if __name__ == "__main__":
    main()
