"""The uvicorn protocol the servers run on stamps each request with when the worker read it."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import httpx

APP = textwrap.dedent("""
    import json, time
    from adserver import runtime

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        stamp = scope.get(runtime.RECEIVED)
        body = json.dumps({"age": None if stamp is None else time.perf_counter() - stamp})
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body.encode()})

    sock = runtime.bind("127.0.0.1", 0)
    runtime.serve(app, sock, "stamp app", "warning")
""")


def test_requests_carry_when_the_worker_read_them() -> None:
    proc = subprocess.Popen([sys.executable, "-c", APP], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        url = line.rsplit(" on ", 1)[1].strip()
        with httpx.Client(base_url=url, timeout=10) as client:
            ages = [client.get(f"/{i}").json()["age"] for i in range(3)]  # keep-alive: 3 on one
        # a stamp per request (not one per connection), taken before the app ran
        assert all(a is not None and 0 <= a < 1.0 for a in ages), ages
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
