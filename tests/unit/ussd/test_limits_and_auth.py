"""The per-number token bucket and the webhook's HMAC and IP checks, on their own."""

from __future__ import annotations

import ipaddress

from ivr.ussd.auth import peer_allowed, sign, signature_ok
from ivr.ussd.config import Auth, RateLimit
from ivr.ussd.ratelimit import TokenBucketLimiter
from tests.clock import FakeClock

SECRET = b"k" * 32


def test_a_burst_is_allowed_then_refused() -> None:
    limiter = TokenBucketLimiter(RateLimit(burst=3, per_minute=6), FakeClock())
    assert [limiter.allow("+7999") for _ in range(4)] == [True, True, True, False]


def test_the_bucket_refills_at_the_sustained_rate() -> None:
    clock = FakeClock()
    limiter = TokenBucketLimiter(RateLimit(burst=1, per_minute=6), clock)
    assert limiter.allow("+7999") and not limiter.allow("+7999")
    clock.advance(10)
    assert limiter.allow("+7999")


def test_numbers_have_buckets_of_their_own() -> None:
    limiter = TokenBucketLimiter(RateLimit(burst=1, per_minute=1), FakeClock())
    assert limiter.allow("+7999") and limiter.allow("+7888")


def test_a_burst_of_zero_turns_the_limit_off() -> None:
    limiter = TokenBucketLimiter(RateLimit(burst=0), FakeClock())
    assert all(limiter.allow("+7999") for _ in range(1000))


def test_the_buckets_are_bounded() -> None:
    clock = FakeClock()
    limiter = TokenBucketLimiter(RateLimit(burst=2, per_minute=60), clock, max_buckets=100)
    for n in range(1000):
        limiter.allow(f"+7{n}")
        clock.advance(0.01)
    assert len(limiter) <= 101


def test_the_right_signature_of_the_exact_body_passes() -> None:
    body = b"sessionId=1&text="
    assert signature_ok(Auth(secret=SECRET), body, sign(SECRET, body))


def test_a_wrong_or_missing_signature_fails() -> None:
    auth = Auth(secret=SECRET)
    assert not signature_ok(auth, b"a", sign(SECRET, b"b"))
    assert not signature_ok(auth, b"a", sign(b"x" * 32, b"a"))
    assert not signature_ok(auth, b"a", None)
    assert not signature_ok(auth, b"a", "sha256=ä")


def test_without_a_secret_no_signature_is_needed() -> None:
    assert signature_ok(Auth(), b"a", None)


def test_the_allow_list_admits_only_its_networks() -> None:
    auth = Auth(allow_from=(ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("::1")))
    assert peer_allowed(auth, "10.1.2.3") and peer_allowed(auth, "::1") and peer_allowed(auth, "::ffff:10.0.0.1")
    assert not peer_allowed(auth, "192.168.1.1") and not peer_allowed(auth, None) and not peer_allowed(auth, "x")


def test_without_an_allow_list_every_peer_is_admitted() -> None:
    assert peer_allowed(Auth(), "192.168.1.1")
