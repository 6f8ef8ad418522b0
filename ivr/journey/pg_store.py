"""The journey store on PostgreSQL: for several controllers behind one Asterisk, or across sites.

Same contract as the SQLite store (the shared suite runs against both). What differs:

Durability. Each append is one INSERT statement, so one transaction; PostgreSQL returns
from COMMIT after the WAL is flushed when ``synchronous_commit`` is ``on`` (or stronger).
A server or role configured with ``synchronous_commit = off`` would acknowledge commits it
can still lose, so :meth:`PgJourneyStore.open` checks the setting and, when it finds
``off``, opens the pool with ``synchronous_commit = on`` as a connection startup option
(a ``SET`` would not do: the pool's ``RESET ALL`` on release undoes it). ``local``,
``remote_write`` and ``remote_apply`` are kept: they are at least as durable locally.

Throughput. Concurrent appends run on separate pooled connections and PostgreSQL's own
group commit flushes their WAL together; a batch of events is sent as arrays in one round
trip (``unnest``), not one INSERT per event.

Time. Expiry and windows use this process's clock (injected), not the server's, so the
store behaves the same under test as SQLite; controllers sharing a database should run NTP.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Any, TypeVar

import asyncpg

from ivr.journey import codec
from ivr.journey.errors import StoreClosed, StoreUnavailable, WriteConflict
from ivr.journey.events import AGENT_CONNECTED
from ivr.journey.ports import Clock, KvPut, StampedEvent, check_range

T = TypeVar("T")

BACKEND = "postgresql"
COMMAND_TIMEOUT_S = 10.0  # a statement slower than this is a stuck database, not a slow one
CONFLICT_SQLSTATE = "IV409"  # journey_kv_expect: a conditional kv put found another value
SCHEMA_LOCK = 0x6976726A  # "ivrj": serialises schema creation between controllers starting together

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS journey_event (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key text NOT NULL,
    at double precision NOT NULL,
    channel text NOT NULL,
    interaction text NOT NULL,
    type text NOT NULL,
    data jsonb NOT NULL
);
CREATE INDEX IF NOT EXISTS journey_event_key_at ON journey_event (key, at, seq);
CREATE INDEX IF NOT EXISTS journey_event_interaction ON journey_event (interaction, at, seq);
CREATE INDEX IF NOT EXISTS journey_event_agent ON journey_event (key, at, seq) WHERE type = '{AGENT_CONNECTED}';
CREATE INDEX IF NOT EXISTS journey_event_at ON journey_event (at, seq);
CREATE OR REPLACE FUNCTION journey_event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'journey events are append-only';
END
$$;
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'journey_event_append_only') THEN
        CREATE TRIGGER journey_event_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON journey_event
        FOR EACH STATEMENT EXECUTE FUNCTION journey_event_append_only();
    END IF;
END
$$;
CREATE TABLE IF NOT EXISTS journey_kv (
    namespace text NOT NULL,
    key text NOT NULL,
    value jsonb NOT NULL,
    expires_at double precision NOT NULL,
    PRIMARY KEY (namespace, key)
);
CREATE INDEX IF NOT EXISTS journey_kv_expires ON journey_kv (expires_at);
CREATE OR REPLACE FUNCTION journey_kv_expect(c_ns text[], c_key text[], c_expect text[], now_ts float8)
RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    i int;
    live jsonb;
BEGIN
    FOR i IN 1 .. coalesce(array_length(c_ns, 1), 0) LOOP
        -- Held to the end of the transaction: a concurrent put of the same key waits, then
        -- finds this one's value (each query here sees what committed before it ran).
        PERFORM pg_advisory_xact_lock(hashtextextended(c_ns[i] || chr(31) || c_key[i], 0));
        SELECT value INTO live FROM journey_kv WHERE namespace = c_ns[i] AND key = c_key[i] AND expires_at > now_ts;
        IF (c_expect[i] = '' AND live IS NOT NULL)
           OR (c_expect[i] <> '' AND (live IS NULL OR live <> c_expect[i]::jsonb)) THEN
            RAISE EXCEPTION USING ERRCODE = '{CONFLICT_SQLSTATE}', MESSAGE = c_ns[i] || chr(31) || c_key[i];
        END IF;
    END LOOP;
    RETURN 1;
END
$$;
"""


def _put_and_append(*, checked: bool) -> str:
    """kv puts and events in one statement: one round trip, and atomic as every statement is.

    ``checked``: journey_kv_expect first checks the conditional puts ($11-$14); it raises
    CONFLICT_SQLSTATE, which aborts the whole statement, when one does not hold.
    """
    check = ("checked AS (SELECT journey_kv_expect($11::text[], $12::text[], $13::text[], $14::float8) AS ok), "
             if checked else "")
    gate = "WHERE (SELECT ok FROM checked) = 1" if checked else ""
    result = "ok FROM checked" if checked else "1"  # the check runs even with nothing to insert
    return f"""WITH {check}kv AS (
    INSERT INTO journey_kv (namespace, key, value, expires_at)
    SELECT p.namespace, p.key, p.value::jsonb, p.expires_at
    FROM unnest($1::text[], $2::text[], $3::text[], $4::float8[]) AS p(namespace, key, value, expires_at)
    {gate}
    ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at
), events AS (
    INSERT INTO journey_event (key, at, channel, interaction, type, data)
    SELECT $5, e.at, e.channel, e.interaction, e.type, e.data::jsonb
    FROM unnest($6::float8[], $7::text[], $8::text[], $9::text[], $10::text[]) WITH ORDINALITY
         AS e(at, channel, interaction, type, data, n)
    {gate}
    ORDER BY e.n
)
SELECT {result}"""


_PUT_AND_APPEND = _put_and_append(checked=False)
_PUT_AND_APPEND_IF = _put_and_append(checked=True)
_RECENT = """SELECT at, channel, interaction, type, data::text FROM journey_event
WHERE key = $1 AND at >= $2 ORDER BY at DESC, seq DESC LIMIT $3"""
_INTERACTION = """SELECT at, channel, interaction, type, data::text FROM journey_event
WHERE interaction = $1 ORDER BY at, seq"""
_BETWEEN = """SELECT key, at, channel, interaction, type, data::text FROM journey_event
WHERE at >= $1 AND at < $2 ORDER BY at, seq LIMIT $3"""
_LAST_AGENT = f"""SELECT data::text FROM journey_event
WHERE key = $1 AND type = '{AGENT_CONNECTED}' AND at >= $2
  AND jsonb_typeof(data -> 'agent') IN ('string', 'number') AND data ->> 'agent' <> ''
ORDER BY at DESC, seq DESC LIMIT 1"""
_KV_GET = "SELECT value::text FROM journey_kv WHERE namespace = $1 AND key = $2 AND expires_at > $3"
_KV_SCAN = """SELECT key, value::text FROM journey_kv WHERE namespace = $1 AND expires_at > $2
ORDER BY key LIMIT $3"""
_KV_PUT = """INSERT INTO journey_kv (namespace, key, value, expires_at) VALUES ($1, $2, $3::jsonb, $4)
ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at"""
_KV_DELETE = "DELETE FROM journey_kv WHERE namespace = $1 AND key = $2"
_KV_PURGE = "DELETE FROM journey_kv WHERE expires_at <= $1"

_FAILURES = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, asyncio.TimeoutError)


async def _reset(conn: asyncpg.Connection) -> None:
    """What a connection needs when it goes back to the pool: only a transaction left open
    rolled back. The store keeps no session state (no LISTEN, SET, cursors or session
    locks), so asyncpg's default reset, one more round trip of ``RESET ALL``, ``UNLISTEN *``
    and friends on every release, would buy nothing."""
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


class PgJourneyStore:
    """A :class:`~ivr.journey.ports.JourneyStore` on a PostgreSQL pool. Build it with :meth:`open`."""

    def __init__(self, pool: asyncpg.Pool, clock: Clock) -> None:
        self._pool = pool
        self._clock = clock
        self._closed = False
        self._purges = codec.PurgeSchedule()

    @classmethod
    async def open(cls, dsn: str, *, clock: Clock = time.time, min_size: int = 1, max_size: int = 10,
                   connect_timeout_s: float = 10.0) -> PgJourneyStore:
        """Connect a pool to ``dsn`` and create the tables if they are missing."""
        async def connect(server_settings: dict[str, str]) -> asyncpg.Pool:
            try:
                return await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size, timeout=connect_timeout_s,
                                                 command_timeout=COMMAND_TIMEOUT_S, server_settings=server_settings,
                                                 reset=_reset)
            except _FAILURES as exc:
                raise StoreUnavailable(BACKEND, "connect", exc) from exc

        pool = await connect({})
        try:
            if await pool.fetchval("SHOW synchronous_commit") == "off":
                await pool.close()
                pool = await connect({"synchronous_commit": "on"})
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", SCHEMA_LOCK)
                await conn.execute(SCHEMA)
        except _FAILURES as exc:
            await pool.close()
            raise StoreUnavailable(BACKEND, "create the journey tables", exc) from exc
        return cls(pool, clock)

    async def __aenter__(self) -> PgJourneyStore:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    # -- journey ---------------------------------------------------------------------------

    async def append(self, key: str, events: Sequence[StampedEvent]) -> None:
        await self._put_rows("append journey events", (), key, events)

    async def recent(self, key: str, *, limit: int = 100, since: float | None = None) -> list[StampedEvent]:
        codec.check_limit(limit)
        floor = -math.inf if since is None else since
        rows = await self._run("read recent events", lambda: self._pool.fetch(_RECENT, key, floor, limit))
        return [codec.decode_event(*row) for row in rows]

    async def interaction_events(self, interaction: str) -> list[StampedEvent]:
        rows = await self._run("read an interaction", lambda: self._pool.fetch(_INTERACTION, interaction))
        return [codec.decode_event(*row) for row in rows]

    async def last_agent(self, key: str, within_s: float) -> str | None:
        codec.check_window(within_s)
        floor = self._clock() - within_s
        data = await self._run("find the last agent", lambda: self._pool.fetchval(_LAST_AGENT, key, floor))
        return None if data is None else codec.agent_of(data)

    async def between(self, since: float, until: float, *, limit: int = 100_000) -> list[tuple[str, StampedEvent]]:
        check_range(since, until, limit)
        rows = await self._run("read a time range", lambda: self._pool.fetch(_BETWEEN, float(since), float(until), limit))
        return [(row[0], codec.decode_event(*row[1:])) for row in rows]

    # -- kv --------------------------------------------------------------------------------

    async def kv_get(self, namespace: str, key: str) -> dict[str, Any] | None:
        text = await self.kv_get_text(namespace, key)
        return None if text is None else dict(json.loads(text))

    async def kv_get_text(self, namespace: str, key: str) -> str | None:
        codec.check_kv_key(namespace, key)
        now = self._clock()
        text: str | None = await self._run("read a kv entry", lambda: self._pool.fetchval(_KV_GET, namespace, key, now))
        return text

    async def kv_put(self, namespace: str, key: str, value: dict[str, Any], ttl_s: float) -> None:
        text = codec.kv_row(namespace, key, value, ttl_s)
        now = self._clock()
        await self._run("write a kv entry", lambda: self._pool.execute(_KV_PUT, namespace, key, text, now + ttl_s))
        if self._purges.due_after(1):
            await self.purge_expired()

    async def put_and_append(self, puts: Sequence[KvPut], key: str, events: Sequence[StampedEvent]) -> None:
        await self._put_rows("write kv entries and append", puts, key, events)

    async def kv_delete(self, namespace: str, key: str) -> None:
        codec.check_kv_key(namespace, key)
        await self._run("delete a kv entry", lambda: self._pool.execute(_KV_DELETE, namespace, key))

    async def kv_scan(self, namespace: str, *, limit: int = 10_000) -> list[tuple[str, dict[str, Any]]]:
        now = self._clock()
        rows = await self._run("list kv entries", lambda: self._pool.fetch(_KV_SCAN, namespace, now, limit))
        return [(row[0], dict(json.loads(row[1]))) for row in rows]

    async def purge_expired(self) -> int:
        now = self._clock()
        status = await self._run("purge expired kv entries", lambda: self._pool.execute(_KV_PURGE, now))
        return int(status.split()[-1])  # "DELETE 3"

    async def close(self) -> None:
        """Wait for queries in flight, then close the pool. Idempotent."""
        if self._closed:
            return
        self._closed = True
        await self._pool.close()

    # -- plumbing --------------------------------------------------------------------------

    def _check_open(self, operation: str) -> None:
        if self._closed:
            raise StoreClosed(BACKEND, operation)

    async def _put_rows(self, operation: str, puts: Sequence[KvPut], key: str,
                        events: Sequence[StampedEvent]) -> None:
        """``append`` and ``put_and_append``: every check first, then one statement."""
        now = self._clock()
        latest: dict[tuple[str, str], tuple[str, float]] = {}  # one upsert per key: the last put wins
        conditions: list[tuple[str, str, str]] = []
        for p in puts:
            latest[(p.namespace, p.key)] = (codec.put_text(p), now + p.ttl_s)
            if p.expect is not None:
                conditions.append((p.namespace, p.key, p.expect))
        rows = codec.prepare(key, events)
        if not latest and not rows:
            self._check_open(operation)
            return
        args = ([ns for ns, _ in latest], [k for _, k in latest], [text for text, _ in latest.values()],
                [expires for _, expires in latest.values()], key,
                [r.at for r in rows], [r.channel for r in rows], [r.interaction for r in rows],
                [r.type for r in rows], [r.data_json for r in rows])
        statement: str = _PUT_AND_APPEND
        checks: tuple[Any, ...] = ()
        if conditions:
            conditions.sort()  # one lock order for every writer: no deadlock
            statement = _PUT_AND_APPEND_IF
            checks = ([ns for ns, _, _ in conditions], [k for _, k, _ in conditions], [e for _, _, e in conditions], now)
        try:
            await self._run(operation, lambda: self._pool.execute(statement, *args, *checks))
        except StoreUnavailable as exc:
            cause = exc.__cause__
            if isinstance(cause, asyncpg.PostgresError) and getattr(cause, "sqlstate", None) == CONFLICT_SQLSTATE:
                namespace, _, kv_key = str(getattr(cause, "message", "")).partition(chr(31))
                raise WriteConflict(BACKEND, namespace, kv_key) from None
            raise
        if latest and self._purges.due_after(len(latest)):
            await self.purge_expired()

    async def _run(self, operation: str, query: Callable[[], Awaitable[T]]) -> T:
        self._check_open(operation)
        try:
            return await query()
        except _FAILURES as exc:
            raise StoreUnavailable(BACKEND, operation, exc) from exc

