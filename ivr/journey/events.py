"""Every kind of journey event, declared once: its name, its fields, who emits it, what is redacted.

The journey is read by the agent's screen pop, the context API, the KPIs, ``/metrics`` and
``ivr report``; it is written by the engine and by every channel. When a writer and a
reader spell an event name differently, the agent silently loses a step and the KPIs
silently disagree, so every module takes its names from here and
``tests/unit/journey/test_event_registry.py`` fails when a module writes or matches a name
this registry does not hold. Stores check nothing at run time: the test is the guard.

The engine's own kinds (``node_entered`` ... ``hangup``) are defined in
:mod:`ivr.flow.journey`, because the engine sits below this package and knows no channel;
they are re-exported here with the rest, so readers import from one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from ivr.flow import journey as engine

VOICE = "voice"
USSD = "ussd"
SMS = "sms"
CHANNELS = (VOICE, USSD, SMS)
_ALL = frozenset(CHANNELS)
# Channels other systems write through the context API (POST /context/events): the web site,
# the mobile app, e-mail handling, chat and messengers, branches and the back office.
WEB = "web"
APP = "app"
EMAIL = "email"
CHAT = "chat"
OFFICE = "office"
EXTERNAL_CHANNELS = (WEB, APP, EMAIL, CHAT, OFFICE)
_EXTERNAL = frozenset(EXTERNAL_CHANNELS)
# Staff reading journeys (the audit trail): stored beside journeys, never counted as an interaction.
STAFF = "staff"


@dataclass(frozen=True, slots=True)
class EventKind:
    """One kind of journey event.

    ``fields`` are the data keys a writer may set (readers may rely on no others);
    ``redacted`` names what never reaches the store in the clear: the value the
    :mod:`ivr.journey.redact` guard drops or the engine masks before it is written.
    """

    name: str
    channels: frozenset[str]
    fields: tuple[str, ...]
    meaning: str
    redacted: tuple[str, ...] = ()


class UnknownEventKind(KeyError):
    """A name that is not a journey event kind: a typo, or a kind added without declaring it here."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"{self.name!r} is not a journey event kind; declare it in ivr/journey/events.py"


# -- the engine's (every channel runs the same menus) --------------------------------------
NODE_ENTERED = engine.NODE_ENTERED
NODE_SKIPPED = engine.NODE_SKIPPED
KEY_PRESSED = engine.KEY_PRESSED
SPEECH_MATCHED = engine.SPEECH_MATCHED
INPUT_COLLECTED = engine.INPUT_COLLECTED
INPUT_INVALID = engine.INPUT_INVALID
NO_INPUT = engine.NO_INPUT
ACTION_REQUESTED = engine.ACTION_REQUESTED
ACTION_RESULT = engine.ACTION_RESULT
ROUTE_CHOSEN = engine.ROUTE_CHOSEN
HANGUP = engine.HANGUP
OFFER_PRESENTED = engine.OFFER_PRESENTED
OFFER_ANSWERED = engine.OFFER_ANSWERED

# -- the caller-session start (ivr/crm/session_start.py) -----------------------------------
CALLER_IDENTIFIED = "caller_identified"
CRM_UNAVAILABLE = "crm_unavailable"

# -- voice ----------------------------------------------------------------------------------
ROUTE_DECIDED = "route_decided"
AGENT_CONNECTED = "agent_connected"
QUEUE_ABANDONED = "queue_abandoned"
CALL_LOST = "call_lost"
CALL_STARTED = "call_started"
SPEECH_HEARD = "speech_heard"
SPEECH_UNAVAILABLE = "speech_unavailable"
CALL_READOPTED = "call_readopted"

# -- the agents' side (AMI queue, transfer and conference events; the agent API) ----------------
AGENT_COMPLETED = "agent_completed"
CALL_TRANSFERRED = "call_transferred"
CONSULT_STARTED = "consult_started"
PARTICIPANT_JOINED = "participant_joined"
PARTICIPANT_LEFT = "participant_left"
AGENT_NOTE = "agent_note"

# -- callbacks (any channel asks; the voice side dials) -----------------------------------------
CALLBACK_REQUESTED = "callback_requested"
CALLBACK_ATTEMPTED = "callback_attempted"
CALLBACK_CONNECTED = "callback_connected"
CALLBACK_FINISHED = "callback_finished"

# -- USSD -----------------------------------------------------------------------------------
USSD_REQUEST = "ussd_request"
USSD_SCREEN = "ussd_screen"
USSD_RESUMED = "ussd_resumed"
USSD_ENDED = "ussd_ended"

# -- SMS ------------------------------------------------------------------------------------
SMS_RECEIVED = "sms_received"
SMS_SENT = "sms_sent"
SMS_DELIVERY = "sms_delivery"
SMS_OPT_OUT = "sms_opt_out"
SMS_OPT_IN = "sms_opt_in"

# -- other systems, through the context API ----------------------------------------------------
PAGE_VIEWED = "page_viewed"
FORM_SUBMITTED = "form_submitted"
ORDER_PLACED = "order_placed"
PAYMENT_MADE = "payment_made"
EMAIL_RECEIVED = "email_received"
EMAIL_SENT = "email_sent"
CHAT_MESSAGE = "chat_message"
TICKET_OPENED = "ticket_opened"
TICKET_UPDATED = "ticket_updated"
TICKET_RESOLVED = "ticket_resolved"
VISIT_MADE = "visit_made"
#: What every event from another system carries (the API fills client and event_id).
EXTERNAL_FIELDS = ("text", "link", "topic", "client", "event_id")

# -- staff -----------------------------------------------------------------------------------
JOURNEY_READ = "journey_read"


def _kinds(*kinds: EventKind) -> Mapping[str, EventKind]:
    return MappingProxyType({k.name: k for k in kinds})


REGISTRY: Mapping[str, EventKind] = _kinds(
    EventKind(NODE_ENTERED, _ALL, ("node", "kind", "topic"), "the caller reached a menu node (topic: what it is about)"),
    EventKind(NODE_SKIPPED, _ALL, ("node", "else"), "a node's `when` was false; the flow went to `else`"),
    EventKind(KEY_PRESSED, _ALL, ("node", "key", "confirm"), "a menu choice, or a yes/no to a confirmation"),
    EventKind(SPEECH_MATCHED, _ALL, ("node", "text", "key"), "a spoken or typed phrase picked an option"),
    EventKind(INPUT_COLLECTED, _ALL, ("node", "var", "value"), "a value was entered",
              redacted=("value of a masked input (stored as ***)",)),
    EventKind(INPUT_INVALID, _ALL, ("node", "input", "reason", "count"), "an answer not understood",
              redacted=("input of a masked field (stored as ***)",)),
    EventKind(NO_INPUT, _ALL, ("node", "count"), "the caller said and pressed nothing"),
    EventKind(ACTION_REQUESTED, _ALL, ("node", "name", "args"), "a named CRM action was asked for",
              redacted=("args.<secret names>",)),
    EventKind(ACTION_RESULT, _ALL, ("node", "name", "ok", "args"), "a named CRM action finished",
              redacted=("args.<secret names>",)),
    EventKind(ROUTE_CHOSEN, _ALL, ("node", "queue", "priority", "reason"), "the menu asked for a person"),
    EventKind(HANGUP, _ALL, ("node", "by", "reason"), "the interaction ended (by the caller or by the flow)"),
    EventKind(OFFER_PRESENTED, _ALL, ("node", "offer"), "an offer from the CRM was read out or shown"),
    EventKind(OFFER_ANSWERED, _ALL, ("node", "offer", "answer"), "the offer was accepted, declined or ignored"),
    EventKind(CALLER_IDENTIFIED, _ALL, ("by", "customer", "crm_ms", "number"),
              "the CRM recognised the caller (by caller ID or account and PIN)", redacted=("pin",)),
    EventKind(CRM_UNAVAILABLE, _ALL, ("error", "crm_ms"), "the CRM did not answer: the generic menu was used"),
    EventKind(ROUTE_DECIDED, frozenset({VOICE}),
              ("kind", "queue", "priority", "reason", "rules", "agent_first", "transfer"),
              "the routing rules' decision, with its reason (transfer: for a call an agent transferred)"),
    EventKind(AGENT_CONNECTED, frozenset({VOICE}), ("agent", "queue", "hold_s"), "an agent answered"),
    EventKind(QUEUE_ABANDONED, frozenset({VOICE}), ("queue", "hold_s"), "the caller gave up waiting"),
    EventKind(CALL_LOST, frozenset({VOICE}), ("queue", "reason"),
              "a routed call ended unseen: Asterisk restarted (or AMI was away) and no longer has it"),
    EventKind(CALL_STARTED, frozenset({VOICE}), ("driver", "dnis"), "a call reached the controller (agi or ari)"),
    EventKind(SPEECH_HEARD, frozenset({VOICE}), ("node", "text", "confidence", "from_partial", "barge_in", "decided_ms"),
              "what the recogniser heard the caller say, how sure it was, and ms from the end of speech"),
    EventKind(SPEECH_UNAVAILABLE, frozenset({VOICE}), ("node", "reason"),
              "spoken input was not possible (recogniser down, repeated low confidence): keys offered"),
    EventKind(CALL_READOPTED, frozenset({VOICE}), ("outcome", "reason"),
              "the ARI link came back: the call was resumed, ended, or sent to the fallback queue"),
    EventKind(AGENT_COMPLETED, frozenset({VOICE}), ("agent", "queue", "hold_s", "talk_s", "reason"),
              "an agent's part of the call ended (the queue's AgentComplete: talk time is handle time)"),
    EventKind(CALL_TRANSFERRED, frozenset({VOICE}), ("by", "to", "to_kind", "mode", "reason", "via"),
              "an agent sent the caller on: to a queue, an agent or an outside number; blind or attended"),
    EventKind(CONSULT_STARTED, frozenset({VOICE}), ("by", "to", "room"),
              "an agent put the caller on hold to consult an expert"),
    EventKind(PARTICIPANT_JOINED, frozenset({VOICE}), ("who", "role", "room", "with"),
              "someone joined the caller's conference or the agents' consultation"),
    EventKind(PARTICIPANT_LEFT, frozenset({VOICE}), ("who", "role", "room"), "someone left the conference"),
    EventKind(AGENT_NOTE, _ALL, ("agent", "text", "wrapup", "queue"),
              "the agent's own words and wrap-up code for the interaction",
              redacted=("card numbers and secrets in the text",)),
    EventKind(CALLBACK_REQUESTED, _ALL, ("id", "queue", "priority", "number", "position", "estimated_wait_s",
                                         "due_at", "reason"),
              "the customer asked to be called back; their place is kept in the queue"),
    EventKind(CALLBACK_ATTEMPTED, _ALL, ("id", "attempt", "outcome", "agent"),
              "a callback rang the customer (outcome: ANSWER, NOANSWER, BUSY, ...)"),
    EventKind(CALLBACK_CONNECTED, _ALL, ("id", "agent", "requested_at", "waited_s", "via"),
              "the customer called back is talking to an agent"),
    EventKind(CALLBACK_FINISHED, _ALL, ("id", "outcome", "attempts", "by"),
              "a callback ended: completed, failed (retries spent), cancelled or abandoned"),
    EventKind(USSD_REQUEST, frozenset({USSD}), ("code", "service", "input"),
              "one request from the aggregator"),
    EventKind(USSD_SCREEN, frozenset({USSD}), ("title", "text", "node", "end"), "the screen the subscriber saw"),
    EventKind(USSD_RESUMED, frozenset({USSD}), ("from", "node"), "a broken-off session was continued"),
    EventKind(USSD_ENDED, frozenset({USSD}), ("status", "code", "node", "screens", "duration_s", "error"),
              "the aggregator's end-of-session notification"),
    EventKind(SMS_RECEIVED, frozenset({SMS}), ("text", "command", "language", "to"), "a text from the subscriber",
              redacted=("text after 320 characters",)),
    EventKind(SMS_SENT, frozenset({SMS}), ("text", "template", "segments", "encoding", "queued"),
              "a text to the subscriber (queued: waiting in the outbox for smsbox)"),
    EventKind(SMS_DELIVERY, frozenset({SMS}), ("status", "code", "reason"), "the SMSC's delivery report"),
    EventKind(SMS_OPT_OUT, frozenset({SMS}), (), "the subscriber texted STOP: no more notifications"),
    EventKind(SMS_OPT_IN, frozenset({SMS}), (), "the subscriber texted START: notifications again"),
    EventKind(PAGE_VIEWED, frozenset({WEB, APP}), EXTERNAL_FIELDS, "the customer opened a page of the site or a screen of the app"),
    EventKind(FORM_SUBMITTED, frozenset({WEB, APP}), EXTERNAL_FIELDS, "the customer sent a form (a request, a complaint)"),
    EventKind(ORDER_PLACED, frozenset({WEB, APP, OFFICE}), EXTERNAL_FIELDS, "the customer ordered something"),
    EventKind(PAYMENT_MADE, frozenset({WEB, APP, OFFICE}), EXTERNAL_FIELDS, "the customer paid"),
    EventKind(EMAIL_RECEIVED, frozenset({EMAIL}), EXTERNAL_FIELDS, "an e-mail from the customer"),
    EventKind(EMAIL_SENT, frozenset({EMAIL}), EXTERNAL_FIELDS, "an e-mail to the customer"),
    EventKind(CHAT_MESSAGE, frozenset({CHAT, APP}), EXTERNAL_FIELDS, "a chat or messenger message"),
    EventKind(TICKET_OPENED, _EXTERNAL, EXTERNAL_FIELDS, "the help desk opened a ticket for the customer"),
    EventKind(TICKET_UPDATED, _EXTERNAL, EXTERNAL_FIELDS, "the help desk or back office worked on the ticket"),
    EventKind(TICKET_RESOLVED, _EXTERNAL, EXTERNAL_FIELDS, "the ticket was resolved"),
    EventKind(VISIT_MADE, frozenset({OFFICE}), EXTERNAL_FIELDS, "the customer came to a branch"),
    EventKind(JOURNEY_READ, frozenset({STAFF}), ("staff", "role", "user", "customer", "by", "outcome", "events"),
              "a member of staff read (or was refused) a customer's journey: the audit trail"),
)


def external_kinds(channel: str) -> frozenset[str]:
    """The event kinds another system may write on ``channel`` through the context API."""
    return frozenset(k.name for k in REGISTRY.values()
                     if channel in k.channels and k.fields == EXTERNAL_FIELDS)


def kind(name: str) -> EventKind:
    """The declaration of ``name``; :class:`UnknownEventKind` for a name that is not one."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise UnknownEventKind(name) from None


def names() -> frozenset[str]:
    return frozenset(REGISTRY)
