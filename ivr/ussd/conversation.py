"""Menu sessions (``mode: tree``): from a record and the request's new inputs to the next screen.

Each request rebuilds the engine session from its record (:mod:`ivr.ussd.walk`),
then takes the inputs the subscriber added since the last request, one by one:

- ``more`` / ``back`` turn the gateway's pages of a long screen; ``more`` on the last
  page is the engine's own next page of a paginated menu, ``back`` on the first page
  takes back the engine's last page turn;
- at the resume offer, ``1`` continues the broken session (its record is copied: same
  context, inputs and results, so nothing runs twice) and ``2`` starts over;
- anything else is the subscriber's answer, for the engine.

What comes out is the new record and the journey events of this request, for the gateway
to store together. Nothing here touches the network, the kv table or the clock.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ivr.crm.ports import ActionService
from ivr.flow.actions import MenuChoice, RunAction
from ivr.flow.events import ActionResult
from ivr.flow.model import Tree
from ivr.journey.events import HANGUP, USSD_RESUMED, USSD_SCREEN
from ivr.ussd.config import ServiceCode, UssdConfig
from ivr.ussd.errors import ReplayFailed
from ivr.ussd.protocol import UssdReply, UssdRequest
from ivr.ussd.screens import PageKeys, Screen, choice_screen, paginate, screen_of
from ivr.ussd.sessions import DONE, OFFER, RUN, SessionRecord, results_of
from ivr.ussd.walk import RunActionFn, Walk

MAX_TITLE = 60
#: Engine sessions kept in this process between requests, so the usual next request (to
#: the same process) needs no replay. Each is checked against the record before use: one
#: another process moved on, or whose request failed to store, is rebuilt instead.
WALK_CACHE = 10_000

Event = tuple[str, dict[str, Any]]
"""A journey event before the gateway stamps it: type and data."""


@dataclass
class _Step:
    """One request's work in progress: the record, the engine walk, the page, the events."""

    record: SessionRecord
    walk: Walk | None = None
    page: int = 0
    events: list[Event] = field(default_factory=list)

    def drain(self) -> None:
        if self.walk is not None:
            self.events.extend((e.type, dict(e.data)) for e in self.walk.session.drain_journey())


class TreeSessions:
    """Runs menu sessions for the gateway; one instance serves every session."""

    def __init__(self, config: UssdConfig, actions: ActionService, *, walk_cache: int = WALK_CACHE) -> None:
        self.config = config
        self.actions = actions
        self._walks: OrderedDict[str, tuple[tuple[Any, ...], Walk]] = OrderedDict()
        self._walk_cache = walk_cache

    # -- entry points ---------------------------------------------------------------------

    async def start(self, record: SessionRecord, request: UssdRequest, tree: Tree, code: ServiceCode,
                    resume_from: SessionRecord | None) -> tuple[SessionRecord, list[Event]]:
        """A new session: the resume offer, or the tree from its entry, then the request's inputs."""
        step = _Step(record)
        if resume_from is not None and not request.inputs:
            step.record = record.advance(state=OFFER, offer_from=resume_from.session_id)
            return self._done(step, request)
        step.walk = await self._begin(step.record, tree, code)
        await self._take(step, request, tree, start=0)
        return self._done(step, request)

    async def advance(self, record: SessionRecord, request: UssdRequest, tree: Tree, start: int,
                      resume_from: SessionRecord | None = None) -> tuple[SessionRecord, list[Event]]:
        """An existing session: rebuild it, then the request's inputs from index ``start``.

        ``resume_from`` is the broken session the offer on screen would continue (loaded
        by the gateway when the record is at the offer).
        """
        step = _Step(record, page=record.page)
        if record.state == RUN:
            step.walk = await self._rebuild(record, tree, request.inputs)
        await self._take(step, request, tree, start=start, resume_from=resume_from)
        return self._done(step, request)

    def restart(self, record: SessionRecord, request: UssdRequest, why: str) -> tuple[SessionRecord, list[Event]]:
        """The session cannot go on (the tree changed, the record cannot be replayed): dial again."""
        language = self._language(record)
        reply = UssdReply(True, self.config.texts.get("restart", language, code=record.code))
        events: list[Event] = [(HANGUP, {"node": record.node, "by": "flow", "reason": why}),
                               (USSD_SCREEN, _screen_event(reply.screen, record.node, True))]
        return record.advance(state=DONE, reply=reply, last_text=request.text), events

    # -- inputs ---------------------------------------------------------------------------

    async def _take(self, step: _Step, request: UssdRequest, tree: Tree, *, start: int,
                    resume_from: SessionRecord | None = None) -> None:
        for index in range(start, len(request.inputs)):
            value = request.inputs[index]
            if step.record.state == OFFER:
                await self._answer_offer(step, value, request, tree, resume_from)
            else:
                await self._input(step, value, index, request)
            step.drain()

    async def _answer_offer(self, step: _Step, value: str, request: UssdRequest, tree: Tree,
                            old: SessionRecord | None) -> None:
        keys = self.config.keys
        if value == keys.resume and old is not None and old.resumable and old.tree == tree.version:
            record = step.record.advance(
                state=RUN, offer_from=None, code=old.code, journey_key=old.journey_key, context=old.context,
                context_data=old.context_data, entry=old.entry, preset=old.preset, inputs=old.inputs, results=old.results, tree=old.tree)
            step.record = record
            step.walk = await self._rebuild(record, tree, request.inputs)
            step.page = 0
            step.events.append((USSD_RESUMED, {"from": old.session_id, "node": step.walk.session.current_node}))
        elif value in (keys.resume, keys.restart):
            code = self.config.codes.get(step.record.code)
            if code is None:
                raise ReplayFailed(f"service code {step.record.code} is no longer configured")
            step.record = step.record.advance(state=RUN, offer_from=None)
            step.walk = await self._begin(step.record, tree, code)
            step.page = 0
        # anything else: the offer stays on screen

    async def _input(self, step: _Step, value: str, index: int, request: UssdRequest) -> None:
        walk = step.walk
        assert walk is not None
        keys = self.config.keys
        if value == keys.more and step.page < len(self._pages(step)) - 1:
            step.page += 1
            return
        if value == keys.back and step.page > 0:
            step.page -= 1
            return
        if walk.finished:
            return  # an ended session only pages
        await walk.feed(value, masked_at=index if walk.waits_masked else None)
        step.page = 0

    # -- sessions -------------------------------------------------------------------------

    async def _begin(self, record: SessionRecord, tree: Tree, code: ServiceCode) -> Walk:
        """The tree from the code's entry, live, then the code's preset inputs."""
        walk = await Walk.rebuild(tree, record.context, entry=code.entry, run_action=self._runner(record))
        for preset in code.inputs:
            await walk.feed(preset)
        return walk

    async def _rebuild(self, record: SessionRecord, tree: Tree, text: Sequence[str]) -> Walk:
        cached = self._walks.pop(record.session_id, None)
        if cached is not None and cached[0] == _fingerprint(record) and cached[1].tree is tree:
            return cached[1]
        walk = await Walk.rebuild(tree, record.context, entry=record.entry, run_action=self._runner(record),
                                  inputs=record.inputs, results=record.results, text=text)
        walk.session.drain_journey()  # recorded the first time
        return walk

    def _runner(self, record: SessionRecord) -> RunActionFn:
        context, interaction, actions = record.context, record.session_id, self.actions

        async def run(request: RunAction) -> ActionResult:
            # The interaction is the USSD sessionId: a retried request cannot write twice.
            return await actions.run(request.name, request.args, context, interaction=interaction)

        return run

    # -- screens --------------------------------------------------------------------------

    def _done(self, step: _Step, request: UssdRequest) -> tuple[SessionRecord, list[Event]]:
        step.drain()
        pages = self._pages(step)
        page = min(step.page, len(pages) - 1)
        walk = step.walk
        finished = walk is not None and walk.finished
        reply = UssdReply(finished and page == len(pages) - 1, pages[page])
        if walk is None:
            record = step.record.advance(reply=reply, page=page, last_text=request.text, finished=finished)
        else:
            record = step.record.advance(reply=reply, page=page, last_text=request.text, finished=finished,
                                         inputs=tuple(walk.inputs), results=results_of(walk.results),
                                         node=walk.session.current_node)
        step.events.append((USSD_SCREEN, _screen_event(reply.screen, record.node, reply.end)))
        if walk is not None and not finished and self._walk_cache > 0:
            self._walks[record.session_id] = (_fingerprint(record), walk)
            if len(self._walks) > self._walk_cache:
                self._walks.popitem(last=False)
        return record, step.events

    def _pages(self, step: _Step) -> tuple[str, ...]:
        language = self._language(step.record, step.walk)
        texts = self.config.texts
        keys = PageKeys(self.config.keys.more, texts.get("more", language), self.config.keys.back,
                        texts.get("back", language))
        limit = self.config.limits.screen_chars
        walk = step.walk
        if walk is None:
            offer = choice_screen(texts.get("resume", language),
                                  [MenuChoice(self.config.keys.resume, texts.get("resume_continue", language)),
                                   MenuChoice(self.config.keys.restart, texts.get("resume_restart", language))])
            return paginate(offer, keys, limit)
        if walk.finished:
            outcome = walk.session.outcome
            screen: Screen
            if outcome is not None and outcome.kind == "routed":
                # USSD cannot put the subscriber through: say how to reach a person instead.
                screen = screen_of(walk.turn, keys, skip_prompts_of=outcome.node, tail=texts.get("route", language))
            else:
                screen = screen_of(walk.turn, keys)
            return paginate(screen, keys, limit, final=True)
        return paginate(screen_of(walk.turn, keys), keys, limit)

    def _language(self, record: SessionRecord, walk: Walk | None = None) -> str:
        if walk is not None:
            return walk.session.language
        language = record.context.customer.get("language")
        return language if isinstance(language, str) else self.config.language


def _fingerprint(record: SessionRecord) -> tuple[Any, ...]:
    """What decides an engine session's state: equal fingerprints, equal sessions."""
    return (record.tree, record.entry, record.inputs, len(record.results), record.journey_key)


def _screen_event(screen: str, node: str | None, end: bool) -> dict[str, Any]:
    title = screen.split("\n", 1)[0]
    data: dict[str, Any] = {"title": title[:MAX_TITLE], "text": screen, "end": end}
    if node:
        data["node"] = node
    return data
