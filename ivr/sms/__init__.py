"""SMS self-service through Kannel: keywords in, replies out, notifications, delivery reports.

Layout (one job per module): ``config`` reads config/sms.yaml, ``skeleton`` and
``grammar`` recognise commands, ``segments`` measures and shortens replies, ``service``
decides, ``kannel_http`` is the HTTP edge Kannel calls, ``sendsms`` sends through
smsbox, ``notify`` sends a notification, ``dlr`` reads delivery reports. The composition
root builds an :class:`SmsService` and calls :func:`mount_sms`; see docs/sms.md.
"""

from __future__ import annotations

from ivr.sms.config import SmsConfig, load_sms_config
from ivr.sms.kannel_http import mount_sms
from ivr.sms.notify import NotifyResult, notify
from ivr.sms.sendsms import KannelSender, OutboundSms, SendReceipt, SmsSender
from ivr.sms.service import InboundSms, SmsReply, SmsService

__all__ = ["InboundSms", "KannelSender", "NotifyResult", "OutboundSms", "SendReceipt", "SmsConfig", "SmsReply",
           "SmsSender", "SmsService", "load_sms_config", "mount_sms", "notify"]
