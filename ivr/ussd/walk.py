"""An engine session rebuilt from a record's inputs and action results, then carried forward.

Rebuilding runs the same events in the same order on the same tree and context, and
answers every ``RunAction`` with the result recorded the first time, so the rebuilt
session is in exactly the state the first run left, without touching the CRM. A
recorded result that does not match the action asked for means the run diverged (the
tree changed under the session): :class:`ReplayFailed`, never a guess. Only inputs fed
after the rebuild run actions for real, and their results are appended for next time.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from ivr.config.errors import TemplateFailed
from ivr.flow.actions import Action, Collect, RunAction
from ivr.flow.context import CallerContext
from ivr.flow.engine import Session
from ivr.flow.errors import FlowError
from ivr.flow.events import ActionResult, Digits, Event, Started
from ivr.flow.model import Tree
from ivr.journey.events import USSD
from ivr.ussd.errors import ReplayFailed
from ivr.ussd.sessions import Input

RunActionFn = Callable[[RunAction], Awaitable[ActionResult]]
CHANNEL = USSD


class Walk:
    """One subscriber's way through the tree: the engine session and what went into it.

    ``turn`` holds the actions of the last step (through any action results), which is
    what the current screen shows.
    """

    def __init__(self, tree: Tree, context: CallerContext, *, entry: str | None, run_action: RunActionFn) -> None:
        self.tree = tree
        self.session = Session(tree, context, channel=CHANNEL, entry=entry)
        self.inputs: list[Input] = []
        self.results: list[ActionResult] = []
        self.turn: list[Action] = []
        self._run_action = run_action
        self._used = 0  # results consumed so far
        self._live = True

    @classmethod
    async def rebuild(cls, tree: Tree, context: CallerContext, *, entry: str | None, run_action: RunActionFn,
                      inputs: Sequence[Input] = (), results: Sequence[ActionResult] = (),
                      text: Sequence[str] = ()) -> Walk:
        """The session after ``inputs``; masked inputs are read from ``text`` (the request's inputs).

        With nothing recorded this is simply a new session, started live.
        """
        walk = cls(tree, context, entry=entry, run_action=run_action)
        walk.results = list(results)
        walk._live = not inputs and not results
        try:
            await walk._handle(Started(context.dnis))
            for item in inputs:
                await walk._handle(Digits(_value(item, text)))
                walk.inputs.append(item)
        except (FlowError, TemplateFailed) as exc:
            raise ReplayFailed(f"replay stopped: {exc}") from exc
        # Results past the replayed inputs belong to a step taken back ("back" past a page turn).
        del walk.results[walk._used:]
        walk._live = True
        return walk

    async def feed(self, value: str, *, masked_at: int | None = None) -> None:
        """One new input, live; a masked one is recorded as its index in the request's text."""
        await self._handle(Digits(value))
        self.inputs.append(value if masked_at is None else masked_at)

    @property
    def finished(self) -> bool:
        return self.session.finished

    @property
    def collect(self) -> Collect | None:
        """What the session waits on, if it waits for input."""
        if self.session.waiting_for != "input":
            return None
        return next((a for a in reversed(self.turn) if isinstance(a, Collect)), None)

    @property
    def waits_masked(self) -> bool:
        collect = self.collect
        return collect is not None and collect.masked

    async def _handle(self, event: Event) -> None:
        actions = self.session.handle(event)
        turn = list(actions)
        while self.session.waiting_for == "action_result":
            request = next(a for a in reversed(actions) if isinstance(a, RunAction))
            actions = self.session.handle(await self._result_for(request))
            turn.extend(actions)
        self.turn = turn

    async def _result_for(self, request: RunAction) -> ActionResult:
        if self._used < len(self.results):
            result = self.results[self._used]
            if result.name != request.name:
                raise ReplayFailed(f"recorded result of {result.name!r} where the session asked for "
                                   f"{request.name!r}")
        elif not self._live:
            raise ReplayFailed(f"the session asked for {request.name!r}, which it did not ask for before")
        else:
            result = await self._run_action(request)
            self.results.append(result)
        self._used += 1
        return result


def _value(item: Input, text: Sequence[str]) -> str:
    if isinstance(item, str):
        return item
    if 0 <= item < len(text):
        return text[item]
    raise ReplayFailed("a masked input is not in this request's text")
