"""Context tokens: opaque, unguessable, signed, expiring, and checked before the store is read."""

from __future__ import annotations

import re
from typing import Any

import pytest

from ivr.backoff import Backoff
from ivr.journey.errors import RequestInvalid, StoreUnavailable, TokenExpired, TokenInvalid
from ivr.journey.memory import MemoryJourney
from ivr.journey.spool import SpooledJourney
from ivr.journey.tokens import NAMESPACE, ContextClaim, TokenService

SECRET = b"s" * 32
TTL_S = 600
# RFC 3261 `token`: a header value made of these needs no quoting.
SIP_TOKEN = re.compile(r"[A-Za-z0-9.!%*_+`'~-]+")


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.25) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class SpyKv:
    """A kv store that counts reads, to prove some tokens never reach it."""

    def __init__(self, inner: MemoryJourney) -> None:
        self.inner = inner
        self.reads = 0

    async def kv_get(self, namespace: str, key: str) -> dict[str, Any] | None:
        self.reads += 1
        return await self.inner.kv_get(namespace, key)

    async def kv_put(self, namespace: str, key: str, value: dict[str, Any], ttl_s: float) -> None:
        await self.inner.kv_put(namespace, key, value, ttl_s)

    async def kv_delete(self, namespace: str, key: str) -> None:
        await self.inner.kv_delete(namespace, key)


CLAIM = ContextClaim("cust-42", "1700000000.17", "roaming", 2, "pressed 2 then 0", "voice", journey_since=1_699_900_000.0)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def kv(clock: FakeClock) -> SpyKv:
    return SpyKv(MemoryJourney(clock=clock))


@pytest.fixture
def tokens(kv: SpyKv, clock: FakeClock) -> TokenService:
    return TokenService(SECRET, kv, ttl_s=TTL_S, clock=clock)


def replace_part(token: str, index: int, value: str) -> str:
    parts = token.split(".")
    parts[index] = value
    return ".".join(parts)


async def test_an_issued_token_resolves_to_its_claim_stamped_with_times(tokens: TokenService, clock: FakeClock) -> None:
    token = await tokens.issue(CLAIM)

    claim = await tokens.resolve(token)

    assert claim == ContextClaim("cust-42", "1700000000.17", "roaming", 2, "pressed 2 then 0", "voice",
                                 1_699_900_000.0, issued_at=clock.now, expires_at=1_700_000_000 + TTL_S)


async def test_a_token_fits_a_sip_header_value_unquoted(tokens: TokenService) -> None:
    token = await tokens.issue(CLAIM)

    assert SIP_TOKEN.fullmatch(token)
    assert len(token) == 77


async def test_a_token_carries_none_of_the_claim(tokens: TokenService) -> None:
    token = await tokens.issue(CLAIM)

    for value in ("cust-42", "roaming", "1700000000.17", "pressed"):
        assert value not in token


async def test_the_same_claim_gets_a_different_token_each_time(tokens: TokenService) -> None:
    assert await tokens.issue(CLAIM) != await tokens.issue(CLAIM)


async def test_the_claim_is_kept_in_the_token_namespace_until_the_token_expires(
        tokens: TokenService, kv: SpyKv, clock: FakeClock) -> None:
    token_id = (await tokens.issue(CLAIM)).split(".")[0]
    clock.now = 1_700_000_000 + TTL_S

    assert await kv.inner.kv_get(NAMESPACE, token_id) is None


async def test_a_forged_signature_is_invalid(tokens: TokenService) -> None:
    token = replace_part(await tokens.issue(CLAIM), 2, "A" * 43)

    with pytest.raises(TokenInvalid, match="bad signature"):
        await tokens.resolve(token)


async def test_a_tampered_expiry_is_invalid(tokens: TokenService) -> None:
    token = await tokens.issue(CLAIM)
    later = str(int(token.split(".")[1]) + 86400)

    with pytest.raises(TokenInvalid, match="bad signature"):
        await tokens.resolve(replace_part(token, 1, later))


async def test_a_tampered_id_is_invalid(tokens: TokenService) -> None:
    token = await tokens.issue(CLAIM)
    other_id = ("B" if token[0] != "B" else "C") + token[1:22]

    with pytest.raises(TokenInvalid, match="bad signature"):
        await tokens.resolve(replace_part(token, 0, other_id))


async def test_a_token_signed_with_another_secret_is_invalid(kv: SpyKv, clock: FakeClock) -> None:
    theirs = TokenService(b"t" * 32, kv, ttl_s=TTL_S, clock=clock)
    ours = TokenService(SECRET, kv, ttl_s=TTL_S, clock=clock)

    with pytest.raises(TokenInvalid, match="bad signature"):
        await ours.resolve(await theirs.issue(CLAIM))


async def test_an_expired_token_raises_expired(tokens: TokenService, clock: FakeClock) -> None:
    token = await tokens.issue(CLAIM)
    clock.now = 1_700_000_000 + TTL_S

    with pytest.raises(TokenExpired):
        await tokens.resolve(token)


async def test_a_well_signed_token_unknown_to_the_store_is_invalid(kv: SpyKv, clock: FakeClock) -> None:
    issued = await TokenService(SECRET, kv, ttl_s=TTL_S, clock=clock).issue(CLAIM)
    wiped = TokenService(SECRET, MemoryJourney(clock=clock), ttl_s=TTL_S, clock=clock)

    with pytest.raises(TokenInvalid, match="unknown"):
        await wiped.resolve(issued)


async def test_a_bad_signature_is_refused_before_the_store_is_read(tokens: TokenService, kv: SpyKv) -> None:
    token = replace_part(await tokens.issue(CLAIM), 2, "A" * 43)

    with pytest.raises(TokenInvalid):
        await tokens.resolve(token)
    assert kv.reads == 0


async def test_an_expired_token_is_refused_before_the_store_is_read(
        tokens: TokenService, kv: SpyKv, clock: FakeClock) -> None:
    token = await tokens.issue(CLAIM)
    clock.now += TTL_S

    with pytest.raises(TokenExpired):
        await tokens.resolve(token)
    assert kv.reads == 0


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "A" * 22 + ".0123.A" + "A" * 42,
                                   "A" * 22 + ".1700000600." + "A" * 43 + ".x", "A" * 22 + "=.1700000600." + "A" * 43,
                                   " " + "A" * 22 + ".1700000600." + "A" * 43, "Ä" * 22 + ".1700000600." + "A" * 43])
async def test_a_malformed_token_is_invalid(tokens: TokenService, token: str) -> None:
    with pytest.raises(TokenInvalid, match="malformed"):
        await tokens.resolve(token)


async def test_a_token_error_shows_only_the_start_of_the_token(tokens: TokenService) -> None:
    token = replace_part(await tokens.issue(CLAIM), 2, "A" * 43)

    with pytest.raises(TokenInvalid) as caught:
        await tokens.resolve(token)
    assert token not in str(caught.value)
    assert caught.value.token_prefix == token[:8]


def test_a_secret_shorter_than_32_bytes_is_refused(kv: SpyKv) -> None:
    with pytest.raises(RequestInvalid, match="32"):
        TokenService(b"short", kv)


class AwayStore(MemoryJourney):
    """A store whose kv writes fail while ``down``: the journey store during an outage."""

    down = True

    async def kv_put(self, namespace: str, key: str, value: dict[str, Any], ttl_s: float) -> None:
        if self.down:
            raise StoreUnavailable("test", "kv put", ConnectionError("the database restarts"))
        await super().kv_put(namespace, key, value, ttl_s)


async def test_a_token_issued_while_the_store_is_away_resolves_once_its_spooled_claim_is_stored() -> None:
    store = AwayStore()
    spool = SpooledJourney(store, backoff=Backoff(initial_s=0.01, maximum_s=0.01))
    tokens = TokenService(SECRET, spool, ttl_s=TTL_S, spool=spool)

    token = await tokens.issue(CLAIM)
    with pytest.raises(TokenInvalid, match="unknown"):
        await tokens.resolve(token)
    store.down = False
    await spool.drained()

    assert (await tokens.resolve(token)).interaction == CLAIM.interaction


async def test_without_a_spool_a_token_is_not_issued_while_the_store_is_away() -> None:
    tokens = TokenService(SECRET, AwayStore(), ttl_s=TTL_S)

    with pytest.raises(StoreUnavailable):
        await tokens.issue(CLAIM)
