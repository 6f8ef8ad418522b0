"""Which file Asterisk plays for a prompt part, on the host side and as Asterisk sees it.

The project's ``sounds/`` directory is bind-mounted read-only into the Asterisk root (and
mounted at the same path in Docker), so the controller checks files on its side and
hands Asterisk the absolute path on the other. Order for a text prompt: a recorded file
``sounds/<lang>/<prompt_id>.*`` first, then the generated ``sounds/generated/<lang>/<key>.wav``
(synthesised now if ``ivr sounds build`` has not made it yet).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ivr.voice.tts import Synthesiser

SOUND_EXTENSIONS = (".wav", ".gsm", ".ulaw", ".alaw", ".sln")
ASTERISK_SOUNDS_DIR = "/var/lib/ivr/sounds"


@dataclass(frozen=True)
class PromptFiles:
    project_dir: Path
    asterisk_dir: str = ASTERISK_SOUNDS_DIR

    @property
    def synthesiser(self) -> Synthesiser:
        return Synthesiser(self.project_dir / "generated")

    def _asterisk_path(self, file: Path) -> str:
        rel = file.relative_to(self.project_dir).with_suffix("")
        return f"{self.asterisk_dir}/{rel.as_posix()}"

    def _find(self, language: str, name: str) -> Path | None:
        for ext in SOUND_EXTENSIONS:
            candidate = self.project_dir / language / f"{name}{ext}"
            if candidate.exists():
                return candidate
        return None

    def recorded(self, language: str, prompt_id: str) -> str | None:
        found = self._find(language, prompt_id)
        return self._asterisk_path(found) if found else None

    def sound(self, language: str, name: str) -> str:
        """A named sound: the project's own file, else Asterisk's core sound of that name."""
        found = self._find(language, name)
        return self._asterisk_path(found) if found else name

    async def text(self, language: str, text: str) -> str:
        return self._asterisk_path(await self.synthesiser.synthesise_async(language, text))
