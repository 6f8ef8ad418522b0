"""The ``ivr`` command. Thin: parse arguments, call a service, print, map errors to exit codes.

An :class:`~ivr.errors.IvrError` prints as ``error: …`` with a hint, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from ivr.errors import IvrError
from ivr.settings import Settings, load_settings


def _say(msg: str) -> None:
    print(f"ivr: {msg}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- asterisk
def cmd_asterisk(args: argparse.Namespace, settings: Settings) -> int:
    from ivr.runtime.local_asterisk import LocalAsterisk

    local = LocalAsterisk(settings, log=_say)
    if args.action == "up":
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

        for path in render_config(settings, Path(args.out)):
            print(path)
    return 0


# ----------------------------------------------------------------------------- serve
def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from ivr.serve import run

    return run(settings)


# ----------------------------------------------------------------------------- call
def cmd_call(args: argparse.Namespace, settings: Settings) -> int:
    from ivr.harness.calls import CallRequest, place_call_sync

    record = place_call_sync(
        settings,
        CallRequest(caller=args.caller, dnis=args.to, keys=args.keys, transport=args.transport,
                    caller_name=args.name, hold_s=args.hold, delay_s=args.delay,
                    speech=args.speech),
    )
    print(json.dumps(record.to_json(), indent=2, ensure_ascii=False) if args.json else record.to_text())
    return 0 if record.answered else 1


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
    call.add_argument("--from", dest="caller", default="79991234567", help="caller ID number")
    call.add_argument("--name", default="", help="caller ID name")
    call.add_argument("--to", default="100", help="dialled number (DNIS)")
    call.add_argument("--keys", default="", help="DTMF script: digits 0-9*#, w = 0.5 s pause, W or , = 1 s")
    call.add_argument("--transport", choices=("sipp", "ami"), default="sipp")
    call.add_argument("--delay", type=float, default=2.0, help="seconds after answer before the first key")
    call.add_argument("--hold", type=float, default=6.0, help="seconds to stay on the line after the keys")
    call.add_argument("--speech", default="", help="(ami) sound file played as the caller's speech")
    call.add_argument("--json", action="store_true", help="print one JSON object (see docs/call-record.md)")
    call.set_defaults(func=cmd_call)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace, Settings], int] = args.func
    try:
        return func(args, load_settings())
    except IvrError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
