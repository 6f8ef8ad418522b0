"""One configuration value that is live: read by every session, replaced whole by a reload.

A reader takes :meth:`current` once and keeps what it got (a call keeps its tree to the
end); :meth:`load` parses afresh without touching the live value, so it may run in a
worker thread; :meth:`swap` installs a parsed value on the event loop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class LiveValue(Generic[T]):
    def __init__(self, loader: Callable[[], T]) -> None:
        self._loader = loader
        self._value = loader()  # the first load must succeed: there is nothing to fall back to
        self.generation = 1

    def current(self) -> T:
        return self._value

    def load(self) -> T:
        """A freshly parsed value (the loader's typed error, with every problem); nothing swapped."""
        return self._loader()

    def swap(self, value: T) -> None:
        self._value = value
        self.generation += 1
