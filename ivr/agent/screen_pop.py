"""The screen pop: the page an agent's desktop opens when a call lands (``GET /agent/{token}``).

One self-contained HTML page: inline CSS and one small inline script, no external asset,
so it renders in any desktop's embedded browser, behind any proxy, under a
Content-Security-Policy that allows inline style, that one script (by a nonce drawn per
response) and connections back to this server only. Who is calling, why they reached
this agent, who else is on the call, the agents' notes, and the journey across channels,
newest first, one block per call, USSD session or SMS.

The page is live: the script follows ``/agent/{token}/live`` (server-sent events, which
pass reverse proxies as a plain long HTTP response and reconnect by themselves, resuming
from the last event seen) and adds each new event where it belongs. It builds the new
rows with ``textContent`` only, never HTML, so caller text stays text. Without script the
page is the same snapshot as before.

Every value on the page went through :func:`html.escape`: most of it is caller-controlled
(what they said, what they texted, a caller ID name), and the CSP is only the second line.
The HTTP side (key, token, status codes) is :mod:`ivr.agent.http`.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from datetime import datetime, tzinfo

from ivr.agent.service import AgentContext, JourneyEntry
from ivr.journey import events as E

CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"


def live_policy(nonce: str) -> str:
    """The screen pop's policy: the refusal pages' plus its one script and the live feed."""
    return f"{CONTENT_SECURITY_POLICY}; script-src 'nonce-{nonce}'; connect-src 'self'"

CHANNELS = {  # label, symbol (in DejaVu Sans, so no emoji font is needed), noun for the recap
    E.VOICE: ("Call", "\u260e", "call"),
    E.USSD: ("USSD", "#", "USSD session"),
    E.SMS: ("SMS", "\u2709", "SMS"),
    E.WEB: ("Web", "\u2302", "visit to the web site"),
    E.APP: ("App", "\u25a3", "app session"),
    E.EMAIL: ("E-mail", "@", "e-mail"),
    E.CHAT: ("Chat", "\u2026", "chat"),
    E.OFFICE: ("Office", "\u2691", "office visit"),
}
# Event types an agent should not miss, and those that mean the caller struggled.
NOTABLE = frozenset({E.ROUTE_DECIDED, E.AGENT_CONNECTED, E.SPEECH_MATCHED, E.USSD_REQUEST, E.SMS_RECEIVED,
                     E.SMS_SENT, E.ACTION_RESULT, E.CALLER_IDENTIFIED, E.CALL_TRANSFERRED, E.CONSULT_STARTED,
                     E.PARTICIPANT_JOINED, E.AGENT_NOTE})
TROUBLE = frozenset({E.NO_INPUT, E.INPUT_INVALID, E.QUEUE_ABANDONED, E.CRM_UNAVAILABLE})
QUIET = frozenset({E.NODE_ENTERED, E.NODE_SKIPPED})

STATUS_TEXT = {
    401: ("Not authorised", "The agent API key is missing or wrong. Check the desktop's configuration."),
    404: ("No context", "This call's context is not available: the link may have expired. Ask the caller."),
    503: ("Try again", "The journey store is not answering. The call itself is not affected."),
}

STYLE = """
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 "DejaVu Sans","Segoe UI",Arial,sans-serif;color:#1d2433;background:#eef1f6}
header{background:#1f3a5f;color:#fff;padding:18px 28px;display:flex;align-items:center;gap:22px;flex-wrap:wrap}
header h1{margin:0;font-size:24px;font-weight:600}
header .name{font-weight:400;opacity:.85;margin-left:10px}
header .queue{margin-left:auto;font-size:16px}
header .queue b{font-size:18px}
.prio{display:inline-block;background:#f0b429;color:#1d2433;border-radius:12px;padding:1px 10px;
  font-weight:700;margin-left:6px}
main{padding:20px 28px;max-width:1100px}
.card{background:#fff;border-radius:8px;padding:16px 20px;margin-bottom:16px;box-shadow:0 1px 3px rgba(0,0,0,.08)}
.card h2{margin:0 0 8px;font-size:13px;letter-spacing:.06em;text-transform:uppercase;color:#5b6577}
.reason{font-size:20px;font-weight:600;margin:0}
.meta{color:#5b6577;font-size:13px;margin:6px 0 0}
.recap p{margin:4px 0 0}
.badge{display:inline-block;min-width:64px;text-align:center;border-radius:4px;padding:1px 8px;font-size:12px;
  font-weight:700;letter-spacing:.04em;color:#fff;text-transform:uppercase}
.badge.voice{background:#2f6fde}.badge.ussd{background:#7b43c9}.badge.sms{background:#12866b}
.badge.other{background:#6b7280}
.badge.web,.badge.app{background:#b45309}.badge.email,.badge.chat,.badge.office{background:#0e7490}
.group.web,.group.app{border-color:#b45309}.group.email,.group.chat,.group.office{border-color:#0e7490}
.group{border-left:4px solid #c8d0dc;margin:14px 0 0;padding:0 0 0 14px}
.group.voice{border-color:#2f6fde}.group.ussd{border-color:#7b43c9}.group.sms{border-color:#12866b}
.group-head{font-size:14px;color:#3b4455}
.group-head .current{background:#fde68a;border-radius:4px;padding:0 6px;margin-left:6px;font-weight:600}
.group-head .id{color:#8a93a3;font-size:12px;margin-left:6px}
ol{list-style:none;margin:6px 0 0;padding:0}
li{display:flex;gap:14px;padding:3px 0;border-bottom:1px solid #f0f2f5}
li time{flex:0 0 70px;color:#8a93a3;font-variant-numeric:tabular-nums;font-size:13px;padding-top:1px}
li.notable .summary{font-weight:600}
li.trouble .summary{color:#a4161a}
li.quiet .summary{color:#7a8496}
.empty{color:#5b6577}
footer{color:#8a93a3;font-size:12px;padding:0 28px 20px}
.live{font-size:12px;border-radius:10px;padding:1px 9px;background:#6b7280;color:#fff}
.live.on{background:#12866b}.live.off{background:#a4161a}
.oncall{margin:6px 0 0;font-size:14px}
.note{white-space:pre-wrap;margin:6px 0 0;padding:6px 10px;background:#f6f7fb;border-left:3px solid #f0b429}
.note .by{color:#5b6577;font-size:12px;display:block}
li.fresh{background:#fff7d6}
"""

LIVE_SCRIPT = """(function () {
  var body = document.body, journey = document.getElementById("journey"), status = document.getElementById("live");
  var oncall = document.getElementById("oncall");
  if (!window.EventSource || !journey) { return; }
  var sep = location.search ? "&" : "?";
  var es = new EventSource(location.pathname.replace(/\\/$/, "") + "/live" + location.search + sep +
                           "since=" + encodeURIComponent(body.getAttribute("data-cursor")));
  function show(text, cls) { status.textContent = text; status.className = "live " + cls; }
  function el(tag, cls, text) {
    var e = document.createElement(tag); if (cls) { e.className = cls; }
    if (text !== undefined) { e.textContent = text; } return e;
  }
  es.addEventListener("open", function () { show("live", "on"); });
  es.addEventListener("error", function () { show("reconnecting\u2026", "off"); });
  es.addEventListener("resync", function () { location.reload(); });
  es.addEventListener("expired", function () { es.close(); show("expired", "off"); });
  es.addEventListener("participants", function (m) {
    var people = JSON.parse(m.data);
    oncall.textContent = people.length ? "On this call: " + people.map(function (p) {
      return p.who + " (" + p.role + ")"; }).join(", ") : "No agent on this call now";
  });
  es.addEventListener("journey", function (m) {
    var d = JSON.parse(m.data), group = journey.querySelector(".group");
    if (!group || group.getAttribute("data-interaction") !== d.interaction) {
      group = el("div", "group " + d.css);
      group.setAttribute("data-interaction", d.interaction);
      var head = el("div", "group-head"), badge = el("span", "badge " + d.css, d.label);
      head.appendChild(badge);
      head.appendChild(document.createTextNode(" " + d.day + " " + d.clock + " \u00b7 " + d.when));
      head.appendChild(el("span", "id", d.interaction));
      group.appendChild(head); group.appendChild(el("ol"));
      var empty = journey.querySelector(".empty"); if (empty) { empty.remove(); }
      journey.insertBefore(group, journey.querySelector(".group"));
    }
    var li = el("li", "fresh " + d.kind); li.setAttribute("data-type", d.type);
    li.appendChild(el("time", "", d.seconds)); li.appendChild(el("span", "summary", d.summary));
    var ol = group.querySelector("ol"); ol.insertBefore(li, ol.firstChild);
  });
})();"""


def render_screen_pop(ctx: AgentContext, *, tz: tzinfo | None = None, nonce: str | None = None) -> str:
    """The page for ``ctx``; times in ``tz`` (the server's zone by default: the centre's).

    With a ``nonce`` the page carries its live script (the response's CSP must allow it:
    :func:`live_policy`); without one it is a snapshot."""
    claim = ctx.claim
    label, symbol, _ = CHANNELS.get(claim.channel, (claim.channel, "", claim.channel))
    name = f'<span class="name">{_e(ctx.customer_name)}</span>' if ctx.customer_name else ""
    body = f"""<header>
<span class="badge {_channel_class(claim.channel)}">{_e(symbol)} {_e(label)}</span>
<h1>Customer {_e(claim.customer_key)}{name}</h1>
<div class="queue">queue <b>{_e(claim.queue)}</b> <span class="prio" title="priority">P{_e(claim.priority)}</span></div>
</header>
<main>
<section class="card why"><h2>Why they are calling</h2>
<p class="reason">{_e(claim.route_reason or "no routing reason recorded")}</p>
<p class="meta">routed at {_e(_clock(claim.issued_at, tz, seconds=True))} · interaction {_e(claim.interaction)}</p>
<p class="oncall" id="oncall">{_e(_on_call(ctx))}</p>
{_notes(ctx)}
</section>
<section class="card recap"><h2>Across channels since {_e(_day(claim.journey_since, tz))}</h2>
{_recap(ctx)}
</section>
<section class="card journey" id="journey"><h2>Journey, newest first <span class="live" id="live">snapshot</span></h2>
{"".join(_groups(ctx, tz)) or '<p class="empty">Nothing recorded for this customer in this period.</p>'}
</section>
</main>
<footer>Times in {_e(_zone(claim.issued_at, tz))}. This page expires at {_e(_clock(claim.expires_at, tz))}.</footer>"""
    script = f'<script nonce="{_e(nonce)}">{LIVE_SCRIPT}</script>' if nonce else ""
    return _page(f"{label}: customer {claim.customer_key}", body + script, cursor=ctx.cursor)


def live_entry(ctx_claim_issued_at: float, claim_interaction: str, entry: JourneyEntry,
               tz: tzinfo | None = None) -> dict[str, str]:
    """One new event as the live script draws it: every value is text for ``textContent``."""
    label, symbol, _ = CHANNELS.get(entry.channel, (entry.channel, "", entry.channel))
    current = entry.interaction == claim_interaction
    when = ("this call" if entry.channel == E.VOICE else "this interaction") if current else \
        _ago(ctx_claim_issued_at - entry.at)
    return {"interaction": entry.interaction, "type": entry.type, "summary": entry.summary,
            "css": _channel_class(entry.channel), "label": f"{symbol} {label}", "day": _day(entry.at, tz),
            "clock": _clock(entry.at, tz), "seconds": _clock(entry.at, tz, seconds=True), "when": when,
            "kind": _kind(entry)}


def _on_call(ctx: AgentContext) -> str:
    people = ctx.on_the_call
    if not people:
        return "No agent on this call now"
    return "On this call: " + ", ".join(f"{p.who} ({p.role})" for p in people)


def _notes(ctx: AgentContext) -> str:
    """The agents' notes in full, newest first: the next agent reads them before anything else."""
    notes = [e for e in ctx.journey if e.type == E.AGENT_NOTE]
    if not notes:
        return ""
    items = []
    for note in notes:
        d = note.data
        code = f" · {d['wrapup']}" if d.get("wrapup") else ""
        items.append(f'<p class="note"><span class="by">{_e(d.get("agent", "agent"))}{_e(code)} · '
                     f'{_e(_day(note.at, None))} {_e(_clock(note.at, None))}</span>{_e(d.get("text", ""))}</p>')
    return "<h2>Agents' notes</h2>" + "".join(items)


def render_refusal(status: int) -> str:
    """The page for 401, 404, 503: the same words whatever the cause, nothing from the request."""
    title, text = STATUS_TEXT.get(status, ("Unavailable", "The context is not available."))
    return _page(title, f'<main><section class="card"><h2>{_e(title)}</h2><p>{_e(text)}</p></section></main>')


def _page(title: str, body: str, *, cursor: float | None = None) -> str:
    data = f' data-cursor="{cursor:.6f}"' if cursor is not None else ""
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width,initial-scale=1">'
            f"<title>{_e(title)}</title><style>{STYLE}</style></head>\n<body{data}>\n{body}\n</body></html>\n")


def _recap(ctx: AgentContext) -> str:
    """How many calls, sessions and messages: the agent's first question is "did they try before?"."""
    seen: dict[str, set[str]] = {}
    for entry in ctx.journey:
        seen.setdefault(entry.channel, set()).add(entry.interaction)
    if not seen:
        return '<p class="empty">No earlier contact.</p>'
    order = list(CHANNELS)
    parts = []
    for channel, interactions in sorted(seen.items(), key=lambda item: (_rank(order, item[0]), item[0])):
        _, symbol, noun = CHANNELS.get(channel, (channel, "", channel))
        plural = noun if len(interactions) == 1 or noun.endswith("SMS") else noun + "s"
        parts.append(f'<span class="badge {_channel_class(channel)}">{_e(symbol)} {len(interactions)} {_e(plural)}'
                     "</span>")
    return "<p>" + " ".join(parts) + "</p>"


def _rank(order: list[str], channel: str) -> int:
    return order.index(channel) if channel in order else len(order)


def _groups(ctx: AgentContext, tz: tzinfo | None) -> Iterator[str]:
    """One block per run of events of one interaction, newest first."""
    run: list[JourneyEntry] = []
    for entry in ctx.journey:
        if run and entry.interaction != run[0].interaction:
            yield _group(ctx, run, tz)
            run = []
        run.append(entry)
    if run:
        yield _group(ctx, run, tz)


def _group(ctx: AgentContext, entries: list[JourneyEntry], tz: tzinfo | None) -> str:
    first = entries[-1]  # the run is newest first
    label, symbol, _ = CHANNELS.get(first.channel, (first.channel, "", first.channel))
    current = first.interaction == ctx.claim.interaction
    when = "this call" if current and first.channel == E.VOICE else "this interaction" if current else \
        _ago(ctx.claim.issued_at - first.at)
    flag = f'<span class="current">{_e(when)}</span>' if current else f"· {_e(when)}"
    items = "".join(_item(entry, tz) for entry in entries)
    return (f'<div class="group {_channel_class(first.channel)}" data-interaction="{_e(first.interaction)}">'
            f'<div class="group-head">'
            f'<span class="badge {_channel_class(first.channel)}">{_e(symbol)} {_e(label)}</span> '
            f"{_e(_day(first.at, tz))} {_e(_clock(first.at, tz))} {flag}"
            f'<span class="id">{_e(first.interaction)}</span></div><ol>{items}</ol></div>')


def _kind(entry: JourneyEntry) -> str:
    if entry.type == E.HANGUP and entry.data.get("by") == "caller":
        return "trouble"
    return "notable" if entry.type in NOTABLE else "trouble" if entry.type in TROUBLE else \
        "quiet" if entry.type in QUIET else ""


def _item(entry: JourneyEntry, tz: tzinfo | None) -> str:
    kind = _kind(entry)
    return (f'<li class="{kind}" data-type="{_e(entry.type)}"><time>{_e(_clock(entry.at, tz, seconds=True))}</time>'
            f'<span class="summary">{_e(entry.summary)}</span></li>')


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _channel_class(channel: str) -> str:
    return channel if channel in CHANNELS else "other"


def _local(at: float, tz: tzinfo | None) -> datetime:
    return datetime.fromtimestamp(at).astimezone(tz) if tz is None else datetime.fromtimestamp(at, tz=tz)


def _clock(at: float, tz: tzinfo | None, *, seconds: bool = False) -> str:
    return _local(at, tz).strftime("%H:%M:%S" if seconds else "%H:%M")


def _day(at: float, tz: tzinfo | None) -> str:
    return _local(at, tz).strftime("%a %d %b")


def _zone(at: float, tz: tzinfo | None) -> str:
    return _local(at, tz).strftime("%Z (UTC%z)")


def _ago(seconds: float) -> str:
    """When, against the moment this call reached the agent, in the unit an agent would say it.

    ``seconds`` is how long before the call; negative for what happened after it was put
    through (a USSD session the customer opened while waiting, an SMS they sent).
    """
    if seconds < 0:
        return f"{_span(-seconds)} after this call was put through"
    if seconds < 90:
        return "just before"
    return f"{_span(seconds)} earlier"


def _span(seconds: float) -> str:
    if seconds < 90:
        return f"{round(seconds)} s"
    if seconds < 55 * 60:
        return f"{round(seconds / 60)} min"
    if seconds < 36 * 3600:
        return f"{round(seconds / 3600)} h"
    return f"{round(seconds / 86400)} days"
