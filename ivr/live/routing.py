"""The live routing rules (config/routing.yaml), swapped whole on reload like the menu tree.

A decision reads the rules current at the moment it is made; a file that fails
validation raises :class:`~ivr.routing.rules.RoutingInvalid` from ``load`` and the live
rules stay.
"""

from __future__ import annotations

from ivr.live.value import LiveValue
from ivr.routing.rules import RoutingConfig


class RoutingStore(LiveValue[RoutingConfig]):
    """The live :class:`~ivr.routing.rules.RoutingConfig`; callable, as
    :class:`~ivr.routing.service.RoutingService` takes its config."""

    def __call__(self) -> RoutingConfig:
        return self.current()
