"""The admin commands as an admin types them: exit codes and the first lines they print."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ivr.cli import main

REPO = Path(__file__).resolve().parents[2]
BROKEN = REPO / "tests/data/menus_broken"


def test_validate_passes_the_demo_tree(capsys):
    assert main(["validate"]) == 0
    assert capsys.readouterr().out.startswith("ok: ")


def test_validate_prints_path_line_col_and_exits_1(capsys):
    assert main(["validate", str(BROKEN / "bad_key.yaml")]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"{BROKEN / 'bad_key.yaml'}:10:15: key '10' in option 1 of node 'main'")


def test_validate_never_prints_a_traceback_on_garbage(tmp_path, capsys):
    (tmp_path / "x.yaml").write_bytes(b"\xff\xfe\x00nodes: [\n")
    assert main(["validate", str(tmp_path / "x.yaml")]) == 1
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err


def test_simulate_json_ends_at_the_operator_queue(capsys):
    assert main(["simulate", "--to", "100", "--keys", "0", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["outcome"]["kind"] == "routed" and result["outcome"]["queue"] == "support"


def test_simulate_with_a_profile_greets_the_customer_by_name(capsys):
    assert main(["simulate", "--profile", "vip", "--keys", "0"]) == 0
    assert "Anna" in capsys.readouterr().out


def test_graph_draws_mermaid_with_every_entry_number(capsys):
    assert main(["graph"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("flowchart TD") and "☎ 0611" in out


def test_diff_of_a_tree_with_itself_reports_no_change(capsys):
    assert main(["diff", str(REPO / "config/menus"), str(REPO / "config/menus"), "--exit-code"]) == 0
    assert "destination changed" not in capsys.readouterr().out


def test_diff_shows_a_moved_operator_queue_with_the_keys_to_reproduce_it(tmp_path, capsys):
    new = tmp_path / "menus"
    shutil.copytree(REPO / "config/menus", new)
    main_yaml = new / "main.yaml"
    main_yaml.write_text(main_yaml.read_text().replace(
        "  operator_standard:\n    type: route\n    queue: support", "  operator_standard:\n    type: route\n    queue: sales", 1))

    assert main(["diff", str(REPO / "config/menus"), str(new), "--exit-code"]) == 1
    out = capsys.readouterr().out
    assert "destination changed  [keys 0]" in out
    assert "new: queue sales (priority 0): caller asked for an operator" in out


def test_validate_also_checks_the_routing_rules(tmp_path, capsys):
    rules = tmp_path / "routing.yaml"
    rules.write_text("rules:\n  - name: x\n    queue: colections\n")

    assert main(["validate", str(REPO / "config/menus"), "--numbers", str(REPO / "config/numbers.yaml"),
                 "--routing", str(rules)]) == 1
    assert capsys.readouterr().out == (f"{rules}:3:12: queue 'colections' is not defined in queues.conf; "
                                       "did you mean 'collections'?\n")


def test_simulate_from_the_demo_debtor_goes_through_the_crm_and_the_routing_rules(capsys):
    assert main(["simulate", "--from", "+79992088812", "--to", "100", "--keys", "0"]) == 0
    out = capsys.readouterr().out
    assert "Hello, Ivan!" in out
    assert "[routing] routed to queue collections (priority 5)" in out and "rules: collections" in out


def test_simulate_json_carries_the_caller_and_the_routing_decision(capsys):
    assert main(["simulate", "--from", "+79992088812", "--to", "100", "--keys", "0", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["caller"] == {"status": "found", "number": "+79992088812", "journey_key": "C-208812"}
    assert (result["routing"]["queue"], result["routing"]["rules"]) == ("collections", ["collections"])


def test_after_an_action_changes_the_customer_the_menu_shows_them_as_they_are_now(capsys):
    assert main(["simulate", "--from", "79991234567", "--to", "100", "--keys", "3,1,1"]) == 0
    out = capsys.readouterr().out
    before, after = out.split("[action] service_off -> ok")
    assert "To turn off caller ID, press 1." in before
    assert "To turn on caller ID, press 1." in after


def test_a_reader_that_goes_away_ends_the_command_quietly(tmp_path):
    """`ivr report --json | head`: the pipe closes early; no BrokenPipeError traceback."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "ivr", "simulate", "--to", "100", "--keys", "0", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before the command writes
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141
    assert "Traceback" not in err and "BrokenPipeError" not in err


def test_validate_checks_the_ussd_and_sms_settings_too(tmp_path, monkeypatch, capsys):
    import shutil
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    shutil.copytree(repo / "config", tmp_path / "config")
    (tmp_path / "sounds").mkdir()
    ussd = tmp_path / "config" / "ussd.yaml"
    ussd.write_text(ussd.read_text().replace("  timeout_s: 180 ", "  timeout_s: 5 "))
    monkeypatch.setenv("IVR_HOME", str(tmp_path))

    assert main(["validate"]) == 1
    assert f"{ussd}:33:14: 'timeout_s' must be from 10 to 3600, got 5" in capsys.readouterr().out


def test_simulate_with_broken_routing_rules_says_so_without_a_traceback(tmp_path, monkeypatch, capsys):
    import shutil
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    shutil.copytree(repo / "config", tmp_path / "config")
    (tmp_path / "sounds").mkdir()
    (tmp_path / "config" / "routing.yaml").write_text("rules:\n  - name: broken\n    when: 'customer.segment =='\n")
    monkeypatch.setenv("IVR_HOME", str(tmp_path))

    assert main(["simulate", "--from", "+79992088812", "--to", "100", "--keys", "0"]) == 2
    err = capsys.readouterr().err
    assert "error: routing rules have problems" in err and "routing.yaml" in err and "Traceback" not in err


def test_validate_checks_the_wrapup_codes_too(tmp_path, monkeypatch, capsys):
    import shutil
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    shutil.copytree(repo / "config", tmp_path / "config")
    (tmp_path / "sounds").mkdir()
    wrapup = tmp_path / "config" / "wrapup.yaml"
    wrapup.write_text("default: [resolved]\nqueues:\n  collection: [paid]\n")
    monkeypatch.setenv("IVR_HOME", str(tmp_path))

    assert main(["validate"]) == 1
    assert f"{wrapup}:3:3: queue 'collection' is not in queues.conf" in capsys.readouterr().out
