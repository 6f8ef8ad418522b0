"""The one place that builds adapters from settings and wires them together.

``ivr serve`` runs what :func:`build_controller` returns; the admin commands (validate,
simulate, sounds) load the tree through :func:`load_menu_tree` so every tool sees the
same files the running controller does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ivr.crm.demo import DemoActions
from ivr.flow.loader import load_tree
from ivr.flow.model import Tree
from ivr.flow.store import TreeStore
from ivr.journey.memory import MemoryJourney
from ivr.settings import Settings
from ivr.voice.controller import CallController, minimal_flow
from ivr.voice.engine_flow import EngineFlow
from ivr.voice.prompt_files import PromptFiles
from ivr.voice.speaker import Speaker

CORE_SOUNDS = "usr/share/asterisk/sounds"


def menu_paths(settings: Settings) -> tuple[Path, Path]:
    return settings.path(settings.menus.dir), settings.path(settings.menus.numbers)


def core_sound_dirs(settings: Settings) -> list[Path]:
    """Asterisk's own sounds, so a menu may name `beep` or `vm-goodbye` (local root if built)."""
    candidate = settings.asterisk.root_path() / CORE_SOUNDS
    return [candidate] if candidate.is_dir() else []


def load_menu_tree(settings: Settings, menus: Path | None = None, numbers: Path | None = None) -> Tree:
    default_menus, default_numbers = menu_paths(settings)
    return load_tree(menus or default_menus, numbers=numbers or default_numbers,
                     sound_dirs=[settings.home / "sounds"], extra_sound_dirs=core_sound_dirs(settings))


@dataclass
class Controller:
    trees: TreeStore
    call_handler: CallController
    selftest_handler: CallController
    journey: MemoryJourney


def build_controller(settings: Settings) -> Controller:
    menus, numbers = menu_paths(settings)
    trees = TreeStore(lambda: load_menu_tree(settings), watched=[menus, numbers])
    journey = MemoryJourney()
    speaker = Speaker(PromptFiles(settings.home / "sounds", settings.prompts.asterisk_dir))
    flow = EngineFlow(trees, speaker, DemoActions(), journey)
    return Controller(trees, CallController(flow), CallController(minimal_flow), journey)
