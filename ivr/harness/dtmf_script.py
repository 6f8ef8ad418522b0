"""The DTMF script a test caller follows: digits with pauses.

``"1w2,#"`` = press 1, wait half a second, press 2, wait a second, press #. The same
script drives both transports: SendDTMF on the caller robot, RTP events from SIPp.
"""

from __future__ import annotations

from dataclasses import dataclass

from ivr.errors import IvrError

DIGITS = frozenset("0123456789*#ABCD")
PAUSES = {"w": 0.5, "W": 1.0, ",": 1.0}
INTER_DIGIT_S = 0.25


@dataclass(frozen=True)
class Press:
    digit: str


@dataclass(frozen=True)
class Pause:
    seconds: float


Step = Press | Pause


def parse(script: str) -> tuple[Step, ...]:
    steps: list[Step] = []
    for pos, char in enumerate(script.replace(" ", "")):
        if char in DIGITS:
            steps.append(Press(char))
        elif char in PAUSES:
            steps.append(Pause(PAUSES[char]))
        else:
            raise IvrError(
                f"DTMF script {script!r}: {char!r} at position {pos + 1} is not a key or a pause",
                hint="use digits 0-9 * # A-D, w (0.5 s), W or , (1 s)", error_id="bad-dtmf-script")
    return tuple(steps)


def digits_of(steps: tuple[Step, ...]) -> str:
    return "".join(s.digit for s in steps if isinstance(s, Press))


def as_senddtmf(steps: tuple[Step, ...]) -> str:
    """The same script in SendDTMF's own syntax (w = 0.5 s, W = 1 s)."""
    out = []
    for step in steps:
        if isinstance(step, Press):
            out.append(step.digit)
        else:
            out.append("w" * round(step.seconds / 0.5))
    return "".join(out)


def duration(steps: tuple[Step, ...]) -> float:
    return sum(s.seconds if isinstance(s, Pause) else INTER_DIGIT_S for s in steps)
