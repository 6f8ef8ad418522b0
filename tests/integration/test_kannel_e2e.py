"""SMS end to end: fakesmsc (the operator's side) -> bearerbox -> smsbox -> our /sms/kannel -> back.

A real Kannel (Debian's bearerbox and smsbox, started by :class:`KannelRuntime` with a
kannel.conf rendered for free ports) and our aiohttp app with :func:`mount_sms` on the
port the rendered get-url points to. ``/usr/lib/kannel/test/fakesmsc`` plays the
subscriber's phone: it sends texts into bearerbox's fake SMSC and prints every message
Kannel delivers back ("Got message N: <from to type text>"). It never exits by itself,
so it always runs under ``timeout`` and is stopped as soon as the expected replies are in.

Kannel is started once for the module; each test starts its own app (fresh CRM, fresh
journey) on the same port. Needs the ``kannel`` and ``kannel-extras`` packages: installed
with apt-get when missing and running as root, else the tests are skipped (failed in CI).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web

from ivr.crm.actions import CrmActions
from ivr.crm.lookup import CrmLookup
from ivr.crm.seed import seed_demo
from ivr.crm.sqlite_directory import SqliteDirectory
from ivr.journey.memory import MemoryJourney
from ivr.journey.ports import StampedEvent
from ivr.runtime.kannel import KannelRuntime
from ivr.settings import Settings, load_settings
from ivr.sms.config import KannelConfig, SmsConfig, load_sms_config
from ivr.sms.kannel_http import mount_sms
from ivr.sms.notify import notify
from ivr.sms.segments import measure
from ivr.sms.sendsms import KannelSender
from ivr.sms.service import SmsService
from tests.demo_actions import DEMO_ACTIONS
from tests.integration.kannel_support import FAKESMSC, SHORT_NUMBER, Delivered, mo, parse_got, require_kannel

REPO = Path(__file__).resolve().parents[2]
ANNA = "+79991234567"
IVAN = "+79992088812"
OLGA = "+79993119007"
#: Longest wait for Kannel's answer to one batch; replies normally come back within 100 ms.
REPLY_TIMEOUT_S = 15.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def kannel_packages() -> None:
    require_kannel()


@dataclass(frozen=True)
class Gateway:
    """A running Kannel and where our app must listen for it."""

    runtime: KannelRuntime
    kannel: KannelConfig
    app_port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.app_port}"


@pytest.fixture(scope="module")
def sms_config() -> SmsConfig:
    return load_sms_config(REPO / "config" / "sms.yaml", known_actions=DEMO_ACTIONS)


@pytest.fixture(scope="module")
def gateway(kannel_packages: None, sms_config: SmsConfig, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[Gateway]:
    settings: Settings = load_settings(env={"IVR_HOME": str(REPO)})
    kannel = KannelConfig(**{**sms_config.kannel.__dict__, "admin_port": _free_port(),
                             "smsbox_port": _free_port(), "fake_smsc_port": _free_port(),
                             "sendsms_port": _free_port()})
    app_port = _free_port()
    runtime = KannelRuntime(settings, kannel, url=f"http://127.0.0.1:{app_port}",
                            state_dir=tmp_path_factory.mktemp("kannel"))
    runtime.up()
    try:
        yield Gateway(runtime, kannel, app_port)
    finally:
        runtime.down()
    assert runtime.pids() == {}, "kannel down left a process behind"


@dataclass
class App:
    service: SmsService
    journey: MemoryJourney
    sender: KannelSender
    runner: web.AppRunner

    async def stop(self) -> None:
        await self.runner.cleanup()


@pytest.fixture
async def app(gateway: Gateway, sms_config: SmsConfig, tmp_path: Path) -> AsyncIterator[App]:
    """Our side: the demo CRM, a memory journey, the SMS service mounted on the port Kannel calls."""
    seed_demo(tmp_path / "crm.sqlite", pin_iterations=1)
    directory = SqliteDirectory(tmp_path / "crm.sqlite")
    lookup = CrmLookup(directory)
    journey = MemoryJourney()
    sender = KannelSender.from_config(gateway.kannel, gateway.url)
    service = SmsService(sms_config, lookup, CrmActions(directory, on_change=lookup.forget), journey, sender=sender)
    web_app = web.Application()
    mount_sms(web_app, service)
    runner = web.AppRunner(web_app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", gateway.app_port).start()
    running = App(service, journey, sender, runner)
    try:
        yield running
    finally:
        await sender.close()
        await runner.cleanup()
        directory.close()


# -- the phone side -------------------------------------------------------------------


async def fakesmsc(gateway: Gateway, messages: list[str], *, expect: int, interval_s: float = 0.1,
                   linger_s: float = 0.0, during: asyncio.Future[object] | None = None) -> list[Delivered]:
    """Send ``messages`` ("from to text ...") and collect what comes back until ``expect`` SMS arrived.

    ``linger_s`` keeps listening after that, to prove nothing more arrives. Always under
    ``timeout``: fakesmsc itself never exits.
    """
    limit = int(REPLY_TIMEOUT_S + linger_s + 5)
    proc = await asyncio.create_subprocess_exec(
        "timeout", str(limit), str(FAKESMSC), "-H", "127.0.0.1", "-r", str(gateway.kannel.fake_smsc_port),
        "-i", str(interval_s), "-m", str(len(messages)), *messages,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    got: list[Delivered] = []
    assert proc.stdout is not None

    async def read() -> None:
        assert proc.stdout is not None
        while len(got) < expect:
            line = await proc.stdout.readline()
            if not line:
                return
            delivered = parse_got(line.decode("utf-8", "replace"))
            if delivered is not None:
                got.append(delivered)

    try:
        await asyncio.wait_for(read(), REPLY_TIMEOUT_S)
        if linger_s:
            try:
                await asyncio.wait_for(read_more(proc, got), linger_s)
            except TimeoutError:
                pass
    except TimeoutError:
        pass
    finally:
        if proc.returncode is None:
            proc.terminate()
        await proc.wait()
    return got


async def read_more(proc: asyncio.subprocess.Process, got: list[Delivered]) -> None:
    assert proc.stdout is not None
    while line := await proc.stdout.readline():
        delivered = parse_got(line.decode("utf-8", "replace"))
        if delivered is not None:
            got.append(delivered)


async def wait_for_events(journey: MemoryJourney, key: str, type_: str, count: int = 1,
                          timeout_s: float = 5.0) -> list[StampedEvent]:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        found = [e for e in journey.events(key) if e.type == type_]
        if len(found) >= count or asyncio.get_running_loop().time() > deadline:
            return found
        await asyncio.sleep(0.05)


# -- the tests ---------------------------------------------------------------------------


async def test_bal_from_a_demo_number_gets_the_balance_back(gateway: Gateway, app: App) -> None:
    (reply,) = await fakesmsc(gateway, [mo(ANNA, "BAL")], expect=1)
    assert reply == Delivered(SHORT_NUMBER, ANNA, "Your balance is 15,420.75 RUB.")


async def test_the_journey_records_what_was_texted_and_answered(gateway: Gateway, app: App) -> None:
    await fakesmsc(gateway, [mo(ANNA, "BAL")], expect=1)
    # Delivery reports of an earlier test's replies may land too: look at this message's interaction.
    first = next(e for e in app.journey.events("C-100231") if e.type == "sms_received")
    events = [e for e in app.journey.events("C-100231") if e.interaction == first.interaction]
    assert [e.type for e in events][:4] == ["sms_received", "caller_identified", "action_result", "sms_sent"]
    received, _, _, sent = events[:4]
    assert (received.data["text"], received.data["command"]) == ("BAL", "balance")
    assert sent.data["text"] == "Your balance is 15,420.75 RUB."


async def test_delivery_reports_for_the_reply_reach_the_journey(gateway: Gateway, app: App) -> None:
    await fakesmsc(gateway, [mo(ANNA, "BAL")], expect=1)
    sent = next(e for e in app.journey.events("C-100231") if e.type == "sms_sent")
    deadline = asyncio.get_running_loop().time() + 5
    while True:  # the fake SMSC reports "accepted" (8), then "delivered" (1)
        reports = {e.data["status"] for e in app.journey.events("C-100231")
                   if e.type == "sms_delivery" and e.interaction == sent.interaction}
        if reports >= {"accepted", "delivered"} or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.05)
    assert reports >= {"accepted", "delivered"}


async def test_cyrillic_look_alike_keyword_through_kannel(gateway: Gateway, app: App) -> None:
    (reply,) = await fakesmsc(gateway, [mo(ANNA, "ВАL")], expect=1)
    assert reply.text == "Your balance is 15,420.75 RUB."


async def test_russian_reply_arrives_as_ucs2_intact(gateway: Gateway, app: App) -> None:
    (reply,) = await fakesmsc(gateway, [mo(OLGA, "БАЛАНС")], expect=1)
    assert reply.text == "Ваш баланс: 340.00 RUB."


async def test_a_reply_of_several_segments_arrives_in_that_many_parts(gateway: Gateway, app: App) -> None:
    expected = app.service.config.commands["help"].reply.sources["ru"]
    parts = measure(expected).count
    assert parts > 1
    got = await fakesmsc(gateway, [mo(OLGA, "ПОМОЩЬ")], expect=parts, linger_s=1.0)
    assert len(got) == parts
    assert all(p.udh for p in got)
    assert "".join(p.text for p in got) == expected


async def test_roam_on_changes_the_crm_through_kannel(gateway: Gateway, app: App) -> None:
    (reply,) = await fakesmsc(gateway, [mo(IVAN, "roam on")], expect=1)
    assert reply.text == "Roaming is now on. Text ROAM OFF to turn it off."


async def test_over_the_rate_limit_kannel_sends_nothing(gateway: Gateway, app: App) -> None:
    limit = app.service.config.limits.rate_count
    got = await fakesmsc(gateway, [mo(ANNA, "HELP")] * (limit + 2), expect=limit + 2, interval_s=0.05,
                         linger_s=2.0)
    assert len(got) == limit


async def test_controller_down_still_tells_the_subscriber_where_to_go(gateway: Gateway, app: App) -> None:
    await app.stop()
    (reply,) = await fakesmsc(gateway, [mo(ANNA, "BAL")], expect=1)
    assert reply.text == "Sorry, this service is not available right now. Please call 100."


async def test_notify_reaches_the_phone_and_the_journey(gateway: Gateway, app: App) -> None:
    # fakesmsc must be connected to receive: it sends one harmless text and keeps listening.
    listening = asyncio.ensure_future(fakesmsc(gateway, [mo("+79990001122", "HELP")], expect=2))
    await asyncio.sleep(0.5)
    result = await notify(app.service, IVAN, "low_balance")
    got = await listening
    to_ivan = [d for d in got if d.receiver == IVAN]
    assert to_ivan == [Delivered(SHORT_NUMBER, IVAN, result.text)]
    (sent,) = [e for e in app.journey.events("C-208812") if e.type == "sms_sent"]
    assert (sent.data["template"], sent.interaction) == ("notify.low_balance", result.interaction)
    assert await wait_for_events(app.journey, "C-208812", "sms_delivery")


async def test_kannel_up_again_is_a_no_op(gateway: Gateway) -> None:
    before = gateway.runtime.pids()
    status = gateway.runtime.up()
    assert status.running and status.pids == before
