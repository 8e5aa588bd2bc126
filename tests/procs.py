"""Start real adserver processes on ephemeral ports and stop them."""

from __future__ import annotations

import os
import re
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

ADMIN_KEY = "test-admin-key-0123456789"
# scheme, host and port only: two processes' lines can interleave on the shared output
URL = re.compile(r"adserver: (?P<what>.+?) on (?P<url>https?://(?:\[[0-9a-fA-F:]+\]|[\w.-]+):\d+)")


class Proc:
    def __init__(self, popen: subprocess.Popen[str], urls: dict[str, str], output: list[str]):
        self.popen, self.urls, self.output = popen, urls, output

    @property
    def url(self) -> str:
        return next(iter(self.urls.values()))


def env_for(data_dir: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADSERVER_")}
    env.update(ADSERVER_DATA_DIR=data_dir, ADSERVER_ADMIN_KEY=ADMIN_KEY, **extra)
    return env


@contextmanager
def running(
    args: list[str], env: dict[str, str], want: int = 1, timeout: float = 60
) -> Iterator[Proc]:
    """Run `python -m adserver ARGS` until it has announced `want` URLs; stop it after."""
    popen = subprocess.Popen(
        [sys.executable, "-m", "adserver", *args],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    assert popen.stdout is not None
    output: list[str] = []
    urls: dict[str, str] = {}
    sel = selectors.DefaultSelector()
    sel.register(popen.stdout, selectors.EVENT_READ)
    drain: threading.Thread | None = None
    deadline = time.monotonic() + timeout
    try:
        while len(urls) < want:
            if time.monotonic() > deadline or popen.poll() is not None:
                raise RuntimeError("adserver did not start:\n" + "".join(output))
            if sel.select(0.2):
                line = popen.stdout.readline()
                output.append(line)
                if m := URL.search(line):
                    urls[m["what"]] = m["url"]
        proc = Proc(popen, urls, output)
        # keep reading its output (logs): a full pipe would block the process's writes
        drain = threading.Thread(target=_drain, args=(popen, output), daemon=True)
        drain.start()
        yield proc
    finally:
        sel.close()
        if popen.poll() is None:
            os.killpg(popen.pid, signal.SIGTERM)
            try:
                popen.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(popen.pid, signal.SIGKILL)
                popen.wait()
        if drain is not None:
            drain.join(5)  # the pipe ends with the process (and its children)
        popen.stdout.close()


KEEP_LINES = 5000


def _drain(popen: subprocess.Popen[str], output: list[str]) -> None:
    """Append the process's further output lines (the newest KEEP_LINES kept)."""
    assert popen.stdout is not None
    try:
        for line in popen.stdout:
            output.append(line)
            if len(output) > 2 * KEEP_LINES:
                del output[:KEEP_LINES]
    except (OSError, ValueError):  # closed when the process was stopped
        return


def wait_ready(url: str, timeout: float = 60) -> dict:
    """Poll /readyz until the decision server has loaded a snapshot."""
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        try:
            r = httpx.get(url + "/readyz", timeout=5)
            if r.status_code == 200:
                return r.json()
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} not ready after {timeout}s")
        time.sleep(0.1)
