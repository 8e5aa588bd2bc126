"""Decision worker processes: `adserver serve` binds the socket, starts N workers that share
it (the kernel spreads connections), restarts a worker that dies, and stops them on a signal."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

from adserver.config import Config
from adserver.web import runtime

RESTART_BACKOFF_S = 1.0


def metrics_dir(config: Config) -> str:
    return os.path.join(config.data_dir, "metrics", "serve")


def prepare_metrics(config: Config) -> None:
    """A clean multiprocess metrics directory, named in the environment the workers inherit."""
    path = metrics_dir(config)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path


def run_worker(config: Config, sock: socket.socket, worker_id: str) -> None:
    """One worker: the Starlette app on uvicorn (uvloop, httptools) on the shared socket."""
    from adserver.serving.app import build
    from adserver.serving.worker import Worker

    app = build(config, Worker(config, worker_id))
    runtime.serve(
        app,
        sock,
        f"decision worker {worker_id}",
        config.log_level,
        announce=False,
        limits=runtime.Limits.of(config),
    )


def spawn(config: Config, sock: socket.socket, index: int, env: dict[str, str]) -> Any:
    fd = sock.fileno()
    return subprocess.Popen(
        [sys.executable, "-m", "adserver", "worker", "--fd", str(fd), "--worker-id", f"w{index}"],
        env=env,
        pass_fds=(fd,),
    )


def supervise(
    config: Config, sock: socket.socket, env: dict[str, str], others: Sequence[Any] = ()
) -> int:
    """Run the workers (and watch `others`) until a signal or until one of `others` exits."""
    stop = False

    def on_signal(signum: int, frame: Any) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    workers = {i: spawn(config, sock, i, env) for i in range(config.workers)}
    rc = 0
    try:
        while not stop:
            time.sleep(0.2)
            if any(o.poll() is not None for o in others):
                rc = next(o.returncode for o in others if o.poll() is not None) or 1
                break
            for i, w in list(workers.items()):
                if w.poll() is not None and not stop:
                    print(
                        f"adserver: worker w{i} exited with {w.returncode}; restarting",
                        file=sys.stderr,
                        flush=True,
                    )
                    time.sleep(RESTART_BACKOFF_S)
                    workers[i] = spawn(config, sock, i, env)
    finally:
        children = list(workers.values()) + list(others)
        for c in children:
            if c.poll() is None:
                c.terminate()
        deadline = time.monotonic() + 10
        for c in children:
            try:
                c.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                c.kill()
    return rc
