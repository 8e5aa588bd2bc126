"""The creative review queue (admins): the creatives waiting for review (status pending),
each shown as a shopper would see it (an image, the HTML in a sandboxed frame that runs no
script, a product's id, the texts and the click URL), approved or rejected with a reason
one at a time or in bulk. Every decision is a PATCH through the management API, so the
audit log names the reviewer."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from adserver.control.console import users
from adserver.control.console.pages import HEADERS, templates

MAX_BULK = 200
PREVIEW_POLICY = (
    "default-src 'none'; img-src https: data:; style-src 'unsafe-inline' https:; "
    "font-src https: data:; sandbox; frame-ancestors 'self'"
)


def routes(console: Any) -> list[Route]:
    call = console.call

    async def queue(request: Request) -> Response:
        s, refused = console.gate(request, ("admin",), "the review queue is for admins")
        if s is None:
            return refused
        who = s.user.principal()
        message = None
        status_code = 200
        if request.method == "POST":
            data = await console.form(request)
            if not users.csrf_ok(s.csrf, data.get("csrf")):
                return console.refused(request, s)
            chosen = (await console.form_lists(request)).get("ids", [])
            ids = [int(x) for x in chosen if x.isascii() and x.isdigit()][:MAX_BULK]
            verdict = data.get("verdict")
            reason = data.get("reason", "").strip()
            if verdict not in ("approved", "rejected") or not ids:
                message, status_code = "choose creatives and approve or reject them", 400
            elif verdict == "rejected" and not reason:
                message, status_code = "a rejection needs a reason the advertiser will read", 400
            else:
                failed = []
                for id_ in ids:
                    st, _ = await call(
                        who,
                        "PATCH",
                        f"/v1/creatives/{id_}",
                        body={"status": verdict, "review_reason": reason},
                    )
                    if st != 200:
                        failed.append(str(id_))
                if not failed:
                    return RedirectResponse("/console/review", 303, headers=HEADERS)
                message, status_code = f"not reviewed: {', '.join(failed)}", 400
        status, got = await call(
            who, "GET", "/v1/creatives", {"status": "pending", "limit": MAX_BULK}
        )
        pending = got["data"] if status == 200 else []
        _, types = await call(who, "GET", "/v1/ad_types", {"limit": 500})
        names = {t["id"]: t["name"] for t in (types or {}).get("data", [])}
        return console.view(
            request,
            s,
            "review.html",
            status_code,
            pending=pending,
            ad_types=names,
            message=message,
        )

    async def preview(request: Request) -> Response:
        """A creative as a shopper's page would show it, for a sandboxed frame: its own
        document, with a policy that lets its styles and https images render and no script
        run, no form post and no navigation (the frame's sandbox adds an opaque origin)."""
        s = console.signed_in(request)
        if s is None:
            return Response("", 401)
        raw = request.path_params["id"]
        status, c = await call(s.user.principal(), "GET", f"/v1/creatives/{raw}")
        if status != 200:
            return Response("not found", 404, media_type="text/plain")
        return HTMLResponse(
            templates.get_template("preview.html").render(c=c),
            headers={
                "content-security-policy": PREVIEW_POLICY,
                "x-content-type-options": "nosniff",
                "cache-control": "no-store",
            },
        )

    return [
        Route("/console/review", queue, methods=["GET", "POST"]),
        Route("/console/preview/creatives/{id}", preview),
    ]
