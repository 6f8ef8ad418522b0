"""Business hours and holidays: is the contact centre open at this moment?"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: Opening spans by day ("mon" ... "sun"); a day that is absent or empty is closed.
Week = dict[str, tuple[tuple[dt.time, dt.time], ...]]
_SPAN = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")


class HoursError(ValueError):
    pass


def parse_spans(text: str) -> tuple[tuple[dt.time, dt.time], ...]:
    """``"09:00-13:00, 14:00-20:00"`` or ``"closed"`` -> spans; raises HoursError with the reason."""
    text = str(text).strip().lower()
    if text in ("closed", ""):
        return ()
    spans = []
    for part in text.split(","):
        m = _SPAN.match(part.strip())
        if not m:
            raise HoursError(f"{part.strip()!r} is not HH:MM-HH:MM or 'closed'")
        h1, m1, h2, m2 = map(int, m.groups())
        if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h2 == 24 and m2):
            raise HoursError(f"{part.strip()!r} is not a time of day")
        start = dt.time(h1, m1)
        end = dt.time.max if h2 == 24 else dt.time(h2, m2)
        if end <= start:
            raise HoursError(f"{part.strip()!r} ends before it starts")
        spans.append((start, end))
    return tuple(spans)


@dataclass(frozen=True)
class BusinessHours:
    timezone: str = "UTC"
    week: Week = field(default_factory=dict)
    holidays: frozenset[dt.date] = frozenset()

    def local(self, moment: dt.datetime) -> dt.datetime:
        return moment.astimezone(ZoneInfo(self.timezone))

    def is_open(self, moment: dt.datetime) -> bool:
        if not self.week:  # no calendar configured: always open
            return True
        local = self.local(moment)
        if local.date() in self.holidays:
            return False
        now = local.time()
        return any(start <= now < end for start, end in self.week.get(DAYS[local.weekday()], ()))

    def next_opening(self, moment: dt.datetime) -> dt.datetime | None:
        """None when open at ``moment``; else when it next opens (within 31 days), or None if never."""
        if self.is_open(moment):
            return None
        local = self.local(moment)
        for offset in range(32):
            day = local.date() + dt.timedelta(days=offset)
            if day in self.holidays:
                continue
            for start, _end in sorted(self.week.get(DAYS[day.weekday()], ())):
                opening = dt.datetime.combine(day, start, tzinfo=local.tzinfo)
                if opening > local:
                    return opening
        return None
