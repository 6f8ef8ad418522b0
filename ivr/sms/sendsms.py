"""Outbound SMS through Kannel's smsbox ``/cgi-bin/sendsms``.

The only module that knows the sendsms query: username, password, from, to, text,
charset, coding, and the delivery report request (``dlr-mask``, ``dlr-url``). The text
goes as UTF-8 with ``coding`` chosen from the text (0 = GSM-7 when every character
allows it, 2 = UCS-2 otherwise), so a Latin notification costs 160-character segments
and a Cyrillic one still arrives intact. smsbox answers 202 ``0: Accepted for
delivery`` (or ``3: Queued for later delivery``); anything else is :class:`SendFailed`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import aiohttp

from ivr.sms import dlr
from ivr.sms.config import KannelConfig
from ivr.sms.errors import SendFailed, SmsboxUnreachable
from ivr.sms.segments import measure

#: smsbox answers from memory; a slow answer means it is stuck, not busy.
DEFAULT_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class OutboundSms:
    """One SMS to send. ``interaction`` and ``journey_key`` come back in its delivery reports."""

    to: str  # E.164
    text: str
    sender: str
    interaction: str
    journey_key: str


@dataclass(frozen=True)
class SendReceipt:
    """smsbox took the message: ``status`` is its HTTP status, ``detail`` its answer line."""

    status: int
    detail: str


class SmsSender(Protocol):
    async def send(self, sms: OutboundSms) -> SendReceipt:
        """Hand ``sms`` to the gateway; :class:`SendFailed` when it is not accepted."""
        ...


class KannelSender:
    """:class:`SmsSender` over smsbox. ``controller_url`` is where Kannel reaches our /sms/dlr."""

    def __init__(self, sendsms_url: str, username: str, password: str, *, controller_url: str | None = None,
                 dlr_mask: int = 31, dlr_secret: str = "", timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.sendsms_url = sendsms_url
        self.username = username
        self._password = password
        self.controller_url = controller_url
        self.dlr_mask = dlr_mask
        self._dlr_secret = dlr_secret
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_config(cls, kannel: KannelConfig, controller_url: str, *, dlr_secret: str = "") -> KannelSender:
        host = f"[{kannel.sendsms_host}]" if ":" in kannel.sendsms_host else kannel.sendsms_host
        return cls(f"http://{host}:{kannel.sendsms_port}/cgi-bin/sendsms", kannel.sendsms_user,
                   kannel.sendsms_password, controller_url=controller_url, dlr_mask=kannel.dlr_mask,
                   dlr_secret=dlr_secret)

    def query(self, sms: OutboundSms) -> dict[str, str]:
        """The sendsms parameters for ``sms`` (aiohttp percent-encodes them)."""
        params = {
            "username": self.username, "password": self._password, "from": sms.sender, "to": sms.to,
            "text": sms.text, "charset": "UTF-8", "coding": str(measure(sms.text).coding),
        }
        if self.dlr_mask and self.controller_url:
            params["dlr-mask"] = str(self.dlr_mask)
            params["dlr-url"] = dlr.callback_url(self.controller_url, sms.interaction, sms.journey_key,
                                                 self._dlr_secret)
        return params

    async def send(self, sms: OutboundSms) -> SendReceipt:
        session = self._session
        if session is None or session.closed:
            session = self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with session.get(self.sendsms_url, params=self.query(sms)) as resp:
                body = (await resp.text(errors="replace")).strip()
        except aiohttp.ClientConnectorError as exc:  # refused or unroutable: the request never left
            raise SmsboxUnreachable(f"smsbox at {self.sendsms_url} is unreachable: {exc}") from exc
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise SendFailed(f"smsbox at {self.sendsms_url} did not answer: {type(exc).__name__}: {exc}") from exc
        if resp.status not in (200, 202):
            raise SendFailed(f"smsbox refused the SMS: HTTP {resp.status} {body[:200]}", status=resp.status,
                             hint="403: check kannel.sendsms_user/password in config/sms.yaml; "
                                  "other: read the smsbox log in var/kannel/")
        return SendReceipt(resp.status, body[:200])

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
