"""One engine turn as USSD pages of the channel's screen size, with "more" and "back" keys.

Paging is a property of the channel, not of the menus: the engine renders a turn as text
(a menu's title and every visible option) and knows no screen size; the gateway pages
every screen itself to ``limits.screen_chars`` (182 by default, what most handsets show):
paragraphs first, then the block the subscriber answers (prompt and options), kept
together when it fits on one page. Every page but the last ends with the ``more`` line,
every page after the first with the ``back`` line; an option on a later page is chosen
by its own key, as on the first.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from ivr.flow.actions import Action, Collect, MenuChoice, Play
from ivr.flow.render_text import format_parts


@dataclass(frozen=True, slots=True)
class Screen:
    """A turn as text: paragraphs to read, then the block to answer (kept together if possible)."""

    body: tuple[str, ...]
    block: tuple[str, ...]

    @property
    def lines(self) -> tuple[str, ...]:
        return self.body + self.block

    @property
    def title(self) -> str:
        return self.lines[0] if self.lines else ""


@dataclass(frozen=True, slots=True)
class PageKeys:
    """The navigation lines, in the session's language: ``#. More`` and ``00. Back``."""

    more: str
    more_label: str
    back: str
    back_label: str

    @property
    def more_line(self) -> str:
        return f"{self.more}. {self.more_label}"

    @property
    def back_line(self) -> str:
        return f"{self.back}. {self.back_label}"


def screen_of(turn: Sequence[Action], keys: PageKeys, *, skip_prompts_of: str | None = None,
              tail: str | None = None) -> Screen:
    """The screen for one turn's actions.

    ``skip_prompts_of`` drops the prompts of that node (a route's "connecting you" makes
    no sense on USSD); ``tail`` is a last paragraph.
    """
    paragraphs: list[str] = []
    collect: Collect | None = None
    for action in turn:
        if isinstance(action, Play):
            if skip_prompts_of is not None and action.prompt_id.startswith(skip_prompts_of + "."):
                continue
            text = format_parts(action.parts)
            if text:
                paragraphs.append(text)
        elif isinstance(action, Collect):
            collect = action
    if tail:
        paragraphs.append(tail)
    if collect is None or not collect.options:
        return Screen(tuple(paragraphs[:-1]), tuple(paragraphs[-1:]))
    lines = [f"{c.key}. {c.label}" for c in collect.options]
    return Screen(tuple(paragraphs[:-1]), (*paragraphs[-1:], *lines))


def choice_screen(prompt: str, choices: Sequence[MenuChoice]) -> Screen:
    """A screen of the gateway's own (the resume offer): a prompt and numbered choices."""
    return Screen((), (prompt, *(f"{c.key}. {c.label}" for c in choices)))


def paginate(screen: Screen, keys: PageKeys, limit: int, *, final: bool = False) -> tuple[str, ...]:
    """The screen as pages of at most ``limit`` characters.

    ``final``: the session ends with the last page, which then carries no ``back``
    line (an END screen takes no answer). A paragraph moves whole to the next page when it
    fits there, and is cut between words only when it fits on no page; the answer block
    stays together unless it is longer than a page itself. Nothing is dropped.
    """
    more_len = len(keys.more_line) + 1
    back_len = len(keys.back_line) + 1
    whole = "\n".join(screen.lines)
    if len(whole) <= limit:
        return (_with_nav(whole, more=False, back=False, keys=keys),)
    items = deque([*screen.body, "\n".join(screen.block)])
    pages: list[list[str]] = []
    current: list[str] = []
    while items:
        item = items.popleft()
        has_back = bool(pages)
        follows = bool(items)
        used = len("\n".join(current)) + 1 if current else 0
        if used + len(item) + (back_len if has_back else 0) + (more_len if follows else 0) <= limit:
            current.append(item)
            continue
        if current and len(item) + back_len + (more_len if follows else 0) <= limit:
            pages.append(current)  # the item fits on the next page: do not cut it
            current = []
            items.appendleft(item)
            continue
        if "\n" in item:  # a block longer than a page: its lines, one by one
            items.extendleft(reversed(item.split("\n")))
            continue
        room = max(1, limit - used - (back_len if has_back else 0) - more_len)
        head, tail = _cut(item, room)
        if not head and current:
            pages.append(current)
            current = []
            items.appendleft(item)
            continue
        if not head:  # one word longer than a page
            head, tail = item[:room], item[room:]
        current.append(head)
        pages.append(current)
        current = []
        if tail:
            items.appendleft(tail)
    if current or not pages:
        pages.append(current)
    last = len(pages) - 1
    return tuple(
        _with_nav("\n".join(lines), more=i < last, back=i > 0 and not (final and i == last),
                  keys=keys)
        for i, lines in enumerate(pages))


def _with_nav(text: str, *, more: bool, back: bool, keys: PageKeys) -> str:
    lines = [text] if text else []
    if more:
        lines.append(keys.more_line)
    if back:
        lines.append(keys.back_line)
    return "\n".join(lines)


def _cut(text: str, room: int) -> tuple[str, str]:
    """The most whole words of ``text`` that fit in ``room`` characters, and the rest."""
    if len(text) <= room:
        return text, ""
    cut = text.rfind(" ", 0, room + 1)
    if cut <= 0:
        return "", text
    return text[:cut].rstrip(), text[cut + 1:].lstrip()
