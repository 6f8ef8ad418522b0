"""The live menu tree, swapped whole on reload.

A call takes the tree that is current when it starts and keeps it to the end, so a
reload never changes a call in progress. Channels see it through
:class:`ivr.flow.ports.CurrentTree`; a tree that fails to load raises
:class:`~ivr.flow.errors.TreeInvalid` from :meth:`~ivr.live.value.LiveValue.load`.
"""

from __future__ import annotations

from ivr.flow.model import Tree
from ivr.live.value import LiveValue


class TreeStore(LiveValue[Tree]):
    """The live :class:`~ivr.flow.model.Tree`."""
