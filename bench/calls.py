"""Python calls per decision, by function, for two checkouts: a measure of the decision
route's work that this machine's noise does not move (its timings do, by 20 % and more).

    .venv/bin/python -m bench.calls --base /tmp/base [--kind sponsored] [--scale demo]

Each checkout runs in its own process: a worker loads the data directory's snapshot (bench.e2e's),
its decision route answers the requests once to warm, then once more under a profile hook
that counts every Python function called and every builtin or C function Python called
(numpy's, msgspec's, the kernels'). Printed: the calls per decision of each side, and each
function whose count differs. Work inside a C function (a kernel's loop) is not counted:
compare those with bench/ (kernel vs twin) and bench.ab.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

from bench.world import BODIES, MIXES, ROOT, prepare

N = 200

# run inside the checkout: the worker, its route, the count
PROBE = """
import asyncio, collections, json, os, sys
sys.path.insert(0, os.getcwd())
from adserver import config as cm
from adserver.serving import app
from adserver.serving.worker import Worker
data, bodies_path = sys.argv[1], sys.argv[2]
bodies = json.load(open(bodies_path))
config = cm.load({"data_dir": data}, env={})
worker = Worker(config, "w0")
asyncio.run(worker._maybe_swap())
answer = app.build(config, worker).lane.answer
headers = [(b"host", b"127.0.0.1:1"), (b"user-agent", b"curl/8")]
for b in bodies:
    answer(headers, b.encode(), "http", ("127.0.0.1", 1))
root = os.getcwd()
counts = collections.Counter()

def hook(frame, event, arg):
    if event == "call":
        code = frame.f_code
        where = code.co_filename
        where = os.path.relpath(where, root) if where.startswith(root) else os.path.basename(where)
        counts[where + ":" + code.co_name] += 1
    elif event == "c_call":
        counts["C:" + getattr(arg, "__qualname__", repr(arg))] += 1

sys.setprofile(hook)
for b in bodies:
    answer(headers, b.encode(), "http", ("127.0.0.1", 1))
sys.setprofile(None)
print(json.dumps({k: v / len(bodies) for k, v in counts.items()}))
"""


def count(checkout: str, data: str, bodies: str) -> dict[str, float]:
    """Calls per decision by function for one checkout."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE, data, bodies],
        cwd=checkout,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True, help="the other checkout (a git worktree)")
    ap.add_argument("--new", default=ROOT, help="default: this checkout")
    ap.add_argument("--kind", choices=[*BODIES, *MIXES], default="sponsored")
    ap.add_argument("--scale", choices=["demo", "bench"], default="demo")
    args = ap.parse_args()
    data = os.path.join(tempfile.gettempdir(), f"adserver-bench-{args.scale}")
    prepare(data, args.scale)
    mix = MIXES.get(args.kind)
    bodies = [b.decode() for b in mix(N, 1)] if mix else [json.dumps(BODIES[args.kind])] * N
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(bodies, f)
    base, new = count(args.base, data, f.name), count(args.new, data, f.name)
    print(f"calls per decision: base {sum(base.values()):.1f}  new {sum(new.values()):.1f}")
    for name in sorted(set(base) | set(new)):
        a, b = base.get(name, 0.0), new.get(name, 0.0)
        if abs(a - b) > 1e-9:
            print(f"{a:8.2f} {b:8.2f}  {name}")
    os.unlink(f.name)


if __name__ == "__main__":
    main()
