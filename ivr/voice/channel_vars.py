"""Every channel variable shared between the dialplan (``dialplan/*.conf``) and the controller.

One module, so the dialplan and the code cannot drift apart silently: a test reads the
dialplan and checks that each ``IVR_*`` name it uses is declared here.
"""

from __future__ import annotations

# Set by the dialplan before the controller runs
DNIS = "IVR_DNIS"                  # the dialled number, inherited by every leg of the call
CALL_TAG = "IVR_CALL_TAG"          # correlation id from the X-IVR-Call-Tag SIP header (optional)
FALLBACK_QUEUE = "IVR_FALLBACK_QUEUE"  # global: where calls go when the controller fails
AGI_URLS = "IVR_AGI_URLS"          # global: agi://host:port of every controller, |-separated
AGI_PEER = "IVR_AGI_PEER"          # the controller this call was offered to last (dialplan [ivr-agi])
ARI_APPS = "IVR_ARI_APPS"          # global: every controller's Stasis application, |-separated
ARI_APP = "IVR_ARI_APP"            # the application this ARI call was offered to last
AGI_SCRIPT = "IVR_AGI_SCRIPT"      # the controller route: "call" (menus, default) or "selftest" (both drivers)
DRIVER = "IVR_DRIVER"              # "ari" sends the call to the Stasis application; else FastAGI
DRIVER_STATUS = "IVR_DRIVER_STATUS"  # AGISTATUS, or STASISSTATUS as ari-<status>: why there is no decision

# The controller's decision, read by the dialplan after AGI() returns
RESULT = "IVR_RESULT"              # "queue" | "hangup"; anything else means fallback
QUEUE = "IVR_QUEUE"
QUEUE_PRIORITY = "IVR_QUEUE_PRIORITY"
QUEUE_TIMEOUT = "IVR_QUEUE_TIMEOUT"
ROUTE_REASON = "IVR_ROUTE_REASON"
CONTEXT_TOKEN = "IVR_CONTEXT_TOKEN"
AGENT = "IVR_AGENT"                # an agent's interface (PJSIP/agent2) to ring before the queue
AGENT_TIMEOUT = "IVR_AGENT_TIMEOUT"
AGENT_RESULT = "IVR_AGENT_RESULT"  # why that agent did not take the call (BUSY, UNAVAILABLE, ...)
HANGUP_CAUSE = "IVR_HANGUP_CAUSE"
FALLBACK = "IVR_FALLBACK"          # why the call went to the fallback queue
PATH = "IVR_PATH"                  # the menu nodes the caller went through, ">"-separated
DIGIT = "IVR_DIGIT"                # the minimal flow's one digit (and the dialplan self-test's)

# Set by the agent API's call control (AMI) before it moves a channel into a conference
ROOM = "IVR_ROOM"                  # the ConfBridge room: ivr-<caller uniqueid>[-consult]
LEG = "IVR_LEG"                    # on an agent's leg: queue | direct (a named agent) | number (outside)
# A callback's place and its call to the customer (dialplan/callbacks.conf, ivr/voice/callback_dialer.py)
CB_ID = "IVR_CB_ID"                # the callback, inherited by the agent's leg
CB_ATTEMPT = "IVR_CB_ATTEMPT"      # which call to the customer this is (1, 2, ...)
CB_NUMBER = "IVR_CB_NUMBER"        # the customer's number, E.164
CB_RING_S = "IVR_CB_RING_S"        # how long their phone rings
CB_POSITION = "IVR_CB_POSITION"    # Queue()'s position argument: where the place goes in
CB_HOLD_S = "IVR_CB_HOLD_S"        # how long a place waits before the dialer makes it again
CB_FROM = "IVR_CB_FROM"            # the caller ID the customer sees
CB_TRUNK = "IVR_CB_TRUNK"          # the PJSIP endpoint the customer is called through
CB_WHISPER = "IVR_CB_WHISPER"      # the sound the agent hears first (who is being called)
CB_GREETING = "IVR_CB_GREETING"    # customer first: what the customer hears on answering

RESULT_QUEUE = "queue"
RESULT_HANGUP = "hangup"

ALL = frozenset({
    AGENT, AGENT_TIMEOUT, AGENT_RESULT, AGI_SCRIPT, DNIS, CALL_TAG, FALLBACK_QUEUE, AGI_URLS, AGI_PEER, ARI_APPS, ARI_APP, RESULT, QUEUE, QUEUE_PRIORITY,
    QUEUE_TIMEOUT,
    ROUTE_REASON, CONTEXT_TOKEN, HANGUP_CAUSE, FALLBACK, DIGIT, PATH, DRIVER, DRIVER_STATUS, ROOM, LEG,
    CB_ID, CB_ATTEMPT, CB_NUMBER, CB_RING_S, CB_POSITION, CB_HOLD_S, CB_FROM, CB_TRUNK, CB_WHISPER,
    CB_GREETING,
})
