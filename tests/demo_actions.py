"""Every action the demo configuration's menus and SMS commands may call: the built-in ones
and those declared in config/actions.yaml (read as ``ivr validate`` reads it)."""

from __future__ import annotations

from pathlib import Path

from ivr.crm.action_catalog import ACTION_ARGS, action_catalog
from ivr.crm.declared_config import load_declared_actions
from ivr.flow.validate import KnownActions

ROOT = Path(__file__).resolve().parents[1]
DECLARED = load_declared_actions(ROOT / "config" / "actions.yaml", reserved=frozenset(ACTION_ARGS))
DEMO_ACTIONS: KnownActions = action_catalog(DECLARED)
