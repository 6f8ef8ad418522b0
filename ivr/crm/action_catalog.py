"""Every named action a menu may call, with the args each needs: `ivr validate` and the
controller reject a tree that calls anything else at load time, never during a call."""

from __future__ import annotations

from collections.abc import Collection

from ivr.crm.declared_config import DeclaredActions
from ivr.crm.directory_ports import BALANCE, SERVICE_OFF, SERVICE_ON, TARIFF_CHANGE
from ivr.crm.identify import IDENTIFY_ACTION
from ivr.flow.action_signature import ActionSignature

ACTION_ARGS: dict[str, tuple[str, ...]] = {
    BALANCE: (),
    SERVICE_ON: ("service",),
    SERVICE_OFF: ("service",),
    TARIFF_CHANGE: ("tariff",),
    IDENTIFY_ACTION: ("account", "pin"),
    # taken by ivr.callbacks.actions before the CRM: the queue to keep a place in (number optional)
    "callback": ("queue",),
}


def action_catalog(declared: DeclaredActions) -> dict[str, Collection[str] | ActionSignature]:
    """The built-in actions and those an admin declared (their names never overlap: the loader refuses it)."""
    return {**ACTION_ARGS, **declared.signatures()}
