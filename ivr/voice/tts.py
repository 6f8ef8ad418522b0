"""Text prompts made audible: espeak-ng speaks, sox turns it into 8 kHz mono for Asterisk.

Files are keyed by a hash of (voice, text), so a prompt is synthesised once and every call
after that plays the cached file. A recorded file named after the prompt id always wins
over a generated one (see :class:`ivr.voice.prompt_files.PromptFiles`).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ivr.errors import IvrError

# espeak-ng voice per prompt language; anything else falls back to the language code itself.
VOICES = {"en": "en-us", "ru": "ru"}
SPEED_WPM = 150


class TtsFailed(IvrError):
    error_id = "tts-failed"


@dataclass(frozen=True)
class Synthesiser:
    """Writes ``<out_dir>/<lang>/<key>.wav`` (8 kHz, mono, 16-bit) for a text."""

    out_dir: Path

    def key(self, language: str, text: str) -> str:
        voice = VOICES.get(language, language)
        return hashlib.sha1(f"{voice}\n{SPEED_WPM}\n{text}".encode()).hexdigest()[:20]

    def path(self, language: str, text: str) -> Path:
        return self.out_dir / language / f"{self.key(language, text)}.wav"

    def synthesise(self, language: str, text: str) -> Path:
        target = self.path(language, text)
        if target.exists():
            return target
        for tool in ("espeak-ng", "sox"):
            if shutil.which(tool) is None:
                raise TtsFailed(f"{tool} is not installed", hint="apt-get install espeak-ng sox")
        target.parent.mkdir(parents=True, exist_ok=True)
        voice = VOICES.get(language, language)
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, suffix=".wav")
        os.close(fd)
        try:
            # The text goes in on stdin: as an argument, a prompt starting with "-" would be an option.
            speak = subprocess.run(["espeak-ng", "-v", voice, "-s", str(SPEED_WPM), "--stdout"],
                                   input=text.encode("utf-8"), capture_output=True, timeout=30)
            if speak.returncode != 0 or not speak.stdout:
                raise TtsFailed(f"espeak-ng ({voice}) failed: {speak.stderr.decode(errors='replace').strip()}")
            conv = subprocess.run(["sox", "-q", "-t", "wav", "-", "-r", "8000", "-c", "1", "-b", "16", tmp_name],
                                  input=speak.stdout, capture_output=True, timeout=30)
            if conv.returncode != 0:
                raise TtsFailed(f"sox failed: {conv.stderr.decode(errors='replace').strip()}")
            os.chmod(tmp_name, 0o644)
            os.replace(tmp_name, target)  # atomic: a concurrent call never plays half a file
        finally:
            if os.path.exists(tmp_name):
                os.unlink(tmp_name)
        return target

    async def synthesise_async(self, language: str, text: str) -> Path:
        target = self.path(language, text)
        if target.exists():
            return target
        return await asyncio.to_thread(self.synthesise, language, text)
