"""USSD self-service: the aggregator's webhook, sessions shared through the journey kv, the menus.

Wiring (the composition root does this)::

    config = load_ussd_config(settings.home / "config/ussd.yaml")
    gateway = UssdGateway(config, trees, lookup, actions, journey)
    mount_ussd(app, gateway)

Modules: ``protocol`` (the wire), ``http`` (the resource), ``service`` (decides),
``conversation`` (menu sessions), ``replay`` (rebuilding a session), ``sessions``
(records in the kv), ``screens`` (pages), ``config``, ``auth``, ``ratelimit``.
See docs/ussd.md.
"""

from __future__ import annotations

from ivr.ussd.config import ServiceCode, UssdConfig, load_ussd_config
from ivr.ussd.errors import BadRequest, ReplayFailed, SessionMismatch, UssdConfigInvalid, UssdError
from ivr.ussd.http import mount_ussd
from ivr.ussd.protocol import UssdReply, UssdRequest
from ivr.ussd.service import UssdGateway

__all__ = [
    "BadRequest",
    "ReplayFailed",
    "ServiceCode",
    "SessionMismatch",
    "UssdConfig",
    "UssdConfigInvalid",
    "UssdError",
    "UssdGateway",
    "UssdReply",
    "UssdRequest",
    "load_ussd_config",
    "mount_ussd",
]
