"""The one place that builds adapters from settings and wires them together.

``ivr serve`` runs what :func:`build_controller` returns; the admin commands (validate,
simulate, sounds, report) load through the same functions, so every tool sees the same
files and stores the running controller does.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path

from ivr.agent.access_config import ContextAccess, load_context_access
from ivr.agent.desk import AgentDesk
from ivr.agent.intake import EventIntake, LookupKeys
from ivr.agent.ports import CallControl
from ivr.agent.staff import StaffJourneys
from ivr.agent.wrapup import WrapupCodes, load_wrapup_codes
from ivr.callbacks.actions import CallbackActions
from ivr.callbacks.book import CallbackBook
from ivr.callbacks.policy import CallbackPolicy, load_callback_policy
from ivr.callbacks.record import Callback
from ivr.callbacks.service import CallbackService
from ivr.callbacks.wait import QueueFacts, QueueWait
from ivr.crm.action_catalog import ACTION_ARGS, action_catalog
from ivr.crm.actions import CrmActions
from ivr.crm.breaker import CircuitBreaker
from ivr.crm.declared_config import DeclaredActions, load_declared_actions
from ivr.crm.declared_http import DeclaredHttpActions
from ivr.crm.directory_ports import OpenDirectory
from ivr.crm.identify import AccountIdentifier
from ivr.crm.lookup import CrmLookup
from ivr.crm.names import DirectoryNames
from ivr.crm.ports import ActionService, CallerLookup
from ivr.errors import ConfigError
from ivr.exposure import Secret, controller_secrets
from ivr.flow.loader import load_tree
from ivr.flow.model import Tree
from ivr.flow.validate import KnownActions
from ivr.journey.events import AGENT_CONNECTED
from ivr.journey.feed import JourneyFeed
from ivr.journey.kpi import KpiAccumulator
from ivr.journey.metered import MeteredJourney
from ivr.journey.ports import JourneyStore, StampedEvent
from ivr.journey.spool import SpooledJourney, SpoolStats
from ivr.journey.spool_file import SpoolFile
from ivr.journey.tokens import TokenService
from ivr.live.reload import Reloader
from ivr.live.routing import RoutingStore
from ivr.live.trees import TreeStore
from ivr.routing.hours import BusinessHours
from ivr.routing.rules import RoutingConfig, load_routing, queues_from_conf
from ivr.routing.service import RoutingService
from ivr.runtime.kannel import controller_url
from ivr.settings import Settings
from ivr.sms import KannelSender, SmsService, load_sms_config
from ivr.sms.config import SmsConfig, gateway_secrets
from ivr.sms.notify import notify
from ivr.sms.outbox import SmsOutbox
from ivr.sms.service import SmsJourney
from ivr.sms.shared_ratelimit import SharedSlidingWindow
from ivr.ussd import UssdGateway, load_ussd_config
from ivr.voice.agent_events import AgentEventRecorder
from ivr.voice.controller import CallController
from ivr.voice.engine_flow import EngineFlow
from ivr.voice.prompt_files import PromptFiles
from ivr.voice.selftest import agi_selftest
from ivr.voice.speaker import Speaker
from ivr.voice.speech.model_path import ModelNotFound, resolve_model
from ivr.voice.speech.vosk_client import VoskClient

log = logging.getLogger(__name__)
CORE_SOUNDS = "usr/share/asterisk/sounds"
DAY_S = 86400


def menu_paths(settings: Settings) -> tuple[Path, Path]:
    return settings.path(settings.menus.dir), settings.path(settings.menus.numbers)


def edited_files(settings: Settings) -> list[Path]:
    """What an admin edits and a reload reads again: the menus, the number map, the routing rules."""
    return [*menu_paths(settings), settings.path(settings.routing.rules)]


def core_sound_dirs(settings: Settings) -> list[Path]:
    """Asterisk's own sounds, so a menu may name `beep` or `vm-goodbye` (local root if built)."""
    candidate = settings.asterisk.root_path() / CORE_SOUNDS
    return [candidate] if candidate.is_dir() else []


def load_menu_tree(settings: Settings, menus: Path | None = None, numbers: Path | None = None,
                   known: KnownActions | None = None) -> Tree:
    """The menus; ``known``: the actions they may call (default: built-in and declared, read now)."""
    default_menus, default_numbers = menu_paths(settings)
    return load_tree(menus or default_menus, numbers=numbers or default_numbers,
                     sound_dirs=[settings.home / "sounds"], extra_sound_dirs=core_sound_dirs(settings),
                     known_actions=known if known is not None else known_actions(settings))


def load_actions(settings: Settings, *, check_secrets: bool = False) -> DeclaredActions:
    """config/actions.yaml ([integrations] actions): the actions backed by the operator's HTTP services.

    ``check_secrets``: a secret the environment does not hold is an error (``ivr serve``).
    """
    return load_declared_actions(settings.path(settings.integrations.actions), reserved=frozenset(ACTION_ARGS),
                                 env=os.environ, check_secrets=check_secrets)


def known_actions(settings: Settings, declared: DeclaredActions | None = None) -> KnownActions:
    """Every action a menu or an SMS command may name, with its arguments."""
    return action_catalog(declared if declared is not None else load_actions(settings))


def known_queues(settings: Settings) -> frozenset[str]:
    return queues_from_conf(settings.home / "config" / "asterisk" / "queues.conf")


def wrapup_path(settings: Settings) -> Path:
    return settings.home / "config" / "wrapup.yaml"


def load_routing_config(settings: Settings) -> RoutingConfig:
    return load_routing(settings.path(settings.routing.rules), known_queues(settings))


async def open_journey(settings: Settings) -> JourneyStore:
    backend = settings.journey.backend
    if backend == "sqlite":
        from ivr.journey.sqlite_store import SqliteJourneyStore

        path = settings.path(settings.journey.sqlite_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        return await SqliteJourneyStore.open(path)
    if backend == "postgres":
        from ivr.journey.pg_store import PgJourneyStore

        if not settings.journey.postgres_dsn:
            raise ConfigError("[journey] backend = postgres needs postgres_dsn", hint="set IVR_JOURNEY_POSTGRES_DSN")
        return await PgJourneyStore.open(settings.journey.postgres_dsn)
    raise ConfigError(f"unknown [journey] backend {backend!r}", hint="use sqlite or postgres")


def open_directory(settings: Settings) -> OpenDirectory:
    backend = settings.crm.backend
    if backend == "sqlite":
        from ivr.crm.seed import seed_demo
        from ivr.crm.sqlite_directory import SqliteDirectory

        path = settings.path(settings.crm.sqlite_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if settings.crm.seed_demo and not path.exists():
            seed_demo(path)
            log.info("seeded the demo customers into %s", path)
        return SqliteDirectory(path)
    if backend == "http":
        from ivr.crm.http_config import load_http_config
        from ivr.crm.http_directory import HttpDirectory

        return HttpDirectory(load_http_config(settings.path(settings.crm.http_config)))
    raise ConfigError(f"unknown [crm] backend {backend!r}", hint="use sqlite or http")


async def seed_demo_journey(journey: JourneyStore, settings: Settings) -> None:
    """The demo's returning caller was served by agent1 four days ago (the last-agent rule)."""
    if not (settings.crm.backend == "sqlite" and settings.crm.seed_demo):
        return
    key = "C-125570"
    if await journey.recent(key, limit=1):
        return
    at = time.time() - 4 * DAY_S
    await journey.append(key, [StampedEvent(at, "voice", "demo-earlier-call", AGENT_CONNECTED,
                                            {"agent": "agent1", "queue": "support", "hold_s": 12})])


@dataclass(frozen=True)
class SpeechSetup:
    """Spoken input is on: the recogniser the calls use, and the model when we run it ourselves."""

    url: str
    model: Path | None  # None: an external Vosk server ([speech] server) is used
    languages: frozenset[str]


def speech_setup(settings: Settings) -> SpeechSetup | None:
    """From [speech]: None when it is off, or its model is missing (logged: keys still work)."""
    s = settings.speech
    if s.server:
        return SpeechSetup(s.server, None, s.language_set)
    try:
        model = resolve_model(s.model, settings.home)
    except ModelNotFound as exc:
        log.warning("spoken input is off: %s", exc)
        return None
    return SpeechSetup(f"ws://{s.host}:{s.port}", model, s.language_set) if model is not None else None


def speech_warnings(settings: Settings, tree: Tree) -> list[str]:
    """Spoken keywords the running controller will not listen for (`ivr validate` warns; keys still work)."""
    from ivr.flow.model import MenuNode

    spoken: dict[str, int] = {}
    for node in tree.nodes.values():
        if isinstance(node, MenuNode):
            for option in node.options:
                for language, words in option.keywords.items():
                    if words:
                        spoken[language] = spoken.get(language, 0) + 1
    if not spoken:
        return []
    setup = speech_setup(settings)
    if setup is None:
        return [f"warning: {sum(spoken.values())} menu options list spoken keywords, but spoken input is off "
                f"([speech] model = {settings.speech.model!r} is empty or not installed): callers get keys only"]
    return [f"warning: {count} menu options list {language!r} keywords, but the speech model understands "
            f"{', '.join(sorted(setup.languages)) or 'no language'} ([speech] languages): those menus take keys only"
            for language, count in sorted(spoken.items()) if language not in setup.languages]


@dataclass(frozen=True)
class ContextApi:
    """The context service for other systems and staff: who may use it, the intake, the staff reads."""

    access: ContextAccess
    intake: EventIntake
    staff: StaffJourneys


def build_context_api(settings: Settings, journey: JourneyStore, lookup: CallerLookup,
                      names: DirectoryNames | None) -> ContextApi:
    """config/context.yaml's clients and staff over the journey; keys as every channel keys journeys."""
    keys = LookupKeys(lookup)
    return ContextApi(load_context_access(settings.path(settings.integrations.context), os.environ),
                      EventIntake(journey, keys, default_region=settings.crm.default_region),
                      StaffJourneys(journey, keys, names=names, window_s=settings.journey.context_days * DAY_S,
                                    default_region=settings.crm.default_region))


@dataclass
class Controller:
    trees: TreeStore
    reloader: Reloader
    call_handler: CallController
    selftest_handler: CallController
    journey: JourneyStore
    tokens: TokenService
    agent_events: AgentEventRecorder
    lookup: CrmLookup
    routing: RoutingService
    kpis: KpiAccumulator
    sms: SmsService
    ussd: UssdGateway
    names: DirectoryNames
    feed: JourneyFeed
    wrapup: WrapupCodes
    queues: frozenset[str]
    callbacks: CallbackService
    callback_policy: CallbackPolicy
    flow: EngineFlow
    sms_confirmations: SmsCallbackTexts
    context_api: ContextApi | None = None
    stack: AsyncExitStack = field(default_factory=AsyncExitStack)
    speech: SpeechSetup | None = None
    spool: SpoolStats = field(default_factory=SpoolStats)  # the journey spool's counters, for /metrics

    def use_queues(self, snapshot: Callable[[str], Mapping[str, QueueWait]]) -> None:
        """Every channel's sessions start with the queues' place and wait from ``snapshot``
        (app_queue, polled over AMI where ``ivr serve`` has it; by the call's Asterisk)."""
        facts = QueueFacts(snapshot, lambda: self.callback_policy, lambda: self.routing_config().default_queue)
        for callers in (self.flow.callers, self.sms.callers, self.ussd.callers):
            callers.queue_facts = facts

    def routing_config(self) -> RoutingConfig:
        return self.reloader.routing() if self.reloader.routing is not None else RoutingConfig()

    def callbacks_open(self, queue: str, now: float) -> bool:
        """Whether ``queue``'s callbacks may be dialled at ``now`` (callbacks.yaml ``hours``)."""
        hours = self.callback_policy.hours(queue, self.routing_config().hours)
        return hours.is_open(dt.datetime.fromtimestamp(now, dt.UTC))

    def agent_desk(self, control: CallControl | None) -> AgentDesk:
        """The agents' write-back; ``control`` is the PBX side (AMI), built where AMI is."""
        return AgentDesk(self.journey, self.wrapup, control=control, queues=self.queues)

    async def close(self) -> None:
        await self.agent_events.drain()
        await self.stack.aclose()


async def build_controller(settings: Settings) -> Controller:
    stack = AsyncExitStack()
    try:
        declared = load_actions(settings, check_secrets=True)
        catalog = known_actions(settings, declared)
        trees = TreeStore(lambda: load_menu_tree(settings, known=catalog))
        routing_rules = RoutingStore(lambda: load_routing_config(settings))
        # An outage of the store costs no call and no event: appends wait in the spool.
        store = SpooledJourney(await open_journey(settings),
                               file=SpoolFile(settings.path(settings.journey.spool_dir)))
        stack.push_async_callback(store.close)
        store.recover()  # what a controller killed during an outage left, before anything new
        await seed_demo_journey(store, settings)
        kpis = KpiAccumulator(fcr_window_s=settings.kpi.fcr_window_s, clock=time.time)
        feed = JourneyFeed()
        journey = MeteredJourney(store, kpis, feed)  # /metrics and the open agent pages see what was stored
        directory = open_directory(settings)
        stack.push_async_callback(directory.aclose)
        breaker = CircuitBreaker()
        budget = settings.crm.budget_ms / 1000
        lookup = CrmLookup(directory, budget_s=budget, breaker=breaker, default_region=settings.crm.default_region)
        # The actions declared in config/actions.yaml first, the CRM's built-in ones behind them.
        crm_actions = DeclaredHttpActions(declared, CrmActions(directory, budget_s=budget, breaker=breaker,
                                                               on_change=lookup.forget), env=os.environ)
        stack.push_async_callback(crm_actions.aclose)
        # A call routed while the store is away still hands its agent a token: the claim waits in the spool.
        tokens = TokenService(settings.tokens.secret.encode(), journey, ttl_s=settings.tokens.ttl, spool=store)
        routing = RoutingService(routing_rules, journey)
        callback_policy = load_callback_policy(callbacks_path(settings), known_queues(settings))
        callbacks = CallbackService(CallbackBook(journey), lambda: callback_policy,
                                    opens_at=lambda queue, now: _opening(
                                        callback_policy.hours(queue, routing_rules().hours), now))

        def actions_for(channel: str) -> CallbackActions:
            return CallbackActions(crm_actions, callbacks, routing, channel=channel,
                                   default_queue=lambda: routing_rules().default_queue,
                                   timezone=lambda: routing_rules().hours.timezone)

        actions = actions_for("voice")
        agent_events = AgentEventRecorder(journey)
        speaker = Speaker(PromptFiles(settings.home / "sounds", settings.prompts.asterisk_dir))
        speech = speech_setup(settings)
        flow = EngineFlow(trees, speaker, actions, journey, lookup=lookup, router=routing, tokens=tokens,
                          agent_events=agent_events, identifier=AccountIdentifier(directory, budget_s=max(budget, 2.0)),
                          journey_window_s=settings.journey.context_days * DAY_S,
                          recogniser=VoskClient(speech.url) if speech is not None else None,
                          speech_languages=speech.languages if speech is not None else frozenset())
        # On PostgreSQL several gateway processes serve one subscriber: they share the rate limits.
        shared_limits = settings.journey.backend == "postgres"
        sms, sender = build_sms_service(settings, lookup, actions_for("sms"), journey,
                                        shared_limits=journey if shared_limits else None, known=catalog)
        stack.push_async_callback(sender.close)
        ussd = UssdGateway(load_ussd_config(settings.home / "config" / "ussd.yaml"), trees, lookup,
                           actions_for("ussd"), journey, shared_limits=shared_limits)
        confirmations = SmsCallbackTexts(sms, lambda: routing_rules().hours.timezone)
        for wrapped in (actions, sms.actions, ussd.actions):
            if isinstance(wrapped, CallbackActions) and wrapped.channel != "sms":  # an SMS request's reply confirms it
                wrapped.confirmations = confirmations
        names = DirectoryNames(directory)
        return Controller(trees, Reloader(trees, routing_rules), CallController(flow), CallController(agi_selftest),
                          journey, tokens, agent_events, lookup, routing, kpis, sms, ussd, names,
                          feed, load_wrapup_codes(wrapup_path(settings), known_queues(settings)),
                          known_queues(settings), callbacks, callback_policy, flow, confirmations,
                          build_context_api(settings, journey, lookup, names), stack, speech, store.stats)
    except BaseException:
        await stack.aclose()
        raise


def callbacks_path(settings: Settings) -> Path:
    return settings.path(settings.routing.callbacks)


def _opening(hours: BusinessHours, now: float) -> float | None:
    """When ``hours`` next open (epoch), None while they are open."""
    opening = hours.next_opening(dt.datetime.fromtimestamp(now, dt.UTC))
    return None if opening is None else opening.timestamp()


class SmsCallbackTexts:
    """Callback confirmations by SMS (config/sms.yaml notifications ``callback_booked``,
    ``callback_missed``), through the same notify path as ``ivr notify``."""

    def __init__(self, sms: SmsService, timezone: Callable[[], str]) -> None:
        self.sms = sms
        self.timezone = timezone

    async def booked(self, callback: Callback, opens_at: float | None) -> None:
        when = ""
        if opens_at is not None:
            from zoneinfo import ZoneInfo
            when = dt.datetime.fromtimestamp(opens_at, ZoneInfo(self.timezone())).strftime("%H:%M")
        await self._send(callback, "callback_booked", when=when)

    async def missed(self, callback: Callback) -> None:
        await self._send(callback, "callback_missed")

    async def _send(self, callback: Callback, template: str, **variables: str) -> None:
        if template not in self.sms.config.notifications:
            log.info("no %s notification in sms.yaml: callback %s not confirmed by SMS", template, callback.id)
            return
        await notify(self.sms, callback.number, template, **variables)


def exposure_secrets(settings: Settings) -> list[Secret]:
    """Every secret ``ivr serve`` holds, for :func:`ivr.exposure.refuse_weak_secrets`: the settings'
    and the SMS gateway's (when config/sms.yaml does not load, starting fails on it anyway)."""
    found = controller_secrets(settings)
    try:
        sms = load_sms_settings(settings)
    except Exception:  # noqa: BLE001 - build_controller reports a broken SMS file in its own words
        return found
    return found + gateway_secrets(sms.kannel, sms.security)


def sms_config_path(settings: Settings) -> Path:
    return settings.home / "config" / "sms.yaml"


def load_sms_settings(settings: Settings, known: KnownActions | None = None) -> SmsConfig:
    """config/sms.yaml with its secrets from the environment (IVR_SMS_*), as every command reads it;
    ``known``: the actions its commands may run (default: built-in and declared, read now)."""
    return load_sms_config(sms_config_path(settings), env=os.environ,
                           known_actions=known if known is not None else known_actions(settings))


def build_sms_service(settings: Settings, lookup: CallerLookup, actions: ActionService,
                      journey: SmsJourney, *, shared_limits: JourneyStore | None = None,
                      known: KnownActions | None = None) -> tuple[SmsService, SmsOutbox]:
    """SMS commands on the same CRM and journey; replies and notifications go out via smsbox (the sender,
    returned too, is closed by the caller). ``shared_limits``: the store whose kv table holds one
    rate-limit window per number for every controller (else each process counts its own)."""
    config = load_sms_settings(settings, known)
    limits = config.limits
    limiter = SharedSlidingWindow(limits.rate_count, limits.rate_window_s, shared_limits, time.time) \
        if shared_limits is not None else None
    # What smsbox could not receive (it restarts) waits in the outbox and goes when it answers.
    sender = SmsOutbox(KannelSender.from_config(config.kannel, controller_url(settings, config.kannel),
                                                dlr_secret=config.security.hmac_secret))
    return SmsService(config, lookup, actions, journey, sender=sender,
                      default_region=settings.crm.default_region, limiter=limiter), sender
