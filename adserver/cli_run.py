"""The commands that run the server: `control`, `serve`, `worker`, `run`, `demo` and `seed`;
binding the listening sockets up front (a port in use is named with the flag that changes
it), and the settings spelled out for child processes."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from typing import Any

from adserver import config as config_mod
from adserver.config import Config


def cmd_control(args: argparse.Namespace, config: Config) -> int:
    import socket

    from adserver.control import process

    sock = (
        socket.socket(fileno=args.api_fd)
        if args.api_fd is not None
        else bind_one("management API", config.api_host, config.api_port, "--api-port")
    )
    process.run(config, sock)
    return 0


def cmd_serve(args: argparse.Namespace, config: Config) -> int:
    from adserver.serving import process
    from adserver.web.runtime import url_of

    sock = bind_one("decision API", config.host, config.port, "--port")
    process.prepare_metrics(config)
    print(f"adserver: decision API on {url_of(sock, bool(config.tls_cert))}", flush=True)
    return process.supervise(config, sock, _child_env(config))


def cmd_worker(args: argparse.Namespace, config: Config) -> int:
    import socket

    from adserver.serving import process

    process.run_worker(config, socket.socket(fileno=args.fd), args.worker_id)
    return 0


def _child_env(config: Config) -> dict[str, str]:
    """This process's environment with the settings spelled out for child processes."""
    import msgspec

    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(config_mod.ENV_PREFIX) or k in config_mod.ENV_NOT_SETTINGS
    }
    settings = msgspec.structs.asdict(config)
    env.update({f"ADSERVER_{k.upper()}": str(v) for k, v in settings.items() if v is not None})
    return env


class PortInUse(Exception):
    """A listening address that cannot be bound: which one, and the flag that changes it."""


def bind_all(config: Config) -> dict[str, Any]:
    """Bind the listening sockets up front (before seeding or starting anything), so port
    0 resolves before anything is printed and a port in use is said plainly."""
    api = bind_one("management API", config.api_host, config.api_port, "--api-port")
    try:
        return {
            "api": api,
            "decision": bind_one("decision API", config.host, config.port, "--port"),
        }
    except PortInUse:
        api.close()
        raise


def bind_one(what: str, host: str, port: int, flag: str) -> Any:
    """A listening socket, or PortInUse naming the address and the flag that changes it."""
    from adserver.web import runtime

    try:
        return runtime.bind(host, port)
    except OSError as e:
        raise PortInUse(
            f"cannot listen for the {what} on {host}:{port} ({e.strerror}): stop what holds"
            f" it, or choose another port with {flag} (0: any free port)"
        ) from None


def cmd_run(args: argparse.Namespace, config: Config, socks: dict[str, Any] | None = None) -> int:
    """Start the control process and the decision workers; stop all when one part fails or
    a signal arrives."""
    from adserver.serving import process
    from adserver.web.runtime import url_of

    socks = socks or bind_all(config)
    api, decision = socks["api"], socks["decision"]
    process.prepare_metrics(config)
    env = _child_env(config)
    env.setdefault("ADSERVER_DECISION_URL", url_of(decision, bool(config.tls_cert)))
    control = subprocess.Popen(
        [sys.executable, "-m", "adserver", "control", "--api-fd", str(api.fileno())],
        env=env,
        pass_fds=(api.fileno(),),
    )
    print(f"adserver: decision API on {url_of(decision, bool(config.tls_cert))}", flush=True)
    return process.supervise(config, decision, env, [control])


def cmd_seed(args: argparse.Namespace, config: Config) -> int:
    from adserver.control.seed import Scale, SeedError, seed
    from adserver.control.store import Store

    if args.reset:
        _reset(config.data_dir)
    store = Store(config.data_dir)
    scale = Scale(ads=args.ads, products=args.products, users=args.users, seed=args.seed)
    try:
        counts = seed(store, scale, progress=not getattr(args, "quiet", False))
    except SeedError as e:
        print(f"adserver seed: {e}", file=sys.stderr)
        return 1
    finally:
        store.close()
    print("seeded " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    return 0


def _reset(data_dir: str) -> None:
    """Remove what the data root holds (the control store and everything derived from it)."""
    if not os.path.isdir(data_dir):
        return
    for name in os.listdir(data_dir):
        if name == "README.md":
            continue
        path = os.path.join(data_dir, name)
        shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)


DEMO_TRAIN_S = 15.0


def cmd_demo(args: argparse.Namespace, config: Config) -> int:
    from adserver.control.seed import Scale, seed
    from adserver.control.store import Store
    from adserver.tools import demo

    if args.reset:
        _reset(config.data_dir)
    socks = bind_all(config)  # a port in use is said before anything is seeded
    store = Store(config.data_dir)
    if not store.read("SELECT 1 FROM networks LIMIT 1"):
        print("seeding the demo network ...", flush=True)
        scale = Scale(ads=args.ads, products=args.products, users=args.users, seed=args.seed)
        counts = seed(store, scale)
        print("seeded " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    key, where = (
        (config.admin_key, "ADSERVER_ADMIN_KEY")
        if config.admin_key
        else demo.admin_key(store, config.data_dir)
    )
    people, kept = demo.console_users(store, config.data_dir)
    store.close()
    if "ADSERVER_TRAIN_INTERVAL_S" not in os.environ:  # a first CTR model within a minute
        import msgspec

        config = msgspec.structs.replace(config, train_interval_s=DEMO_TRAIN_S)
    from adserver.web.runtime import url_of

    api = url_of(socks["api"], bool(config.tls_cert))
    decisions = url_of(socks["decision"], bool(config.tls_cert))
    signins = "".join(
        f"                  {email}  password {password}  ({sees})\n"
        for email, password, sees in people
    )
    print(
        f"""
adserver demo is starting.
  decision API    {decisions}/api/v2   (Kevel Decision API v2; /readyz, /metrics)
  management API  {api}/v1/   (docs {api}/docs, OpenAPI {api}/openapi.json)
  admin API key   {key}
                  ({where})
  console         {api}/console/   sign in as
{signins}                  ({kept})
  reports         {api}/v1/reports?group_by=advertiser,flight&interval=hour (send the key;
                  demo shoppers browse, click and buy for the first half minute)
  CTR model       {api}/v1/models   (trained from the shoppers' clicks every {DEMO_TRAIN_S:.0f} s
                  while they shop; the first one activates within about a minute)
  try:            curl -H 'X-Api-Key: {key}' {api}/v1/flights?limit=3
                  curl -d '{{"placements":[{{"networkId":1,"siteId":1,"zoneIds":[11],"adTypes":[2,3]}}]}}' {decisions}/api/v2
  data root       {os.path.abspath(config.data_dir)}
Press Ctrl-C to stop.
""",
        flush=True,
    )
    if not args.no_traffic:
        demo.start(decisions, key)
    return cmd_run(args, config, socks)
