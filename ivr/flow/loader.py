"""Load a menu tree from YAML, or refuse with every problem at once.

This is the only way to get a :class:`~ivr.flow.model.Tree`: a tree that loaded
has passed every check in :mod:`ivr.flow.validate`, so the engine can trust it
and never validates during a call.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import MappingProxyType

from ivr.flow.errors import TreeInvalid
from ivr.flow.model import Tree
from ivr.flow.validate import KnownActions, PathArg, analyse


def load_tree(
    paths: PathArg,
    *,
    numbers: str | Path | None = None,
    sound_dirs: Sequence[str | Path] = (),
    extra_sound_dirs: Sequence[str | Path] = (),
    known_actions: KnownActions | None = None,
) -> Tree:
    """The tree in ``paths`` (files or directories; all files form one tree).

    Arguments are those of :func:`ivr.flow.validate.validate`. Raises
    :class:`TreeInvalid` carrying every problem found.
    """
    draft, problems = analyse(
        paths,
        numbers=numbers,
        sound_dirs=sound_dirs,
        extra_sound_dirs=extra_sound_dirs,
        known_actions=known_actions,
    )
    if problems:
        raise TreeInvalid(problems)
    return Tree(
        version=draft.version,
        languages=draft.languages,
        nodes=MappingProxyType(dict(draft.nodes)),
        entry=draft.entry,
        fallback=draft.fallback,
        numbers=MappingProxyType(dict(draft.numbers)),
        sources=tuple(draft.sources),
        drivers=MappingProxyType(dict(draft.drivers)),
    )
