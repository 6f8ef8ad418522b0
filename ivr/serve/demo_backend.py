"""The demo's order and visit back end, so the declared actions of config/actions.yaml work
out of the box (``[integrations] demo_backend``; off in production).

It stands in for an operator's own systems exactly as the seeded SQLite CRM stands in for
theirs: real HTTP on the controller's listener, behaving as such services do (404 for an
order that does not exist, an ``Idempotency-Key`` honoured on a booking).
"""

from __future__ import annotations

import itertools
import json
import time

from aiohttp import web

PREFIX = "/demo"
ORDERS = {  # order number -> status and when it arrives
    "12345": {"status": "shipped", "delivery": {"date": "2026-12-08"}},
    "55501": {"status": "delivered", "delivery": {"date": "2026-11-28"}},
    "70007": {"status": "being packed", "delivery": {"date": "2026-12-10"}},
}
OFFICES = ("main", "north", "south")
MAX_BOOKINGS = 10_000  # the demo keeps its bookings in memory: bounded


def mount_demo_backend(app: web.Application) -> None:
    """``GET /demo/orders/{order}`` and ``POST /demo/visits`` (JSON)."""
    bookings: dict[str, dict[str, str]] = {}
    tickets = itertools.count(1001)

    async def order(request: web.Request) -> web.Response:
        found = ORDERS.get(request.match_info["order"])
        if found is None:
            return web.json_response({"error": {"message": "There is no order with that number."}}, status=404)
        return web.json_response({"order": request.match_info["order"], **found})

    async def visit(request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            return web.json_response({"error": {"message": "expected a JSON body"}}, status=400)
        office = body.get("office") if isinstance(body, dict) else None
        if office not in OFFICES:
            return web.json_response({"error": {"message": "We have no office by that name."}}, status=422)
        key = request.headers.get("Idempotency-Key", "")
        if key and key in bookings:
            return web.json_response(bookings[key], headers={"Idempotent-Replayed": "true"})
        slot = time.strftime("%H:00", time.gmtime(time.time() + 86400))
        booked = {"ticket": f"V-{next(tickets)}", "office": str(office), "time": f"tomorrow at {slot}"}
        if key and len(bookings) < MAX_BOOKINGS:
            bookings[key] = booked
        return web.json_response(booked, status=201, dumps=lambda v: json.dumps(v, ensure_ascii=False))

    app.router.add_get(PREFIX + "/orders/{order}", order)
    app.router.add_post(PREFIX + "/visits", visit)
