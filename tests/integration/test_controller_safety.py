"""The controller under hostile input, live reloads and its own failures, on real calls."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
import urllib.request
from pathlib import Path

import pytest

from ivr.harness.calls import CallRequest, place_call
from ivr.harness.sipp import sip_display_name
from ivr.runtime.local_asterisk import LocalAsterisk

pytestmark = pytest.mark.asterisk
REPO = Path(__file__).resolve().parents[2]
HOSTILE_NAME = 'Eve"; EXEC System touch /tmp/ivr-pwned; VERBOSE "\\'


def copy_tree(tmp_path: Path) -> Path:
    menus = tmp_path / "menus"
    shutil.copytree(REPO / "config/menus", menus)
    shutil.copy(REPO / "config/numbers.yaml", menus.parent / "numbers.yaml")
    return menus


def tree_env(menus: Path) -> dict[str, str]:
    return {"IVR_MENUS_DIR": str(menus), "IVR_MENUS_NUMBERS": str(menus.parent / "numbers.yaml"),
            "IVR_MENUS_WATCH_INTERVAL": "0"}


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def reload(settings) -> tuple[int, dict]:
    req = urllib.request.Request(f"http://{settings.http.host}:{settings.http.port}/admin/reload", method="POST",
                                 headers={"Authorization": f"Bearer {settings.admin.key}"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_hostile_caller_id_name_is_one_quoted_agi_argument(asterisk, controller, place_call):
    log = LocalAsterisk(asterisk).log_paths()[0]
    before = log.stat().st_size

    record = place_call(dnis="100", keys="0", caller="79990001122", caller_name=HOSTILE_NAME,
                        delay_s=3, hold_s=5)

    with open(log, "rb") as f:
        f.seek(before)
        written = f.read().decode(errors="replace")
    verbose = [ln for ln in written.splitlines() if f"ivr: call {record.uniqueid} from" in ln]
    assert len(verbose) == 1
    # PJSIP hands the display name over in its escaped quoted-string form; that exact text
    # must reach Asterisk as one argument, neither cut at a quote nor split into commands.
    as_asterisk_has_it = sip_display_name(HOSTILE_NAME)[1:-1]
    assert f"from {as_asterisk_has_it} <79990001122> to 100, menu version" in verbose[0]
    assert record.queue is not None and record.queue.name == "support"  # the call went on normally
    assert not (LocalAsterisk(asterisk).root / "tmp/ivr-pwned").exists()
    assert "AGI usage error" not in controller.log_path.read_text()


def test_the_caller_robot_keeps_the_callers_number_whatever_the_name(asterisk, controller, place_call):
    # A forged AMI header after a line break, and 300 characters: either alone lost the number.
    name = "Eve\r\nAction: Hangup\r\nChannel: all " + "Long " * 60
    log = LocalAsterisk(asterisk).log_paths()[0]
    before = log.stat().st_size

    record = place_call(dnis="100", keys="0", caller="79990003344", caller_name=name, transport="ami",
                        delay_s=3, hold_s=5)

    with open(log, "rb") as f:
        f.seek(before)
        written = f.read().decode(errors="replace")
    verbose = [ln for ln in written.splitlines() if f"ivr: call {record.uniqueid} from" in ln]
    assert len(verbose) == 1 and "<79990003344> to 100" in verbose[0]
    assert record.queue is not None and record.queue.name == "support"


def test_call_in_progress_finishes_on_its_tree_while_new_calls_get_the_reloaded_one(
        asterisk, start_controller, tmp_path):
    menus = copy_tree(tmp_path)
    ctl = start_controller(**tree_env(menus))

    async def scenario():
        first = asyncio.create_task(place_call(asterisk, CallRequest(dnis="100", keys="0", delay_s=7, hold_s=4)))
        deadline = time.monotonic() + 10
        while ctl.health()["live_calls"] != 1:
            assert time.monotonic() < deadline, "the first call never reached the controller"
            await asyncio.sleep(0.1)
        edit(menus / "main.yaml", 'version: "2024.11.1"', 'version: "2024.11.2"')
        edit(menus / "main.yaml", "  operator_standard:\n    type: route\n    queue: support",
             "  operator_standard:\n    type: route\n    queue: sales")
        status, body = await asyncio.to_thread(reload, asterisk)
        assert (status, body["ok"], body["version"]) == (200, True, "2024.11.2")
        return await first

    during = asyncio.run(scenario())
    after = asyncio.run(place_call(asterisk, CallRequest(dnis="100", keys="0", delay_s=3, hold_s=4)))

    assert during.queue is not None and during.queue.name == "support"
    assert after.queue is not None and after.queue.name == "sales"


def test_invalid_tree_is_refused_and_the_live_tree_keeps_answering(asterisk, start_controller, tmp_path):
    menus = copy_tree(tmp_path)
    ctl = start_controller(**tree_env(menus))
    edit(menus / "main.yaml", "goto: operator\n", "goto: no_such_node\n")

    status, body = reload(asterisk)
    record = asyncio.run(place_call(asterisk, CallRequest(dnis="100", keys="0", delay_s=3, hold_s=4)))

    assert status == 422 and body["ok"] is False
    assert any("refers to unknown node 'no_such_node'" in p for p in body["problems"])
    assert ctl.health()["tree_generation"] == 1
    assert record.queue is not None and record.queue.name == "support"
    assert "configuration NOT reloaded" in ctl.log_path.read_text()


def test_exception_inside_a_session_sends_the_caller_to_the_fallback_queue(asterisk, start_controller, tmp_path):
    menus = copy_tree(tmp_path)
    # Valid at load time, fails while the call runs (as a bad CRM value would make a template fail).
    edit(menus / "main.yaml", 'reason: "caller asked for an operator"',
         'reason: "{{ (caller.number | length) // 0 }}"')
    ctl = start_controller(**tree_env(menus))

    record = asyncio.run(place_call(asterisk, CallRequest(dnis="100", keys="0", delay_s=3, hold_s=4)))

    assert record.answered
    assert record.variables["IVR_FALLBACK"] == "controller-error"
    assert record.queue is not None and record.queue.name == asterisk.queues.fallback
    log = ctl.log_path.read_text()
    # The admin's template, not our code: its name and Jinja's words, one line, no traceback.
    assert (f"call {record.uniqueid}: template operator_standard.reason failed: ZeroDivisionError: integer division "
            "or modulo by zero (at node 'operator_standard'); sending the caller to the fallback queue") in log
    assert "Traceback" not in log
