"""ivr.flow: menu model, the menu language's parser and validation, the pure engine.

The engine is goflow's lesson: it never touches a channel. A host feeds a
:class:`Session` events and performs the actions it returns; one tree serves
voice, USSD and SMS. Trees are validated completely at load time.
"""

from __future__ import annotations

from ivr.config.problems import Problem
from ivr.flow.actions import (
    Action,
    Collect,
    HangUp,
    MenuChoice,
    Play,
    PromptPart,
    RouteToQueue,
    RunAction,
    SetVariable,
    Sound,
    Text,
    Typed,
)
from ivr.flow.context import CallerContext
from ivr.flow.engine import Outcome, Session
from ivr.flow.errors import (
    FlowError,
    LoopDetected,
    NoEntryPoint,
    PromptValueError,
    SessionError,
    SessionFinished,
    TemplateFailed,
    TreeInvalid,
    UnexpectedEvent,
    UnknownChannel,
)
from ivr.flow.events import ActionResult, Digits, Event, Hangup, Speech, Started, Timeout
from ivr.flow.journey import JourneyEvent
from ivr.flow.loader import load_tree
from ivr.flow.model import Tree
from ivr.flow.render_text import render_screen
from ivr.flow.validate import validate

__all__ = [
    "Action",
    "ActionResult",
    "CallerContext",
    "Collect",
    "Digits",
    "Event",
    "FlowError",
    "HangUp",
    "Hangup",
    "JourneyEvent",
    "LoopDetected",
    "MenuChoice",
    "NoEntryPoint",
    "Outcome",
    "Play",
    "Problem",
    "PromptPart",
    "PromptValueError",
    "RouteToQueue",
    "RunAction",
    "Session",
    "SessionError",
    "SessionFinished",
    "SetVariable",
    "Sound",
    "Speech",
    "Started",
    "TemplateFailed",
    "Text",
    "Timeout",
    "Tree",
    "TreeInvalid",
    "Typed",
    "UnexpectedEvent",
    "UnknownChannel",
    "load_tree",
    "render_screen",
    "validate",
]
