"""Every named action a menu may call, with the args each needs: `ivr validate` and the
controller reject a tree that calls anything else at load time, never during a call."""

from __future__ import annotations

from ivr.crm.directory_ports import BALANCE, SERVICE_OFF, SERVICE_ON, TARIFF_CHANGE
from ivr.crm.identify import IDENTIFY_ACTION

ACTION_ARGS: dict[str, tuple[str, ...]] = {
    BALANCE: (),
    SERVICE_ON: ("service",),
    SERVICE_OFF: ("service",),
    TARIFF_CHANGE: ("tariff",),
    IDENTIFY_ACTION: ("account", "pin"),
    # taken by ivr.callbacks.actions before the CRM: the queue to keep a place in (number optional)
    "callback": ("queue",),
}
