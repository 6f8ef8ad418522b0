"""Kannel away, then back (real bearerbox and smsbox): a notification waits and arrives exactly once.

A text asked for while Kannel is down is queued in the outbox (the caller learns it is
queued, not that it failed); when Kannel starts, the outbox sends it, and the subscriber's
phone (fakesmsc on the fake SMSC) receives it once.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from ivr.backoff import Backoff
from ivr.composition import load_sms_settings
from ivr.harness.sipp import free_port
from ivr.runtime.kannel import KannelRuntime
from ivr.settings import load_settings
from ivr.sms.config import KannelConfig
from ivr.sms.outbox import QUEUED, SmsOutbox
from ivr.sms.sendsms import KannelSender, OutboundSms
from tests.integration.kannel_support import SmsPhones, require_kannel

REPO = Path(__file__).resolve().parents[2]
ANNA = "+79991234567"


@pytest.fixture
def kannel(tmp_path: Path) -> Iterator[KannelRuntime]:
    require_kannel()
    settings = load_settings(env={"IVR_HOME": str(REPO)})
    sms = load_sms_settings(settings)
    ports = {name: free_port(socket.SOCK_STREAM) for name in ("admin_port", "smsbox_port", "fake_smsc_port",
                                                              "sendsms_port")}
    runtime = KannelRuntime(settings, KannelConfig(**{**sms.kannel.__dict__, **ports}),
                            url=f"http://127.0.0.1:{free_port(socket.SOCK_STREAM)}", state_dir=tmp_path / "kannel")
    yield runtime
    runtime.down()


def test_a_text_sent_while_kannel_is_down_waits_and_is_delivered_exactly_once(kannel: KannelRuntime) -> None:
    k = kannel.kannel
    box = SmsOutbox(KannelSender.from_config(k, ""), backoff=Backoff(initial_s=0.2, maximum_s=0.5))

    async def scenario() -> list[str]:
        receipt = await box.send(OutboundSms(ANNA, "Your callback is booked for 15:30", "1000", "notify-1", "C-1"))
        assert receipt.status == QUEUED and box.stats.waiting == 1
        await asyncio.to_thread(kannel.up)  # the outbox keeps trying meanwhile
        async with asyncio.timeout(30):
            await box.drained()
        async with SmsPhones(k.fake_smsc_port, limit_s=60) as phones:  # bearerbox holds it for the SMSC
            got = await phones.to(ANNA, count=1, timeout=20)
            await asyncio.sleep(2)  # room for a second copy, were one sent
            texts = [d.text for d in phones.delivered if d.receiver == ANNA]
        await box.close()
        assert got
        return texts

    texts = asyncio.run(scenario())

    assert texts == ["Your callback is booked for 15:30"]
    assert (box.stats.sent, box.stats.dropped, box.stats.waiting) == (1, 0, 0)
