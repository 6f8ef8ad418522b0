"""Outbound notifications (``ivr notify --to NUMBER --template NAME``): render, send, record.

A notification is the one SMS we start ourselves, so it is the one that must respect a
subscriber's STOP: an opted-out number is refused before anything is rendered. The text
comes from ``notifications:`` in config/sms.yaml in the customer's language, within the
segment budget, and the journey records ``sms_sent`` so the agent who takes the next
call sees "received an SMS: ..." and knows why the customer is calling.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from ivr.crm.numbers import normalise
from ivr.journey.events import SMS_SENT
from ivr.sms.errors import NotifyRefused, TemplateFailed
from ivr.sms.outbox import QUEUED
from ivr.sms.segments import Segments, measure, shorten
from ivr.sms.sendsms import OutboundSms, SendReceipt
from ivr.sms.service import SmsService


@dataclass(frozen=True)
class NotifyResult:
    to: str  # E.164
    template: str
    text: str
    language: str
    segments: Segments
    interaction: str
    journey_key: str
    receipt: SendReceipt

    def to_dict(self) -> dict[str, Any]:
        return {"to": self.to, "template": self.template, "text": self.text, "language": self.language,
                "segments": self.segments.count, "encoding": self.segments.encoding,
                "interaction": self.interaction, "journey_key": self.journey_key,
                "receipt": {"status": self.receipt.status, "detail": self.receipt.detail}}


async def notify(service: SmsService, to: str, template: str, **vars: Any) -> NotifyResult:
    """Send notification ``template`` to ``to`` with ``vars``; the journey records ``sms_sent``.

    Raises :class:`NotifyRefused` (bad number, unknown template, a declared var missing,
    the template does not fit this customer, opted out, no sender configured) before
    anything is sent, and :class:`SendFailed` when smsbox does not take the message.
    """
    number = normalise(to, service.default_region)
    if number is None:
        raise NotifyRefused(f"{to!r} is not a phone number", hint="give the number in E.164, e.g. +79991234567")
    notification = service.config.notifications.get(template)
    if notification is None:
        known = ", ".join(sorted(service.config.notifications)) or "none"
        raise NotifyRefused(f"no notification template {template!r}", hint=f"templates in config/sms.yaml: {known}")
    missing = [name for name in notification.vars if name not in vars]
    if missing:
        raise NotifyRefused(f"template {template!r} needs {', '.join(missing)}",
                            hint="pass them as --var name=value")
    if service.sender is None:
        raise NotifyRefused("no SMS sender is configured", hint="start Kannel (`ivr kannel up`) and wire a KannelSender")
    if await service.opted_out(number):
        raise NotifyRefused(f"{number} has opted out of notifications (texted STOP)",
                            hint="they can opt in again by texting START", error_id="sms-opted-out")
    start = await service.callers.start(number)  # an outbound text is no caller session: no start events
    customer = start.customer
    language = service.language_for(None, customer)
    context = {"customer": customer, "number": number, "language": language, "result": {}, "vars": dict(vars)}
    try:
        text = notification.text.render(language, context)
    except TemplateFailed as exc:
        raise NotifyRefused(f"template {template!r} cannot be filled in for {number}: {exc.reason}",
                            hint="is the number a customer? does the template use a field they lack?") from exc
    text = shorten(text, service.config.max_segments)
    key = start.journey_key
    interaction = f"notify-{uuid.uuid4()}"
    receipt = await service.sender.send(OutboundSms(number, text, service.config.sender, interaction, key))
    segments = measure(text)
    sent: dict[str, object] = {"text": text, "template": notification.text.name, "segments": segments.count,
                               "encoding": segments.encoding}
    if receipt.status == QUEUED:
        sent["queued"] = True
    await service.record(key, interaction, [(SMS_SENT, sent)])
    return NotifyResult(number, template, text, language, segments, interaction, key, receipt)

