"""The garbage collector's settings for a serving process.

A USSD request or a call step allocates a few thousand short-lived objects. With
CPython's default first threshold (700 allocations) the young generation is collected
several times per request, and each collection that reaches the older generations walks
every live session, cached engine walk and loaded menu tree. Measured on the USSD bench
(``bench/bench_ussd.py``), that was a quarter of the gateway's time.

So a serving process, once built:

- collects once and **freezes** what exists (the menu trees, templates, CRM and routing
  tables): those objects live as long as the process and never need walking again;
- raises the first threshold, so young collections come every
  :data:`GEN0_THRESHOLD` allocations instead of 700. Cycles are still collected; memory
  held by garbage waits a little longer (a young generation of some MB).

The threshold is a trade of CPU against pause length. With 1,000 USSD sessions in flight,
10,000 collected 27 times per 3,000 requests (gen1 twice), 30-45 µs of a request's CPU,
pauses up to 25 ms; 50,000 collects 4 times, 15-25 µs, pauses up to 30-45 ms, which an
event loop serving calls and USSD can take; 200,000 collected at most once per 3,000
requests, but a young generation four times larger would pause the loop about four times
as long (``bench/RESULTS.md``).
"""

from __future__ import annotations

import gc

GEN0_THRESHOLD = 50_000


def tune_for_serving() -> None:
    """Freeze the objects built so far and raise the young-generation threshold."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, older, oldest)
