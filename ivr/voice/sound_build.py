"""`ivr sounds build`: render every static text prompt of the tree into audio.

A new menu is audible at once, without waiting for a call to synthesise its prompts.
Prompts whose text depends on the caller (templates) are synthesised on first use and
cached the same way. A recorded file ``sounds/<lang>/<prompt_id>.*`` wins: its generated
twin is not made.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass

from ivr.config.templates import TextTemplate
from ivr.flow.model import Tree
from ivr.flow.prompts import Prompt
from ivr.voice.prompt_files import PromptFiles
from ivr.voice.speaker import CURRENCY_WORDS, MINUS


@dataclass(frozen=True)
class BuildReport:
    generated: int
    cached: int
    recorded: int
    dynamic: int


def prompts_of(tree: Tree) -> Iterator[Prompt]:
    """Every Prompt held anywhere in the tree's nodes (options, retries and confirmations too)."""
    seen: set[int] = set()

    def walk(value: object) -> Iterator[Prompt]:
        if isinstance(value, Prompt):
            if id(value) not in seen:
                seen.add(id(value))
                yield value
        elif isinstance(value, (tuple, list)):
            for item in value:
                yield from walk(item)
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            for f in dataclasses.fields(value):
                yield from walk(getattr(value, f.name, None))

    for node in tree.nodes.values():
        yield from walk(node)


def static_texts(tree: Tree) -> Iterator[tuple[str, str, str]]:
    """(language, prompt_id, text) of every text part known before the call."""
    for prompt in prompts_of(tree):
        for language, parts in prompt.parts.items():
            for part in parts:
                if isinstance(part, TextTemplate) and part.is_static and part.source.strip():
                    yield language, prompt.prompt_id, part.render({})
    for by_language in CURRENCY_WORDS.values():
        for language, (major, minor) in by_language.items():
            for word in (*major, *minor):
                yield language, "", word
    for language, word in MINUS.items():
        yield language, "", word


def dynamic_prompt_count(tree: Tree) -> int:
    return sum(1 for p in prompts_of(tree) for parts in p.parts.values() for part in parts
               if isinstance(part, TextTemplate) and not part.is_static)


def build_sounds(tree: Tree, files: PromptFiles, languages: tuple[str, ...] = ()) -> BuildReport:
    synth = files.synthesiser
    generated = cached = recorded = 0
    for language, prompt_id, text in dict.fromkeys(static_texts(tree)):
        if languages and language not in languages:
            continue
        if prompt_id and files.recorded(language, prompt_id):
            recorded += 1
            continue
        if synth.path(language, text).exists():
            cached += 1
            continue
        synth.synthesise(language, text)
        generated += 1
    return BuildReport(generated, cached, recorded, dynamic_prompt_count(tree))
