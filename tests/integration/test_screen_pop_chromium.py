"""The screen pop in a real browser: Debian's headless Chromium opens it like an agent desktop.

The unit tests check the HTML; this checks that a browser renders it as a page (a
non-trivial screenshot) and that the journey is in the DOM it built, with the key in the
URL as a desktop that cannot set headers would send it. The app listens on 127.0.0.1 on a
port the system picks; Chromium runs with networking extras off so it talks to nothing else.

Without Chromium (``apt-get install -y chromium``) the test is skipped on a developer's
machine and fails in CI (CI=true).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from ivr.agent.http import mount_agent_api
from ivr.journey.memory import MemoryJourney
from ivr.journey.ports import StampedEvent
from ivr.journey.tokens import ContextClaim, TokenService
from tests.integration.cdp import chromium

REPO = Path(__file__).resolve().parents[2]
API_KEY = "chromium-test-key"
CUSTOMER = "C-125570"
CHROMIUM_TIMEOUT_S = 90
MIN_SCREENSHOT_BYTES = 20_000  # a blank 1200x900 PNG is a few KB; a rendered page is tens


async def a_journey(journey: MemoryJourney, now: float) -> None:
    """Two days ago an SMS offer, an hour ago a USSD balance check, now a call routed to collections."""
    await journey.append(CUSTOMER, [
        StampedEvent(now - 2 * 86400, "sms", "sms-481", "sms_sent", {"text": "Roaming pack: 50% off this week"}),
        StampedEvent(now - 2 * 86400 + 300, "sms", "sms-482", "sms_received", {"text": "ROAMING"}),
    ])
    await journey.append(CUSTOMER, [
        StampedEvent(now - 3600, "ussd", "ussd-77", "ussd_request", {"code": "*100#", "service": "balance"}),
        StampedEvent(now - 3590, "ussd", "ussd-77", "ussd_screen", {"title": "Balance: -1,250.00 RUB"}),
    ])
    call = "1700000000.42"
    await journey.append(CUSTOMER, [
        StampedEvent(now - 70, "voice", call, "caller_identified", {"by": "caller_id", "customer": CUSTOMER,
                                                                    "crm_ms": 14.2}),
        StampedEvent(now - 68, "voice", call, "node_entered", {"node": "main", "kind": "menu"}),
        StampedEvent(now - 60, "voice", call, "key_pressed", {"node": "main", "key": "2"}),
        StampedEvent(now - 58, "voice", call, "node_entered", {"node": "tariffs", "kind": "menu"}),
        StampedEvent(now - 50, "voice", call, "no_input", {"node": "tariffs", "count": 1}),
        StampedEvent(now - 45, "voice", call, "speech_matched", {"node": "tariffs", "text": "roaming", "key": "4"}),
        StampedEvent(now - 40, "voice", call, "route_decided", {
            "kind": "queue", "queue": "collections", "priority": 5, "reason": "collections: overdue 45 days, 1,250.00",
            "rules": ["debt"], "agent_first": ""}),
    ])


@pytest.fixture
async def screen_pop_url(tmp_path: Path) -> AsyncIterator[str]:
    journey = MemoryJourney()
    tokens = TokenService(b"c" * 32, journey, ttl_s=600)
    now = time.time()
    await a_journey(journey, now)
    token = await tokens.issue(ContextClaim(CUSTOMER, "1700000000.42", "collections", 5,
                                            "collections: overdue 45 days, 1,250.00", "voice", now - 7 * 86400))
    app = web.Application()
    mount_agent_api(app, tokens, journey, API_KEY)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}/agent/{token}?key={API_KEY}"
    finally:
        await runner.cleanup()


async def run_chromium(tmp_path: Path, *args: str) -> bytes:
    """Chromium as a subprocess of this loop: the app it fetches from runs on the same loop."""
    proc = await asyncio.create_subprocess_exec(
        chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium-profile'}", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), CHROMIUM_TIMEOUT_S)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
    return out


async def test_chromium_renders_the_screen_pop_as_a_page(screen_pop_url: str, tmp_path: Path) -> None:
    shot = tmp_path / "screen-pop.png"

    await run_chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,900", screen_pop_url)

    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > MIN_SCREENSHOT_BYTES
    if os.environ.get("IVR_SAVE_SCREEN_POP"):  # refresh the picture in the docs
        shutil.copy(shot, REPO / "docs" / "screen-pop.png")


async def test_chromium_dom_holds_the_journey_across_channels(screen_pop_url: str, tmp_path: Path) -> None:
    dom = (await run_chromium(tmp_path, "--dump-dom", screen_pop_url)).decode()

    for line in ("routed to collections: overdue 45 days, 1,250.00", "said 'roaming' in tariffs",
                 "pressed 2 in main", "checked balance by USSD *100#", "received an SMS: 'Roaming pack: 50% off"):
        assert line in dom.replace("&#x27;", "'").replace("&#39;", "'"), line


async def test_chromium_sees_the_channels_newest_first(screen_pop_url: str, tmp_path: Path) -> None:
    dom = (await run_chromium(tmp_path, "--dump-dom", screen_pop_url)).decode()

    assert dom.index('class="group voice"') < dom.index('class="group ussd"') < dom.index('class="group sms"')
