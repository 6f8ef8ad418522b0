"""The call-flow engine: events in, actions out, nothing else.

A :class:`Session` walks one caller through a validated :class:`Tree`. It does
no I/O, reads no clock, draws no random number and never awaits: the host sends
an event (the call started, keys, speech, a timeout, an action's result, a
hangup) and gets back the actions to perform, ending with the one the session
now waits on (a ``Collect`` or a ``RunAction``) or a final ``RouteToQueue`` /
``HangUp``. The same session code serves voice, USSD and SMS; only the
presentation of a menu differs (text channels get a title and option labels).

Sessions share the immutable tree and keep a few slots of state each, so a
host can hold many thousands of idle calls; see bench/bench_engine.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from ivr.config.errors import TemplateFailed
from ivr.config.templates import Scope
from ivr.flow import journey as J
from ivr.flow import speech
from ivr.flow.actions import (
    MASK,
    Action,
    Collect,
    HangUp,
    MenuChoice,
    Play,
    RouteToQueue,
    RunAction,
    SetVariable,
)
from ivr.flow.context import EMPTY, CallerContext
from ivr.flow.errors import (
    LoopDetected,
    NoEntryPoint,
    SessionError,
    SessionFinished,
    UnexpectedEvent,
    UnknownChannel,
)
from ivr.flow.events import ActionResult, Digits, Event, Hangup, Speech, Started, Timeout
from ivr.flow.journey import JourneyEvent
from ivr.flow.model import (
    CHANNELS,
    MAX_HISTORY,
    TEXT_CHANNELS,
    ActionNode,
    BackNode,
    CollectNode,
    GotoNode,
    HangupNode,
    MenuNode,
    Node,
    OfferNode,
    Option,
    RepeatNode,
    RouteNode,
    SayNode,
    Tree,
)
from ivr.flow.prompts import Prompt
from ivr.flow.ranking import ranked
from ivr.flow.render_text import CONFIRM_LABELS

#: Nodes a single event may run before the session must wait; validation rejects
#: loops without input, so reaching this means a bug, reported as LoopDetected.
MAX_STEPS_PER_EVENT = 100
#: Prompt and Collect shapes a menu keeps built; ranked options can make many orders, so more are built per call
MAX_SHAPES = 256

_NEW, _INPUT, _ACTION, _DONE = range(4)
_STATE_NAMES = {
    _NEW: "the session has not started",
    _INPUT: "waiting for input",
    _ACTION: "waiting for an action result",
    _DONE: "the session is finished",
}

InputNode = MenuNode | CollectNode | ActionNode | OfferNode


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a session ended: ``routed`` to a queue, ``hung_up`` by the flow, or ``caller_hung_up``."""

    kind: str
    node: str | None
    queue: str | None = None
    priority: int | None = None
    reason: str | None = None


class Session:
    """One caller's walk through a tree. Not thread-safe; one session per call."""

    __slots__ = (
        "tree",
        "channel",
        "language",
        "_text",
        "_ctx",
        "_node",
        "_state",
        "_visible",
        "_offer",
        "_noinput",
        "_nomatch",
        "_menus",
        "_journey",
        "_outcome",
        "_entry",
    )

    def __init__(
        self,
        tree: Tree,
        context: CallerContext | Mapping[str, Any] | None = None,
        *,
        channel: str = "voice",
        language: str | None = None,
        entry: str | None = None,
    ) -> None:
        if channel not in CHANNELS:
            raise UnknownChannel(channel)
        ctx = CallerContext.coerce(context)
        lang = language or ctx.customer.get("language")
        if lang not in tree.languages:
            lang = tree.languages[0]
        self.tree = tree
        self.channel = channel
        self.language: str = lang
        self._text = channel in TEXT_CHANNELS
        # The template context; "vars" and "result" are replaced, never mutated (copy on write).
        self._ctx = Scope(
            {
                "customer": ctx.customer,
                "caller": ctx.caller,
                "channel": channel,
                "dnis": ctx.dnis,
                "language": lang,
                "now": ctx.now,
                "queue": ctx.queue,
                "queues": ctx.queues,
                "vars": EMPTY,
                "result": EMPTY,
            }
        )
        self._node: Node | None = None
        self._state = _NEW
        self._visible: tuple[Option, ...] = ()
        self._offer = ""  # the code of the offer being answered
        self._noinput = 0
        self._nomatch = 0
        self._menus: list[str] = []
        self._journey: list[JourneyEvent] = []
        self._outcome: Outcome | None = None
        self._entry = entry

    # -- public surface -----------------------------------------------------------------

    @property
    def finished(self) -> bool:
        return self._state == _DONE

    @property
    def outcome(self) -> Outcome | None:
        return self._outcome

    @property
    def current_node(self) -> str | None:
        return self._node.id if self._node is not None else None

    @property
    def waiting_for(self) -> str | None:
        """``"input"``, ``"action_result"``, or None before the start and after the end."""
        return {_INPUT: "input", _ACTION: "action_result"}.get(self._state)

    @property
    def variables(self) -> Mapping[str, str]:
        """Values stored by collect nodes (masked ones included: the host needs them)."""
        vars_: Mapping[str, str] = self._ctx["vars"]
        return vars_

    def drain_journey(self) -> list[JourneyEvent]:
        """Journey events since the last drain, oldest first; the host stamps and stores them."""
        events = self._journey
        self._journey = []
        return events

    def handle(self, event: Event) -> list[Action]:
        """Take one event; return the actions to perform, in order."""
        out: list[Action] = []
        state = self._state
        if state == _DONE:
            if isinstance(event, (Hangup, ActionResult)):
                return out  # late news about a call that already ended
            raise SessionFinished(event, node=self.current_node)
        nxt: str | None = None
        if isinstance(event, Digits):
            if state == _INPUT:
                nxt = self._on_digits(event.digits, out)
            elif state != _ACTION:  # keys pressed while an action runs are dropped
                raise UnexpectedEvent(event, _STATE_NAMES[state], node=self.current_node)
        elif isinstance(event, Speech):
            if state == _INPUT:
                nxt = self._on_speech(event, out)
            elif state != _ACTION:
                raise UnexpectedEvent(event, _STATE_NAMES[state], node=self.current_node)
        elif isinstance(event, Timeout):
            if state == _INPUT:
                nxt = self._on_noinput(out)
            elif state != _ACTION:
                raise UnexpectedEvent(event, _STATE_NAMES[state], node=self.current_node)
        elif isinstance(event, ActionResult):
            if state != _ACTION:
                raise UnexpectedEvent(event, _STATE_NAMES[state], node=self.current_node)
            nxt = self._on_result(event)
        elif isinstance(event, Hangup):
            self._journey.append(JourneyEvent(J.HANGUP, {"node": self.current_node, "by": "caller"}))
            self._finish(Outcome("caller_hung_up", self.current_node))
        elif isinstance(event, Started):
            if state != _NEW:
                raise UnexpectedEvent(event, "the session has already started", node=self.current_node)
            nxt = self._entry_for(event.dnis)
        else:
            raise UnexpectedEvent(event, _STATE_NAMES[state], node=self.current_node)
        if nxt is not None:
            self._run(nxt, out)
        return out

    # -- walking ------------------------------------------------------------------------

    def _entry_for(self, dnis: str | None) -> str:
        if dnis is not None:
            self._ctx["dnis"] = dnis
        entry = self._entry or self.tree.entry_for(dnis if dnis is not None else self._ctx["dnis"])
        if entry is None or entry not in self.tree.nodes:
            raise NoEntryPoint(dnis)
        self._entry = entry
        return entry

    def _run(self, node_id: str, out: list[Action]) -> None:
        """Run nodes from ``node_id`` until one waits for the caller or the host, or the call ends."""
        nodes = self.tree.nodes
        ctx = self._ctx
        journey = self._journey
        for _ in range(MAX_STEPS_PER_EVENT):
            node = nodes.get(node_id)
            if node is None:
                raise SessionError(f"unknown node {node_id!r}", node=self.current_node)
            if node.when is not None and not node.when.test(ctx):
                journey.append(JourneyEvent(J.NODE_SKIPPED, {"node": node_id, "else": node.else_}))
                if node.else_ is None:
                    raise SessionError("condition is false and the node has no 'else'", node=node_id)
                node_id = node.else_
                continue
            entered = {"node": node_id, "kind": node.kind}
            if node.topic is not None:
                entered["topic"] = node.topic
            journey.append(JourneyEvent(J.NODE_ENTERED, entered))
            nxt: str | None
            if isinstance(node, MenuNode):
                nxt = self._enter_menu(node, out)
            elif isinstance(node, SayNode):
                out.append(node.prompt.play(self.language, ctx))
                nxt = node.next
            elif isinstance(node, GotoNode):
                nxt = node.target
            elif isinstance(node, CollectNode):
                self._enter_collect(node, out)
                return
            elif isinstance(node, ActionNode):
                self._enter_action(node, out)
                return
            elif isinstance(node, OfferNode):
                self._enter_offer(node, out)
                return
            elif isinstance(node, RouteNode):
                self._route(node, out)
                return
            elif isinstance(node, HangupNode):
                self._hangup(node, out)
                return
            elif isinstance(node, BackNode):
                menus = self._menus
                if len(menus) >= 2:
                    menus.pop()
                nxt = menus[-1] if menus else self._entry
            elif isinstance(node, RepeatNode):
                nxt = self._menus[-1] if self._menus else self._entry
            else:  # pragma: no cover - the loader builds only the types above
                raise SessionError(f"unsupported node type {node.kind!r}", node=node_id)
            if nxt is None:
                return
            node_id = nxt
        raise LoopDetected(MAX_STEPS_PER_EVENT, node=node_id)

    def _wait_input(self, node: InputNode) -> None:
        self._node = node
        self._state = _INPUT
        self._noinput = 0
        self._nomatch = 0

    def _enter_menu(self, node: MenuNode, out: list[Action]) -> str | None:
        self._wait_input(node)
        menus = self._menus
        if not menus or menus[-1] != node.id:
            menus.append(node.id)
            if len(menus) > MAX_HISTORY:
                del menus[0]
        if node.conditional:
            ctx = self._ctx
            self._visible = tuple(o for o in node.options if o.when is None or o.when.test(ctx))
            if node.ranked:
                self._visible = ranked(self._visible, ctx)
            if not self._visible:
                self._journey.append(JourneyEvent(J.INPUT_INVALID, {"node": node.id, "reason": "no_visible_options"}))
                return node.input.on_nomatch_exhausted
        else:
            self._visible = node.options
        self._present(node, out, None)
        return None

    def _enter_collect(self, node: CollectNode, out: list[Action]) -> None:
        self._wait_input(node)
        self._present(node, out, None)

    def _enter_action(self, node: ActionNode, out: list[Action]) -> None:
        if node.confirm is None:
            self._request(node, out)
        else:
            self._wait_input(node)
            self._present(node, out, None)

    def _enter_offer(self, node: OfferNode, out: list[Action]) -> None:
        offer = _offer_code(node, self._ctx)
        self._offer = offer
        self._journey.append(JourneyEvent(J.OFFER_PRESENTED, {"node": node.id, "offer": offer}))
        self._wait_input(node)
        self._present(node, out, None)

    def _answer_offer(self, node: OfferNode, answer: str) -> str:
        self._journey.append(JourneyEvent(J.OFFER_ANSWERED, {"node": node.id, "offer": self._offer, "answer": answer}))
        return {"accepted": node.on_accept, "declined": node.on_decline}.get(answer, node.on_ignore)

    def _present(self, node: InputNode, out: list[Action], lead: Prompt | None) -> None:
        """Prompt for ``node`` (after ``lead``, a noinput/nomatch message) and wait."""
        lang = self.language
        ctx = self._ctx
        if lead is not None:
            out.append(lead.play(lang, ctx))
        reprompt = lead is None or node.input.reprompt
        if isinstance(node, MenuNode):
            visible = self._visible
            shape: Any = (lang, tuple(o.index for o in visible)) if node.conditional else lang
            if self._text:
                title = (node.title or node.prompt).play(lang, ctx)
                if reprompt:
                    out.append(title)
                out.append(self._menu_collect(node, shape, title))
                return
            if reprompt:
                plays = node.plays_cache.get(shape)
                if plays is None:
                    prompts = [node.prompt, *(o.prompt for o in visible if o.prompt is not None)]
                    plays = tuple(p.play(lang, ctx) for p in prompts)
                    if all(p.is_static for p in prompts) and len(node.plays_cache) < MAX_SHAPES:
                        node.plays_cache[shape] = plays
                out.extend(plays)
            out.append(self._menu_collect(node, shape, None))
        elif isinstance(node, CollectNode):
            if reprompt:
                out.append(node.prompt.play(lang, ctx))
            out.append(node.collect)
        else:
            question = node.prompt if isinstance(node, OfferNode) else node.confirm
            assert question is not None
            if reprompt:
                out.append(question.play(lang, ctx))
            yes, no = CONFIRM_LABELS.get(lang, CONFIRM_LABELS["en"])
            words = speech.CONFIRM_WORDS.get(lang, speech.CONFIRM_WORDS["en"])
            out.append(
                Collect(
                    max_digits=1,
                    min_digits=1,
                    timeout_s=node.input.timeout_s,
                    interdigit_timeout_s=node.input.interdigit_timeout_s,
                end_of_speech_s=node.input.end_of_speech_s,
                    terminator="",
                    escape_digits="12",
                    masked=False,
                    grammar=(*words[0], *words[1]),
                    options=(MenuChoice("1", yes), MenuChoice("2", no)),
                    node=node.id,
                )
            )

    def _menu_collect(self, node: MenuNode, shape: Any, title: Play | None) -> Collect:
        """The Collect for the visible options, built once per shape and shared via the tree."""
        lang = self.language
        visible = self._visible
        key: Any = shape
        collect = node.collect_cache.get(key)
        if collect is None:
            choices = self._choices(visible)
            grammar: list[str] = []
            for option in visible:
                grammar.extend(option.keywords.get(lang, ()))
            collect = Collect(
                max_digits=1,
                min_digits=1,
                timeout_s=node.input.timeout_s,
                interdigit_timeout_s=node.input.interdigit_timeout_s,
                end_of_speech_s=node.input.end_of_speech_s,
                terminator="",
                escape_digits="".join(c.key for c in choices),
                masked=False,
                grammar=tuple(dict.fromkeys(grammar)),
                options=choices,
                node=node.id,
            )
            if len(node.collect_cache) < MAX_SHAPES:
                node.collect_cache[key] = collect
        return collect

    def _choices(self, visible: tuple[Option, ...]) -> tuple[MenuChoice, ...]:
        lang = self.language
        fallback = self.tree.languages[0]
        seen: dict[str, MenuChoice] = {}
        for option in visible:
            if option.key not in seen:  # the first visible option with a key wins
                label = option.label.get(lang) or option.label.get(fallback, "")
                seen[option.key] = MenuChoice(option.key, label)
        return tuple(seen.values())

    # -- input ------------------------------------------------------------------------

    def _input_node(self) -> InputNode:
        node = self._node
        assert isinstance(node, (MenuNode, CollectNode, ActionNode, OfferNode))
        return node

    def _on_digits(self, digits: str, out: list[Action]) -> str | None:
        if digits == "":
            return self._on_noinput(out)
        node = self._input_node()
        if isinstance(node, MenuNode):
            for option in self._visible:
                if option.key == digits:
                    self._journey.append(JourneyEvent(J.KEY_PRESSED, {"node": node.id, "key": digits}))
                    return option.goto
            return self._on_nomatch(node, digits, out, None)
        if isinstance(node, CollectNode):
            return self._collect_value(node, digits, out)
        if isinstance(node, OfferNode):
            return self._offer_reply(node, digits, out)
        return self._confirm(node, digits, out)

    def _on_speech(self, event: Speech, out: list[Action]) -> str | None:
        node = self._input_node()
        if isinstance(node, CollectNode):
            compact = "".join(event.text.split())
            if compact.isascii() and compact.isdigit():
                return self._collect_value(node, compact, out)
            return self._on_nomatch(node, MASK if node.masked else event.text, out, "not_digits")
        utterance = speech.normalise(event.text)
        if isinstance(node, ActionNode):
            answer = speech.confirm_answer(utterance, self.language)
            return self._confirm(node, answer or utterance, out)
        if isinstance(node, OfferNode):
            return self._offer_reply(node, speech.confirm_answer(utterance, self.language) or utterance, out)
        if event.confidence < node.min_confidence:
            return self._on_nomatch(node, event.text, out, "low_confidence")
        lang = self.language
        visible = self._visible
        chosen: Option | None = None
        for option in visible:
            if option.key == utterance:
                chosen = option
                break
        if chosen is None:
            pairs = [(kw, i) for i, o in enumerate(visible) for kw in o.keywords.get(lang, ())]
            found = speech.match(utterance, pairs)
            if found is None:
                return self._on_nomatch(node, event.text, out, None)
            chosen = visible[found]
        self._journey.append(JourneyEvent(J.SPEECH_MATCHED, {"node": node.id, "text": utterance, "key": chosen.key}))
        return chosen.goto

    def _collect_value(self, node: CollectNode, digits: str, out: list[Action]) -> str | None:
        value = digits
        if node.terminator and value.endswith(node.terminator):
            value = value[: -len(node.terminator)]
        valid = node.min_digits <= len(value) <= node.max_digits
        if valid:
            if node.pattern is not None:
                valid = node.pattern.fullmatch(value) is not None
            else:
                valid = value.isascii() and value.isdigit() or value == ""
        if not valid:
            return self._on_nomatch(node, MASK if node.masked else digits, out, None)
        vars_ = dict(self._ctx["vars"])
        vars_[node.store_as] = value
        self._ctx["vars"] = MappingProxyType(vars_)
        out.append(SetVariable(node.store_as, value, node.masked))
        self._journey.append(
            JourneyEvent(
                J.INPUT_COLLECTED,
                {"node": node.id, "var": node.store_as, "value": MASK if node.masked else value},
            )
        )
        return node.next

    def _confirm(self, node: ActionNode, answer: str, out: list[Action]) -> str | None:
        if answer == "1":
            self._journey.append(JourneyEvent(J.KEY_PRESSED, {"node": node.id, "key": "1", "confirm": True}))
            self._request(node, out)
            return None
        if answer == "2":
            self._journey.append(JourneyEvent(J.KEY_PRESSED, {"node": node.id, "key": "2", "confirm": False}))
            if node.on_cancel is not None:
                return node.on_cancel
            return self._menus[-1] if self._menus else self._entry
        return self._on_nomatch(node, answer, out, None)

    def _offer_reply(self, node: OfferNode, answer: str, out: list[Action]) -> str | None:
        if answer in ("1", "2"):
            self._journey.append(JourneyEvent(J.KEY_PRESSED, {"node": node.id, "key": answer, "confirm": answer == "1"}))
            return self._answer_offer(node, "accepted" if answer == "1" else "declined")
        return self._on_nomatch(node, answer, out, None)

    def _on_noinput(self, out: list[Action]) -> str | None:
        node = self._input_node()
        policy = node.input
        self._noinput += 1
        count = self._noinput
        self._journey.append(JourneyEvent(J.NO_INPUT, {"node": node.id, "count": count}))
        prompts = policy.noinput
        if count >= policy.max_noinput:
            if count <= len(prompts):
                out.append(prompts[count - 1].play(self.language, self._ctx))
            if isinstance(node, OfferNode):
                return self._answer_offer(node, "ignored")
            return policy.on_noinput_exhausted
        self._present(node, out, prompts[min(count, len(prompts)) - 1] if prompts else None)
        return None

    def _on_nomatch(self, node: InputNode, shown: str, out: list[Action], reason: str | None) -> str | None:
        policy = node.input
        self._nomatch += 1
        count = self._nomatch
        data: dict[str, Any] = {"node": node.id, "input": shown, "count": count}
        if reason is not None:
            data["reason"] = reason
        self._journey.append(JourneyEvent(J.INPUT_INVALID, data))
        prompts = policy.nomatch
        if count >= policy.max_nomatch:
            if count <= len(prompts):
                out.append(prompts[count - 1].play(self.language, self._ctx))
            if isinstance(node, OfferNode):
                self._answer_offer(node, "ignored")
            return policy.on_nomatch_exhausted
        self._present(node, out, prompts[min(count, len(prompts)) - 1] if prompts else None)
        return None

    # -- actions and endings ------------------------------------------------------------

    def _request(self, node: ActionNode, out: list[Action]) -> None:
        ctx = self._ctx
        args = {name: template.evaluate(ctx) for name, template in node.args}
        action = RunAction(node.name, MappingProxyType(args), node.masked_args)
        out.append(action)
        self._journey.append(
            JourneyEvent(J.ACTION_REQUESTED, {"node": node.id, "name": node.name, "args": action.safe_args()})
        )
        self._node = node
        self._state = _ACTION

    def _on_result(self, event: ActionResult) -> str:
        node = self._node
        assert isinstance(node, ActionNode)
        if event.name != node.name:
            raise UnexpectedEvent(event, f"waiting for the result of {node.name!r}", node=node.id)
        self._ctx["result"] = MappingProxyType(dict(event.data))
        if event.customer is not None:
            self._ctx["customer"] = MappingProxyType(dict(event.customer))
        self._journey.append(JourneyEvent(J.ACTION_RESULT, {"node": node.id, "name": node.name, "ok": event.ok}))
        self._state = _INPUT  # transient: the next node sets the real state
        return node.on_success if event.ok else node.on_failure

    def _route(self, node: RouteNode, out: list[Action]) -> None:
        if node.prompt is not None:
            out.append(node.prompt.play(self.language, self._ctx))
        reason = node.reason.render(self._ctx)
        out.append(RouteToQueue(node.queue, node.priority, reason))
        self._journey.append(
            JourneyEvent(
                J.ROUTE_CHOSEN,
                {"node": node.id, "queue": node.queue, "priority": node.priority, "reason": reason},
            )
        )
        self._node = node
        self._finish(Outcome("routed", node.id, node.queue, node.priority, reason))

    def _hangup(self, node: HangupNode, out: list[Action]) -> None:
        if node.prompt is not None:
            out.append(node.prompt.play(self.language, self._ctx))
        out.append(HangUp(node.reason))
        self._journey.append(JourneyEvent(J.HANGUP, {"node": node.id, "by": "flow", "reason": node.reason}))
        self._node = node
        self._finish(Outcome("hung_up", node.id, reason=node.reason))

    def _finish(self, outcome: Outcome) -> None:
        self._state = _DONE
        self._outcome = outcome
        self._visible = ()

    def __repr__(self) -> str:
        return (
            f"Session(channel={self.channel!r}, language={self.language!r}, node={self.current_node!r}, "
            f"state={_STATE_NAMES[self._state]!r})"
        )


def _offer_code(node: OfferNode, ctx: Any) -> str:
    """The offer's code for the journey; an offer the CRM data does not name is journaled as the node's id."""
    try:
        code = node.offer.evaluate(ctx)
    except TemplateFailed:
        return node.id
    return str(code)[:64] if code not in (None, "") and isinstance(code, (str, int)) else node.id
