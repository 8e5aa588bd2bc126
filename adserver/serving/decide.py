"""The decision route, `POST /api/v2` (Kevel's Decision API v2): from a request's headers and
body to the response's status, headers and body. It decodes and checks the request, resolves
who may read an explain, takes the worker's bundle (pipeline.Bundle: snapshot, kernels,
models, signer, settings) and builds the request's facts (pipeline.Facts: the clock, the
tracking base URL, the explain caller, the device, the live view), runs the pipeline
(serving/pipeline.py), hands the decision record to the event log, counts the outcome and
encodes the answer. Errors are answered as JSON, never raised (500s are logged).

The same `answer` serves the protocol's lane and the ASGI endpoint (serving/http.py).
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from starlette.requests import Request

from adserver.common import apikeys, clock
from adserver.common.validation import TOO_DEEP
from adserver.config import Config
from adserver.formats import signing
from adserver.formats.signing import Signer
from adserver.serving import metrics, pipeline
from adserver.serving.bound import BoundSnapshot
from adserver.serving.errors import error_body, field_of
from adserver.serving.http import JSON_HEADER
from adserver.serving.stages.resolve import BadRequest
from adserver.serving.worker import Worker
from adserver.wire import kevel

log = logging.getLogger("adserver.worker")
EXPLAIN_ROLES = ("admin", "readonly", "advertiser")


def explainer(
    snap: BoundSnapshot, config: Config, presented: str | None, signer: Signer | None = None
) -> apikeys.Caller | None:
    """Who may see an explain for the key in `X-Adzerk-Explain` (per the snapshot's copy of
    the key table; the bootstrap key is an unscoped admin key), or for a console user's
    explain credential (formats/signing.explain_token): the pipeline explains only
    placements of the caller's network, and only the ads of its advertiser when it has one."""
    if presented and signer is not None and presented.startswith(signing.EXPLAIN_PREFIX):
        scope = signing.explain_scope(signer, presented, clock.now())
        if scope is None:
            return None
        role, network, advertiser = scope
        return apikeys.Caller(role, network or apikeys.UNSCOPED, advertiser or None)
    caller = apikeys.identify(presented, config.admin_key, snap.keys)
    return caller if caller is not None and caller.role in EXPLAIN_ROLES else None


class Refused(Exception):
    """An error answer of the decision route, decided before the decision itself."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None):
        self.status, self.body = status, error_body(status, code, message, field)


class DecisionRoute:
    """`POST /api/v2` for one worker: `answer` (for the lane and the ASGI endpoint) and
    `served` (the server-time metrics of each answer)."""

    def __init__(self, config: Config, worker: Worker):
        self.config, self.worker = config, worker
        self.max_body = config.max_body_bytes
        self.bases: dict[tuple[str, str], str] = {}  # (scheme, Host) -> tracking URL base

    def base_url(self, scheme: str, host: str, server: tuple[str, int] | None) -> str:
        """Where the tracking URLs point: the configured public URL, else the host the
        request came to (parsed once per Host a client sends)."""
        if self.config.public_url:
            return self.config.public_url
        key = (scheme, host)
        found = self.bases.get(key)
        if found is None:
            if len(self.bases) > 64:
                self.bases.clear()
            url = Request(
                {
                    "type": "http",
                    "scheme": scheme,
                    "server": server,
                    "path": "/",
                    "query_string": b"",
                    "root_path": "",
                    "headers": [(b"host", host.encode("latin-1"))] if host else [],
                }
            ).url
            found = self.bases[key] = f"{url.scheme}://{url.netloc}"
        return found

    @staticmethod
    def served(status: int, received: float, started: float, ended: float) -> None:
        """Server time of a decision: from when the worker read the request (the wait for
        the event loop included) to the response handed to the socket; and the wait."""
        if status == 200:
            metrics.TALLY.seconds.append(ended - received)
            metrics.TALLY.waits.append(started - received)

    def answer(
        self,
        headers: list[tuple[bytes, bytes]],
        body: bytes | None,
        scheme: str,
        server: tuple[str, int] | None,
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """The route's answer to a request's headers and body (None: larger than the limit):
        (status, response headers, body). Never raises: errors are answered as JSON (500s
        logged)."""
        try:
            return self._decide(headers, body, scheme, server)
        except Refused as e:
            status, out = e.status, e.body
        except Exception:  # answered as JSON like every other error, and logged
            log.exception("decision failed")
            status, out = (
                500,
                error_body(500, "internal", "the decision failed; see the server log"),
            )
        return status, [(b"content-length", str(len(out)).encode()), JSON_HEADER], out

    def _decide(
        self,
        headers: list[tuple[bytes, bytes]],
        body: bytes | None,
        scheme: str,
        server: tuple[str, int] | None,
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        worker, tally = self.worker, metrics.TALLY
        bundle = worker.bundle
        if bundle is None:
            raise Refused(503, "not_ready", "no snapshot loaded yet")
        snap = bundle.snap
        presented = None
        ua = host = ""
        for name, value in headers:
            if name == b"user-agent":
                ua = value.decode("latin-1")
            elif name == b"x-adzerk-explain":
                presented = value.decode("latin-1")
            elif name == b"host":
                host = value.decode("latin-1")
        if body is None:
            raise Refused(413, "too_large", f"body larger than {self.max_body} bytes")
        req = self._request(body)
        config = self.config
        explain = explainer(snap, config, presented, bundle.signer) if presented else None
        ctx = worker.facts(snap, clock.now(), self.base_url(scheme, host, server), explain, ua)
        try:
            response, record = pipeline.decide(bundle, req, ctx)
        except BadRequest as e:
            tally.bad += 1
            raise Refused(400, "invalid", e.message, e.field) from None
        if worker.records is not None and not req.notrack:
            worker.records.append(record)
        for div in response.decisions.values():
            if div:
                tally.filled += 1
            else:
                tally.unfilled += 1
        tally.ok += 1
        out = kevel.encoder.encode(response)
        extra = [
            (b"content-length", str(len(out)).encode()),
            JSON_HEADER,
            (b"x-adserver-snapshot", snap.version.encode()),
        ]
        if bundle.models.header:
            extra.append((b"x-adserver-models", bundle.models.header.encode()))
        if presented and explain is None:  # say why no explain came back
            extra.append((b"x-adserver-explain", b"refused: not a live API key"))
        return 200, extra, out

    @staticmethod
    def _request(body: bytes) -> Any:
        """The Kevel request of a body (Refused with the field and the problem)."""
        try:
            return kevel.decoder.decode(body)
        except msgspec.ValidationError as e:
            field, message = field_of(e)
            metrics.TALLY.bad += 1
            raise Refused(400, "invalid", message, field) from None
        except msgspec.DecodeError as e:
            metrics.TALLY.bad += 1
            raise Refused(400, "malformed_json", f"body is not valid JSON: {e}") from None
        except RecursionError:  # properties nested thousands deep
            metrics.TALLY.bad += 1
            raise Refused(400, "malformed_json", TOO_DEEP) from None
