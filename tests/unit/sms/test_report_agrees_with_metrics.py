"""``ivr report`` (a fold over the stored journey) and ``/metrics`` (the live counters of the
process that stored it) read the journey the same way: the same events give the same KPIs."""

from __future__ import annotations

from ivr.journey.kpi import KpiAccumulator, fold
from ivr.journey.memory import MemoryJourney
from ivr.journey.metered import MeteredJourney
from ivr.sms import notify
from ivr.sms.dlr import DeliveryReport
from ivr.sms.service import InboundSms, SmsService

from .conftest import ANNA, UNKNOWN, RecordingSender


async def test_sms_exchanges_notifications_and_delivery_reports_count_alike(
        service: SmsService, sms_journey: MemoryJourney, sender: RecordingSender) -> None:
    live = KpiAccumulator()
    metered = SmsService(service.config, service.lookup, service.actions, MeteredJourney(sms_journey, live),
                         sender=sender, clock=service.clock)

    await metered.handle(InboundSms(ANNA, "1000", "BAL", "m1", "fake"))
    await metered.handle(InboundSms(UNKNOWN, "1000", "hello", "m2", "fake"))
    await notify(metered, ANNA, "low_balance")
    await metered.delivery(DeliveryReport("sms-m1", "C-100231", 1))

    stored = fold(await sms_journey.between(0, 2e9))
    counted = live.snapshot()
    assert stored.interactions == counted.interactions == {"sms": 3}
    assert (stored.ended, stored.routed, stored.crm_ok, stored.events) == \
           (counted.ended, counted.routed, counted.crm_ok, counted.events)
