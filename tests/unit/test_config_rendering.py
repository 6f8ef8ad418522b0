"""config/asterisk and dialplan/ render into a complete Asterisk configuration."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ivr.errors import ConfigError
from ivr.runtime.render import render_config, render_text
from ivr.settings import load_settings
from ivr.voice import channel_vars

REPO = Path(__file__).resolve().parents[2]


def test_every_placeholder_is_filled(tmp_path):
    files = render_config(load_settings(env={}), tmp_path)

    assert files
    for path in files:
        assert "{{" not in path.read_text(), path


def test_settings_reach_the_rendered_files(tmp_path):
    settings = load_settings(env={"IVR_AMI_PORT": "6038", "IVR_AGI_PORT": "4999"})
    render_config(settings, tmp_path)

    assert "port = 6038" in (tmp_path / "manager.conf").read_text()
    assert "IVR_AGI_URLS = agi://127.0.0.1:4999\n" in (tmp_path / "extensions.conf").read_text()


def test_several_controllers_become_one_failover_list_in_the_dialplan(tmp_path):
    settings = load_settings(env={"IVR_AGI_CONTROLLERS": "10.0.0.1:4573, 10.0.0.2:4573"})
    render_config(settings, tmp_path)

    assert "IVR_AGI_URLS = agi://10.0.0.1:4573|agi://10.0.0.2:4573\n" in (tmp_path / "extensions.conf").read_text()


def test_unknown_placeholder_names_file_and_line():
    with pytest.raises(ConfigError, match=r"^x.conf:2: unknown placeholder \{\{ nope \}\}"):
        render_text("a\nb={{ nope }}\n", {"ami_port": 1}, source="x.conf")


def test_rendering_replaces_stale_files_from_an_earlier_run(tmp_path):
    (tmp_path / "cdr_pgsql.conf").write_text("stale")
    render_config(load_settings(env={}), tmp_path)

    assert not (tmp_path / "cdr_pgsql.conf").exists()


def test_every_dialplan_include_exists():
    ext = (REPO / "config/asterisk/extensions.conf").read_text()
    includes = re.findall(r'^#include "dialplan/([^"]+)"', ext, re.MULTILINE)

    assert includes
    assert sorted(includes) == sorted(p.name for p in (REPO / "dialplan").glob("*.conf"))


def test_dialplan_uses_only_declared_channel_variables():
    used = set()
    for path in (REPO / "dialplan").glob("*.conf"):
        used |= set(re.findall(r"\bIVR_[A-Z_]+\b", path.read_text()))
    used |= set(re.findall(r"\bIVR_[A-Z_]+\b", (REPO / "config/asterisk/extensions.conf").read_text()))

    assert used - channel_vars.ALL == set()


def test_every_declared_channel_variable_is_used_by_the_dialplan():
    text = "".join(p.read_text() for p in (REPO / "dialplan").glob("*.conf"))
    text += (REPO / "config/asterisk/extensions.conf").read_text()

    assert {v for v in channel_vars.ALL if v not in text} == set()


def test_modules_conf_loads_nothing_implicitly():
    text = (REPO / "config/asterisk/modules.conf").read_text()

    assert re.search(r"^autoload = no$", text, re.MULTILINE)


def test_several_controllers_applications_become_the_dialplans_stasis_list(tmp_path):
    settings = load_settings(env={"IVR_ARI_APPS": "ivr-1, ivr-2"})
    render_config(settings, tmp_path)

    assert "IVR_ARI_APPS = ivr-1|ivr-2\n" in (tmp_path / "extensions.conf").read_text()
