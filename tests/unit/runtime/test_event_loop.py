"""The event loop `ivr serve` runs on, as configured."""

from __future__ import annotations

import asyncio
import inspect

import pytest
import uvloop

from ivr.errors import ConfigError
from ivr.runtime.event_loop import loop_factory, run
from ivr.settings import load_settings


async def loop_class() -> type:
    return type(asyncio.get_running_loop())


def test_serve_runs_on_uvloop_by_default() -> None:
    settings = load_settings(env={})

    assert run(loop_class(), settings.runtime.event_loop) is uvloop.Loop


def test_the_standard_loop_is_one_setting_away() -> None:
    settings = load_settings(env={"IVR_RUNTIME_EVENT_LOOP": "asyncio"})

    assert run(loop_class(), settings.runtime.event_loop) is not uvloop.Loop


def test_an_unknown_event_loop_is_a_config_error_naming_the_choices() -> None:
    with pytest.raises(ConfigError, match="'trio' is not an event loop") as raised:
        loop_factory("trio")

    assert "uvloop, asyncio" in raised.value.hint


def test_a_refused_loop_leaves_no_coroutine_unawaited() -> None:
    main = loop_class()

    with pytest.raises(ConfigError):
        run(main, "twisted")

    assert inspect.getcoroutinestate(main) == inspect.CORO_CLOSED  # no "never awaited" warning later
