"""Who is calling: the caller-ID lookup the voice, USSD and SMS drivers call at session start.

The first fraction of a second of a call decides the greeting, the language, the
queue and the priority, so the lookup has a hard time budget, and it never raises:
a slow, broken or unreachable CRM gives ``status="unavailable"`` with the reason,
and the caller gets the generic menu instead of silence. A TTL cache answers repeat
callers without the CRM, and a circuit breaker stops the budget being spent on a
CRM that is known to be down.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

from ivr.crm.breaker import CircuitBreaker
from ivr.crm.cache import DEFAULT_MAX_ENTRIES, TtlCache
from ivr.crm.customer import Customer
from ivr.crm.directory_ports import NumberDirectory
from ivr.crm.errors import CrmError
from ivr.crm.numbers import normalise
from ivr.deadlines import within

log = logging.getLogger(__name__)

#: The whole lookup, CRM round trip included; the caller hears nothing until it ends.
DEFAULT_BUDGET_S = 0.3
DEFAULT_CACHE_TTL_S = 60.0
#: "Not a customer" is kept briefly: a customer created during a call is found soon after.
DEFAULT_NEGATIVE_TTL_S = 5.0

Status = Literal["found", "unknown", "no-caller-id", "unavailable"]

_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True)
class LookupResult:
    """The answer for one call. ``customer`` is set only when ``status == "found"``."""

    status: Status
    customer: Customer | None
    number: str | None  # E.164; None when the caller ID is withheld or unusable
    latency_ms: float
    error: str | None = None  # why the CRM could not answer (status "unavailable")
    cached: bool = False

    def customer_fields(self) -> Mapping[str, Any]:
        """``CallerContext.customer`` for this call: the template fields, or empty."""
        return _EMPTY if self.customer is None else self.customer.template_fields()


class CrmLookup:
    def __init__(self, directory: NumberDirectory, *, budget_s: float = DEFAULT_BUDGET_S,
                 cache_ttl_s: float = DEFAULT_CACHE_TTL_S, negative_ttl_s: float = DEFAULT_NEGATIVE_TTL_S,
                 cache_max_entries: int = DEFAULT_MAX_ENTRIES, breaker: CircuitBreaker | None = None,
                 clock: Callable[[], float] = time.monotonic, default_region: str = "RU") -> None:
        self.directory = directory
        self.budget_s = budget_s
        self.cache_ttl_s = cache_ttl_s
        self.negative_ttl_s = negative_ttl_s
        self.breaker = breaker or CircuitBreaker(clock=clock)
        self.default_region = default_region
        self._clock = clock
        self._cache: TtlCache[str, Customer | None] = TtlCache(max_entries=cache_max_entries, clock=clock)

    async def lookup(self, raw_caller_id: str | None) -> LookupResult:
        """Never raises (except cancellation, which belongs to the caller hanging up)."""
        started = self._clock()

        def result(status: Status, customer: Customer | None = None, error: str | None = None,
                   cached: bool = False) -> LookupResult:
            return LookupResult(status, customer, number, (self._clock() - started) * 1000, error, cached)

        number = normalise(raw_caller_id, self.default_region)
        if number is None:
            return result("no-caller-id")
        hit = self._cache.get(number)
        if hit is not None:
            return result("unknown" if hit.value is None else "found", hit.value, cached=True)
        if not self.breaker.allow():
            return result("unavailable", error=(
                f"CRM circuit open after {self.breaker.consecutive_failures} consecutive failures; "
                f"next try in {self.breaker.retry_in_s():.1f} s"))
        try:
            async with within(self.budget_s):
                customer = await self.directory.by_number(number)
            if customer is not None and not isinstance(customer, Customer):
                raise TypeError(f"directory returned {type(customer).__name__}, not a Customer")
        except TimeoutError:
            return self._failed(result, f"CRM did not answer within {self.budget_s * 1000:.0f} ms")
        except CrmError as exc:
            return self._failed(result, f"{exc.error_id}: {exc}")
        except Exception as exc:  # a bug in an adapter must not cost the caller their call
            log.exception("CRM lookup for %s failed unexpectedly", number)
            return self._failed(result, f"{type(exc).__name__}: {exc}")
        except BaseException:
            self.breaker.release()
            raise
        self.breaker.record_success()
        ttl = self.cache_ttl_s if customer is not None else self.negative_ttl_s
        self._cache.put(number, customer, ttl)
        return result("unknown" if customer is None else "found", customer)

    def forget(self, number: str) -> None:
        """Drop a cached answer (after an action changed the customer); ``number`` in any format."""
        e164 = normalise(number, self.default_region)
        if e164 is not None:
            self._cache.forget(e164)

    def _failed(self, result: Callable[..., LookupResult], error: str) -> LookupResult:
        self.breaker.record_failure()
        log.warning("CRM lookup unavailable: %s (breaker %s)", error, self.breaker.state.value)
        return result("unavailable", error=error)
