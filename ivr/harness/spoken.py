"""The caller robot's voice: any audio file made into 16 kHz signed linear that Asterisk plays.

Recognition needs wideband audio (docs/speech.md: the same words band-limited to 8 kHz
are recognised 2 times in 5, at 16 kHz 5 in 5), so the robot's speech stays slin16 from
the file to the recogniser: a ``.sln16`` file played by the robot half of a Local channel.
The file goes into the Asterisk root's own sounds directory (never the checkout).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

from ivr.errors import IvrError
from ivr.settings import Settings

SPOKEN_DIR = "var/lib/asterisk/sounds/ivr-spoken"  # inside the root; Asterisk sees /<SPOKEN_DIR>


def prepare_speech(settings: Settings, source: Path) -> str:
    """Convert ``source`` and return the name Asterisk plays it by (no extension)."""
    if not source.is_file():
        raise IvrError(f"no audio file at {source}", hint="give a WAV file, e.g. from espeak-ng --stdout")
    if shutil.which("sox") is None:
        raise IvrError("sox is not installed", hint="apt-get install sox")
    digest = hashlib.sha1(source.read_bytes()).hexdigest()[:16]
    target_dir = settings.asterisk.root_path() / SPOKEN_DIR
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / f"{digest}.sln16"
    if not target.exists():
        tmp = target.with_suffix(".tmp")
        proc = subprocess.run(["sox", "-q", str(source), "-t", "raw", "-r", "16000", "-c", "1", "-b", "16",
                               "-e", "signed-integer", "-L", str(tmp)], capture_output=True, text=True, timeout=60)
        if proc.returncode != 0:
            tmp.unlink(missing_ok=True)
            raise IvrError(f"sox could not convert {source}: {proc.stderr.strip()}")
        tmp.rename(target)
    return f"/{SPOKEN_DIR}/{target.stem}"
