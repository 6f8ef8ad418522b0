"""The ``ivr`` command. Thin: parse arguments, call a service, print, map errors to exit codes.

An :class:`~ivr.errors.IvrError` prints as ``error: …`` with a hint, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ivr.errors import IvrError
from ivr.exposure import asterisk_listeners, asterisk_secrets, refuse_weak_secrets
from ivr.settings import Settings, host_port, load_settings

if TYPE_CHECKING:
    from ivr.crm.session_start import CallerStart
    from ivr.sms.config import KannelConfig


def _say(msg: str) -> None:
    print(f"ivr: {msg}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- asterisk
def cmd_asterisk(args: argparse.Namespace, settings: Settings) -> int:
    from ivr.runtime.local_asterisk import LocalAsterisk

    local = LocalAsterisk(settings, log=_say)
    if args.action == "up":
        refuse_weak_secrets(asterisk_listeners(settings), asterisk_secrets(settings))
        local.up()
    elif args.action == "down":
        local.down()
    elif args.action == "status":
        status = local.status()
        print(status.describe())
        return 0 if status.running else 3
    elif args.action == "cli":
        print(local.cli(" ".join(args.command)), end="")
    elif args.action == "logs":
        path = local.log_paths()[0]
        if not path.exists():
            raise IvrError(f"no log yet at {path}", hint="start Asterisk with `ivr asterisk up`")
        lines = path.read_text(errors="replace").splitlines()[-args.lines:]
        print(f"# {path}")
        print("\n".join(lines))
    elif args.action == "render":
        from ivr.runtime.render import render_config

        refuse_weak_secrets(asterisk_listeners(settings), asterisk_secrets(settings))

        for path in render_config(settings, Path(args.out)):
            print(path)
    return 0


# ----------------------------------------------------------------------------- serve
def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from ivr.serve.app import run

    return run(settings)


def cmd_recogniser(args: argparse.Namespace, settings: Settings) -> int:
    from ivr.voice.speech.model_path import ModelNotFound, resolve_model
    from ivr.voice.speech.vosk_server import serve

    try:
        model = resolve_model(args.model or settings.speech.model, settings.home)
    except ModelNotFound as exc:
        raise IvrError(str(exc), hint="set [speech] model / IVR_SPEECH_MODEL", error_id="no-speech-model") from None
    if model is None:
        raise IvrError("no speech model configured", hint="set [speech] model", error_id="no-speech-model")
    serve(model, args.host or settings.speech.host, args.port or settings.speech.port,
          args.threads or settings.speech.threads or None)
    return 0


# ----------------------------------------------------------------------------- call
def cmd_call(args: argparse.Namespace, settings: Settings) -> int:
    from ivr.harness.calls import CallRequest, place_call_sync
    from ivr.harness.spoken import prepare_speech

    speech, transport = args.speech, args.transport
    if args.say:
        speech, transport = prepare_speech(settings, Path(args.say)), "ami"
    record = place_call_sync(
        settings,
        CallRequest(caller=args.caller, dnis=args.to, keys=args.keys, transport=transport,
                    caller_name=args.name, hold_s=args.hold, delay_s=args.delay,
                    speech=speech),
    )
    print(json.dumps(record.to_json(), indent=2, ensure_ascii=False) if args.json else record.to_text())
    return 0 if record.answered else 1


# ----------------------------------------------------------------------------- menus
def cmd_validate(args: argparse.Namespace, settings: Settings) -> int:
    from ivr.composition import core_sound_dirs, menu_paths
    from ivr.flow.validate import validate

    default_menus, default_numbers = menu_paths(settings)
    paths = [Path(p) for p in args.paths] or [default_menus]
    numbers = Path(args.numbers) if args.numbers else (default_numbers if not args.paths else None)
    from ivr.composition import known_actions, load_actions
    from ivr.crm.declared_config import ActionsInvalid, DeclaredActions, missing_secrets

    problems: list[Any] = []
    actions_file = settings.path(settings.integrations.actions)
    try:
        declared = load_actions(settings)
    except ActionsInvalid as exc:  # the menus are still checked, against the built-in actions
        problems += exc.problems
        declared = DeclaredActions()
    catalog = known_actions(settings, declared)
    problems += validate(paths, numbers=numbers, sound_dirs=[settings.home / "sounds"],
                         extra_sound_dirs=core_sound_dirs(settings), known_actions=catalog)
    checked = [str(p) for p in paths] + ([str(numbers)] if numbers else [])
    if actions_file.exists():
        checked.append(str(actions_file))
    fixtures = settings.home / "config" / "actions.fixtures.yaml"
    if not args.paths and fixtures.exists():  # what `ivr simulate` answers declared actions with
        from ivr.tools.fixtures import FixturesInvalid, load_fixtures

        try:
            load_fixtures(fixtures, catalog)
        except FixturesInvalid as exc:
            problems += exc.problems
        checked.append(str(fixtures))
    if not args.paths or args.routing:
        from ivr.composition import known_queues
        from ivr.routing.rules import analyse_routing

        routing = Path(args.routing) if args.routing else settings.path(settings.routing.rules)
        problems += analyse_routing(routing, known_queues(settings))[1]
        checked.append(str(routing))
        from ivr.agent.wrapup import WrapupInvalid, load_wrapup_codes
        from ivr.composition import wrapup_path

        try:
            load_wrapup_codes(wrapup_path(settings), known_queues(settings))
        except WrapupInvalid as exc:
            problems += list(exc.problems)
        checked.append(str(wrapup_path(settings)))
        from ivr.callbacks.policy import CallbacksInvalid, load_callback_policy
        from ivr.composition import callbacks_path

        try:
            load_callback_policy(callbacks_path(settings), known_queues(settings))
        except CallbacksInvalid as exc:
            problems += list(exc.problems)
        checked.append(str(callbacks_path(settings)))
    if not args.paths:
        found, files = _channel_config_problems(settings, catalog)
        problems += found
        checked += files
    for problem in problems:
        print(problem)
    for secret in missing_secrets(declared, os.environ):
        print(f"warning: {actions_file}: {secret}: `ivr serve` will refuse to start without it", file=sys.stderr)
    if not problems and numbers is not None:
        from ivr.composition import load_menu_tree, speech_warnings

        for warning in speech_warnings(settings, load_menu_tree(settings, paths[0], numbers, catalog)):
            print(warning, file=sys.stderr)
    if problems:
        print(f"{len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"ok: {', '.join(checked)}")
    return 0


def _channel_config_problems(settings: Settings, catalog: Any) -> tuple[list[Any], list[str]]:
    """The USSD and SMS settings and, with an HTTP CRM, its mapping: the other files an admin edits."""
    from ivr.composition import load_sms_settings, sms_config_path
    from ivr.crm.errors import CrmConfigError
    from ivr.sms.errors import SmsConfigInvalid
    from ivr.ussd.config import analyse_ussd_config

    ussd = settings.home / "config" / "ussd.yaml"
    problems: list[Any] = list(analyse_ussd_config(ussd, env=os.environ)[1])
    files = [str(ussd), str(sms_config_path(settings))]
    try:
        load_sms_settings(settings, catalog)
    except SmsConfigInvalid as exc:
        problems += exc.problems
    from ivr.agent.access_config import AccessInvalid, load_context_access

    context = settings.path(settings.integrations.context)
    files.append(str(context))
    try:
        load_context_access(context, os.environ)
    except AccessInvalid as exc:
        problems += exc.problems
    if settings.crm.backend == "http":
        from ivr.crm.http_config import load_http_config

        path = settings.path(settings.crm.http_config)
        files.append(str(path))
        try:
            load_http_config(path)
        except CrmConfigError as exc:
            problems += exc.message.splitlines()[1:]
    return problems, files


def _load_tree_or_exit(settings: Settings, menus: str | None = None, numbers: str | None = None):  # noqa: ANN202
    from ivr.composition import load_menu_tree
    from ivr.flow.errors import TreeInvalid

    try:
        return load_menu_tree(settings, Path(menus) if menus else None, Path(numbers) if numbers else None)
    except TreeInvalid as exc:
        raise IvrError(str(exc), hint="run `ivr validate` for the full list", error_id="tree-invalid") from None


def _fixture_runner(settings: Settings, given: str | None):  # noqa: ANN202 - an ActionRunner or None
    """Recorded answers of the declared actions: ``--fixtures``, else config/actions.fixtures.yaml if present."""
    path = Path(given) if given else settings.home / "config" / "actions.fixtures.yaml"
    if not given and not path.exists():
        return None
    from ivr.composition import known_actions
    from ivr.tools.fixtures import load_fixtures

    return load_fixtures(path, known_actions(settings))


def cmd_simulate(args: argparse.Namespace, settings: Settings) -> int:
    from ivr.tools.simulate import simulate

    tree = _load_tree_or_exit(settings, args.menus, args.numbers)
    keys = [k.strip() for k in args.keys.split(",")] if args.keys else []
    start = None
    context: Any = {"caller": {"number": args.caller}, "dnis": args.to}
    if not args.profile:
        from ivr.tools.as_caller import start_as_caller

        start = asyncio.run(start_as_caller(settings, args.caller, args.to))
        context = start.context
    else:
        from ivr.tools.diff import ProfilesInvalid, load_profiles

        try:
            profiles = {p.name: p for p in load_profiles(settings.home / "config" / "callers.yaml")}
        except ProfilesInvalid as exc:
            raise IvrError(str(exc), error_id=exc.error_id) from None
        if args.profile not in profiles:
            raise IvrError(f"no caller profile {args.profile!r}", hint=f"known: {', '.join(sorted(profiles))}")
        context = {**profiles[args.profile].context, "dnis": args.to}
    if args.wait is not None:
        context = _with_wait(settings, context, args.wait)
    from ivr.config.errors import TemplateFailed

    try:
        result = simulate(tree, context, keys, channel=args.channel, dnis=args.to, language=args.lang,
                          runner=_fixture_runner(settings, args.fixtures))
    except TemplateFailed as exc:
        raise IvrError(str(exc), error_id=exc.error_id,
                       hint="a live call would go to the fallback queue here; fix the template") from None
    routed = None
    if start is not None:
        from ivr.tools.as_caller import route_as_call

        routed = route_as_call(settings, result.outcome, start, args.to)
    if args.json:
        body = json.loads(result.to_json())
        if start is not None:
            body["caller"] = {"status": start.status, "number": start.number, "journey_key": start.journey_key}
        body["routing"] = None if routed is None else routed.to_dict()
        print(json.dumps(body, ensure_ascii=False, indent=2, default=str))
    else:
        lines = [] if start is None else [f"[caller] {_caller_line(start)}"]
        lines.append(result.to_text())
        if routed is not None:
            lines.append(routed.to_text())
        print("\n".join(lines))
    return 0


def _with_wait(settings: Settings, context: Any, seconds: float) -> Any:
    """The context as if every queue's estimated wait were ``seconds`` (``--wait``)."""
    import dataclasses

    from ivr.callbacks.policy import load_callback_policy
    from ivr.callbacks.wait import fixed_facts
    from ivr.composition import callbacks_path, known_queues, load_routing_config

    queues = known_queues(settings)
    facts = fixed_facts(seconds, dict.fromkeys(queues, 0), load_routing_config(settings).default_queue,
                        load_callback_policy(callbacks_path(settings), queues))
    queue, every = facts()
    if isinstance(context, dict):
        return {**context, "queue": queue, "queues": every}
    return dataclasses.replace(context, queue=queue, queues=every)


def _caller_line(start: CallerStart) -> str:
    if start.found:
        return f"customer {start.journey_key} ({start.customer.get('segment', '')}) from {start.number}"
    if start.status == "unavailable":
        return f"CRM unavailable for {start.number or 'this number'}: the generic menu"
    return f"not a customer ({start.status}): the generic menu"


def cmd_graph(args: argparse.Namespace, settings: Settings) -> int:
    import shutil
    import subprocess

    from ivr.tools.graph import to_dot, to_mermaid

    tree = _load_tree_or_exit(settings, args.menus, args.numbers)
    if args.format == "mermaid":
        out = to_mermaid(tree, args.lang)
    else:
        out = to_dot(tree, args.lang)
        if args.format == "svg":
            if shutil.which("dot") is None:
                raise IvrError("`dot` is not installed", hint="apt-get install graphviz, or use --format dot")
            proc = subprocess.run(["dot", "-Tsvg"], input=out, capture_output=True, text=True, timeout=60)
            if proc.returncode != 0:
                raise IvrError(f"dot failed: {proc.stderr.strip()}")
            out = proc.stdout
    if args.output:
        Path(args.output).write_text(out, encoding="utf-8")
        print(args.output)
    else:
        print(out)
    return 0


def cmd_diff(args: argparse.Namespace, settings: Settings) -> int:
    from ivr.tools.diff import ProfilesInvalid, diff_trees, load_profiles

    old = _load_tree_or_exit(settings, args.old, args.old_numbers or args.numbers)
    new = _load_tree_or_exit(settings, args.new, args.new_numbers or args.numbers)
    try:
        profiles = load_profiles(args.callers or settings.home / "config" / "callers.yaml")
    except ProfilesInvalid as exc:
        raise IvrError(str(exc), error_id=exc.error_id) from None
    from ivr.tools.as_caller import rules_router

    result = diff_trees(old, new, profiles, router=rules_router(settings))
    print(json.dumps(result.to_json(), indent=2, ensure_ascii=False, default=str) if args.json else result.to_text())
    return 1 if result.changed and args.exit_code else 0


def _when(text: str, now: float) -> float:
    """``2026-11-01``, ``2026-11-01T09:00``, or relative: ``24h``, ``7d``, ``30m`` ago."""
    import datetime as dt
    import re

    m = re.fullmatch(r"(\d+)([mhd])", text.strip())
    if m:
        return now - int(m.group(1)) * {"m": 60, "h": 3600, "d": 86400}[m.group(2)]
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise IvrError(f"{text!r} is not a time", hint="use 2026-11-01, 2026-11-01T09:00, or 24h / 7d ago") from None
    if moment.tzinfo is None:
        moment = moment.astimezone()
    return moment.timestamp()


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio
    import time

    from ivr.composition import open_journey
    from ivr.journey.kpi import fold

    now = time.time()
    since, until = _when(args.since, now), (_when(args.until, now) if args.until else now)

    window = settings.kpi.fcr_window_s
    horizon = min(now, until + window)  # a contact is resolved once its window passed with no new contact

    async def run() -> str:
        store = await open_journey(settings)
        try:
            later = await store.between(until, horizon) if horizon > until else []
            kpis = fold(await store.between(since, until), since=since, until=until, later=later,
                        fcr_window_s=window, horizon=horizon)
        finally:
            await store.close()
        return kpis.to_json() if args.json else kpis.to_text()

    print(asyncio.run(run()))
    return 0


def cmd_callbacks(args: argparse.Namespace, settings: Settings) -> int:
    """``ivr callbacks list [--all] [--json]`` and ``ivr callbacks cancel ID``: the durable
    list the dialer works from (a cancelled callback's place is given up within a second)."""
    import asyncio

    from ivr.callbacks.book import CallbackBook
    from ivr.callbacks.policy import load_callback_policy
    from ivr.callbacks.service import CallbackService
    from ivr.composition import callbacks_path, known_queues, open_journey

    async def run() -> tuple[int, str]:
        store = await open_journey(settings)
        try:
            book = CallbackBook(store)
            if args.action == "cancel":
                policy = load_callback_policy(callbacks_path(settings), known_queues(settings))
                done = await CallbackService(book, lambda: policy).cancel(args.id, by="admin")
                if done is None:
                    found = await book.get(args.id)
                    why = "no such callback" if found is None else f"it is already {found.state}"
                    return 1, f"callback {args.id} not cancelled: {why}"
                return 0, f"callback {args.id} cancelled"
            callbacks = await book.all()
        finally:
            await store.close()
        shown = [c for c in callbacks if args.all or c.open]
        if args.json:
            return 0, json.dumps([c.to_json() for c in shown], ensure_ascii=False, indent=2)
        return 0, _callbacks_text(shown)

    code, text = asyncio.run(run())
    print(text, file=sys.stdout if code == 0 else sys.stderr)
    return code


def _callbacks_text(callbacks: list[Any]) -> str:
    import datetime as dt

    if not callbacks:
        return "no callbacks"
    rows = [("ID", "STATE", "QUEUE", "PRIO", "NUMBER", "VIA", "ASKED", "TRIES", "LAST")]
    for c in callbacks:
        asked = dt.datetime.fromtimestamp(c.requested_at).strftime("%m-%d %H:%M")
        rows.append((c.id, c.state, c.queue, str(c.priority), c.number, c.channel, asked, str(c.attempts), c.outcome))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def _refuse_exposed_kannel(cfg: KannelConfig) -> None:
    """sendsms on an address beyond loopback: no demo sendsms password behind it (Kannel's
    admin port stays on loopback, so its password is not checked here)."""
    from ivr.exposure import Listener
    from ivr.sms.config import DEPLOY_ENV, SECRET_ENV, Security, gateway_secrets

    sendsms = [s for s in gateway_secrets(cfg, Security()) if s.env == SECRET_ENV["sendsms_password"]]
    refuse_weak_secrets([Listener("config/sms.yaml kannel.sendsms_host", DEPLOY_ENV["sendsms_host"],
                                  cfg.sendsms_host)], sendsms)


def cmd_kannel(args: argparse.Namespace, settings: Settings) -> int:
    from ivr.runtime.kannel import KannelRuntime

    if args.action == "render":
        from ivr.composition import load_sms_settings
        from ivr.runtime.kannel import controller_url, render_kannel_conf

        cfg = load_sms_settings(settings).kannel
        _refuse_exposed_kannel(cfg)
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "kannel.conf").write_text(render_kannel_conf(
            settings, cfg, url=controller_url(settings, cfg), state_dir=Path(args.state_dir)), encoding="utf-8")
        print(out / "kannel.conf")
        return 0
    from ivr.composition import load_sms_settings

    cfg = load_sms_settings(settings).kannel
    kannel = KannelRuntime(settings, cfg, log=_say)
    if args.action == "up":
        _refuse_exposed_kannel(cfg)
        kannel.up()
    elif args.action == "down":
        kannel.down()
    else:
        status = kannel.status()
        print(status.describe())
        return 0 if status.running else 3
    return 0


def cmd_cluster(args: argparse.Namespace, settings: Settings) -> int:
    from ivr.runtime.cluster import Cluster

    cluster = Cluster(settings, log=_say)
    if args.action == "up":
        status = cluster.up()
    elif args.action == "down":
        cluster.down()
        return 0
    else:
        status = cluster.status()
    for line in status.lines():
        print(line)
    running = all(up for _n, up, _p in status.asterisks) and all(c.healthy for c in status.controllers)
    return 0 if running else 3


def cmd_kamailio(args: argparse.Namespace, settings: Settings) -> int:
    """``ivr kamailio render``: the cluster's SIP front for the production container."""
    from ivr.runtime.kamailio import SipFront, kamailio_files

    asterisks = [host_port(item, "--asterisks", "e.g. asterisk-1:5060,asterisk-2:5060")
                 for item in args.asterisks.split(",")]
    front = SipFront(listen=args.listen, port=args.port, asterisks=asterisks, advertise=args.advertise,
                     probe_interval_s=settings.cluster.probe_interval)
    etc = Path(args.etc)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    template = settings.home / "config" / "kamailio" / "kamailio.cfg"
    for name, text in kamailio_files(front, template, etc, Path("/tmp/kamailio_ctl.sock")).items():
        (out / name).write_text(text, encoding="utf-8")
        print(out / name)
    return 0


def _post_admin(settings: Settings, path: str, body: Mapping[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    """POST to the running controller's admin endpoint: its status and JSON answer.

    :class:`OSError` when no controller answers (the caller decides what that means).
    """
    import urllib.error
    import urllib.request

    data = None if body is None else json.dumps(body).encode()
    headers = {"Authorization": f"Bearer {settings.admin.key}"}
    if data:
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(f"{settings.http.local_url}{path}", method="POST", data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def cmd_notify(args: argparse.Namespace, settings: Settings) -> int:
    """Through the running controller when there is one (its journey and its /metrics see the
    message, as for every other SMS); sent from this process only when none answers."""
    variables = dict(v.split("=", 1) for v in args.var)
    try:
        status, body = _post_admin(settings, "/admin/notify",
                                   {"to": args.to, "template": args.template, "vars": variables})
    except OSError:
        body = _notify_here(settings, args.to, args.template, variables)
    else:
        if status != 200:
            raise IvrError(body.get("message") or f"the controller refused: HTTP {status}",
                           hint=body.get("hint", ""), error_id=body.get("error"))
    print(json.dumps(body, ensure_ascii=False, indent=2) if args.json else _notify_text(body))
    return 0


def _notify_here(settings: Settings, to: str, template: str, variables: Mapping[str, str]) -> dict[str, Any]:
    from ivr.composition import build_controller
    from ivr.sms import notify

    print(f"note: no controller answers at {settings.http.local_url}; sending from this process "
          "(the journey records it; a running controller's /metrics will not count it)", file=sys.stderr)

    async def run() -> dict[str, Any]:
        controller = await build_controller(settings)
        try:
            return (await notify(controller.sms, to, template, **variables)).to_dict()
        finally:
            await controller.close()

    return asyncio.run(run())


def _notify_text(body: Mapping[str, Any]) -> str:
    parts = "1 SMS" if body.get("segments") == 1 else f"{body.get('segments')} SMS parts"
    receipt = body.get("receipt") or {}
    return (f"sent to {body.get('to')} ({parts}, {body.get('encoding')}, {body.get('language')}): {body.get('text')}\n"
            f"template {body.get('template')}; interaction {body.get('interaction')} in the journey of "
            f"{body.get('journey_key')}; smsbox: {receipt.get('status')} {receipt.get('detail')}")


def cmd_reload(args: argparse.Namespace, settings: Settings) -> int:
    try:
        _status, body = _post_admin(settings, "/admin/reload")
    except OSError as exc:
        raise IvrError(f"no controller answers at {settings.http.local_url}: {exc}",
                       hint="is `ivr serve` running?") from None
    if body.get("ok"):
        print(f"reloaded: tree version {body['version']}, generation {body['generation']}")
        return 0
    for problem in body.get("problems", []):
        print(problem)
    print(f"not reloaded: version {body.get('version')} stays live", file=sys.stderr)
    return 1


def cmd_sounds(args: argparse.Namespace, settings: Settings) -> int:
    from ivr.voice.prompt_files import PromptFiles
    from ivr.voice.sound_build import build_sounds

    tree = _load_tree_or_exit(settings)
    files = PromptFiles(settings.home / "sounds", settings.prompts.asterisk_dir)
    report = build_sounds(tree, files, tuple(args.lang or ()))
    print(f"sounds: {report.generated} generated, {report.cached} already built, {report.recorded} recorded "
          f"(recorded files win), {report.dynamic} caller-specific prompts are made on first use "
          f"-> {files.synthesiser.out_dir}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ivr", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)

    ast = sub.add_parser("asterisk", help="the local Asterisk root: up, down, status, cli, logs, render")
    ast_sub = ast.add_subparsers(dest="action", required=True)
    ast_sub.add_parser("up", help="build (once) and start the local Asterisk; idempotent")
    ast_sub.add_parser("down", help="stop Asterisk and unmount; leaves no process or mount")
    ast_sub.add_parser("status", help="running or stopped, with the version (exit 3 when stopped)")
    cli = ast_sub.add_parser("cli", help='run one Asterisk CLI command, e.g. ivr asterisk cli "queue show"')
    cli.add_argument("command", nargs="+")
    logs = ast_sub.add_parser("logs", help="print the end of Asterisk's log")
    logs.add_argument("-n", "--lines", type=int, default=50)
    render = ast_sub.add_parser("render", help="write the rendered Asterisk config into a directory (Docker)")
    render.add_argument("--out", required=True)
    ast.set_defaults(func=cmd_asterisk)

    serve = sub.add_parser("serve", help="run the controller: FastAGI and HTTP, in the foreground")
    serve.set_defaults(func=cmd_serve)

    call = sub.add_parser("call", help="place one real call through Asterisk and print what happened")
    call.add_argument("--from", dest="caller", default="79990001122", help="caller ID number (default: a number the demo CRM does not know)")
    call.add_argument("--name", default="", help="caller ID name")
    call.add_argument("--to", default="100", help="dialled number (DNIS)")
    call.add_argument("--keys", default="", help="DTMF script: digits 0-9*#, w = 0.5 s pause, W or , = 1 s")
    call.add_argument("--transport", choices=("sipp", "ami"), default="sipp")
    call.add_argument("--delay", type=float, default=2.0, help="seconds after answer before the first key")
    call.add_argument("--hold", type=float, default=6.0, help="seconds to stay on the line after the keys")
    call.add_argument("--speech", default="", help="(ami) sound file, as Asterisk names it, played as the caller's speech")
    call.add_argument("--say", default="", metavar="FILE.wav",
                      help="speak this audio file as the caller, --delay seconds after the answer (any WAV; "
                           "sent wideband, 16 kHz, over the ami transport)")
    call.add_argument("--json", action="store_true", help="print one JSON object (see docs/call-record.md)")
    call.set_defaults(func=cmd_call)

    rec = sub.add_parser("recogniser", help="run the speech recogniser (Vosk WebSocket protocol); `ivr serve` "
                                            "starts one itself")
    rec.add_argument("--model", default="", help="Vosk model directory or package:<name> (default: [speech] model)")
    rec.add_argument("--host", default="")
    rec.add_argument("--port", type=int, default=0)
    rec.add_argument("--threads", type=int, default=0, help="decoding threads (default: one per core)")
    rec.set_defaults(func=cmd_recogniser)

    val = sub.add_parser("validate", help="check menu files; one `path:line:col: message` line per problem")
    val.add_argument("paths", nargs="*", help="menu files or directories (default: [menus] dir)")
    val.add_argument("--numbers", help="the dialled-number map (default: [menus] numbers)")
    val.add_argument("--routing", help="routing rules to check (default: [routing] rules, when no PATHS are given)")
    val.set_defaults(func=cmd_validate)

    sim = sub.add_parser("simulate", help="walk the menu tree as a caller would, without Asterisk")
    sim.add_argument("--from", dest="caller", default="79990001122")
    sim.add_argument("--to", default="100", help="dialled number (DNIS) or USSD code")
    sim.add_argument("--keys", default="", help='inputs, comma-separated: "1,2,#"; empty = timeout, H = hang up')
    sim.add_argument("--channel", choices=("voice", "ussd", "sms"), default="voice")
    sim.add_argument("--lang", help="force a language instead of the customer's")
    sim.add_argument("--profile", help="a caller profile from config/callers.yaml (vip, debtor, ...)")
    sim.add_argument("--wait", type=float, metavar="SECONDS",
                     help="as if every queue's estimated wait were this (shows the long-wait and callback branches)")
    sim.add_argument("--fixtures", help="recorded answers of declared actions "
                                        "(default: config/actions.fixtures.yaml when it exists)")
    sim.add_argument("--menus", help="another menu directory (default: [menus] dir)")
    sim.add_argument("--numbers", help="another dialled-number map")
    sim.add_argument("--json", action="store_true")
    sim.set_defaults(func=cmd_simulate)

    graph = sub.add_parser("graph", help="draw the menu tree (mermaid, dot or svg)")
    graph.add_argument("--format", choices=("mermaid", "dot", "svg"), default="mermaid")
    graph.add_argument("--lang", help="language of the labels (default: the tree's first)")
    graph.add_argument("--menus")
    graph.add_argument("--numbers")
    graph.add_argument("-o", "--output", help="write to this file instead of stdout")
    graph.set_defaults(func=cmd_graph)

    diff = sub.add_parser("diff", help="what each caller profile hears and reaches under OLD and NEW trees")
    diff.add_argument("old", help="the live menu directory")
    diff.add_argument("new", help="the edited menu directory")
    diff.add_argument("--numbers", help="numbers.yaml for both (default: [menus] numbers)")
    diff.add_argument("--old-numbers")
    diff.add_argument("--new-numbers")
    diff.add_argument("--callers", help="caller profiles (default: config/callers.yaml)")
    diff.add_argument("--json", action="store_true")
    diff.add_argument("--exit-code", action="store_true", help="exit 1 when something changed")
    diff.set_defaults(func=cmd_diff)

    cbs = sub.add_parser("callbacks", help="the callbacks waiting for their turn: list, or cancel one")
    cbs_sub = cbs.add_subparsers(dest="action", required=True)
    cbs_list = cbs_sub.add_parser("list", help="waiting and ringing callbacks in queue order (--all: finished too)")
    cbs_list.add_argument("--all", action="store_true")
    cbs_list.add_argument("--json", action="store_true")
    cbs_cancel = cbs_sub.add_parser("cancel", help="cancel one; its place in the queue is given up")
    cbs_cancel.add_argument("id")
    cbs.set_defaults(func=cmd_callbacks)

    rep = sub.add_parser("report", help="KPIs from the journey: containment, routes, agents (AHT, time to answer, "
                                        "transfers, first-contact resolution), CRM, the menu funnel")
    rep.add_argument("--since", default="24h", help="start: 2026-11-01[T09:00] or 24h / 7d ago (default 24h)")
    rep.add_argument("--until", help="end (default: now)")
    rep.add_argument("--json", action="store_true")
    rep.set_defaults(func=cmd_report)

    kan = sub.add_parser("kannel", help="the local Kannel SMS gateway (bearerbox + smsbox): up, down, status")
    kan.add_argument("action", choices=("up", "down", "status", "render"))
    kan.add_argument("--out", default="var/kannel-render", help="(render) directory for kannel.conf (Docker)")
    kan.add_argument("--state-dir", default="/var/lib/kannel", help="(render) Kannel's state dir in the container")
    kan.set_defaults(func=cmd_kannel)

    clu = sub.add_parser("cluster", help="Kamailio, several Asterisks and controllers, PostgreSQL on this machine "
                                         "(docs/scale-out.md): up, down, status")
    clu.add_argument("action", choices=("up", "down", "status"))
    clu.set_defaults(func=cmd_cluster)

    kam = sub.add_parser("kamailio", help="render the cluster's Kamailio config for a container (compose.yaml)")
    kam.add_argument("action", choices=("render",))
    kam.add_argument("--asterisks", required=True, help="every Asterisk as host:port, comma-separated")
    kam.add_argument("--listen", default="0.0.0.0", help="the address Kamailio binds")
    kam.add_argument("--advertise", required=True, help="the address callers reach Kamailio at (Record-Route)")
    kam.add_argument("--port", type=int, default=5060)
    kam.add_argument("--out", default="var/kamailio-render", help="directory for kamailio.cfg and dispatcher.list")
    kam.add_argument("--etc", default="/etc/kamailio", help="where the container reads them from")
    kam.set_defaults(func=cmd_kamailio)

    nfy = sub.add_parser("notify", help="send a templated SMS (config/sms.yaml notifications) and journal it")
    nfy.add_argument("--to", required=True, help="the subscriber's number")
    nfy.add_argument("--template", required=True, help="e.g. low_balance")
    nfy.add_argument("--var", action="append", default=[], help="NAME=VALUE for the template (repeatable)")
    nfy.add_argument("--json", action="store_true", help="print the result as JSON, for scripts")
    nfy.set_defaults(func=cmd_notify)

    rel = sub.add_parser("reload", help="ask the running controller to reload the menu tree")
    rel.set_defaults(func=cmd_reload)

    snd = sub.add_parser("sounds", help="`ivr sounds build`: render text prompts to audio (espeak-ng, sox)")
    snd.add_argument("action", choices=("build",))
    snd.add_argument("--lang", action="append", help="only this language (repeatable)")
    snd.set_defaults(func=cmd_sounds)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace, Settings], int] = args.func
    try:
        code = func(args, load_settings())
        sys.stdout.flush()  # inside the try: a reader that went away is handled below, not at exit
        return code
    except IvrError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`ivr report --json | head`): not an error of ours, and no traceback.
        # Point stdout at /dev/null so the interpreter's final flush cannot fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
