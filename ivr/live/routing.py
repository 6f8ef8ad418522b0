"""The live routing rules (config/routing.yaml), swapped whole on reload like the menu tree.

A decision reads the rules current at the moment it is made; a file that fails validation
is refused with its file:line problems and the live rules stay.
"""

from __future__ import annotations

from collections.abc import Callable

from ivr.routing.rules import RoutingConfig

Loader = Callable[[], RoutingConfig]


class RoutingStore:
    def __init__(self, loader: Loader) -> None:
        self._loader = loader
        self._config = loader()  # the first load must succeed, as for the tree
        self.generation = 1

    def current(self) -> RoutingConfig:
        return self._config

    def __call__(self) -> RoutingConfig:
        """:class:`~ivr.routing.service.RoutingService` takes the config as a callable."""
        return self._config

    def load(self) -> RoutingConfig:
        """Freshly parsed rules (:class:`~ivr.routing.rules.RoutingInvalid` with every problem); nothing swapped."""
        return self._loader()

    def swap(self, config: RoutingConfig) -> None:
        self._config = config
        self.generation += 1
