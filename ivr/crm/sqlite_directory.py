"""The embedded customer directory: one SQLite file, for demos, tests and small sites.

sqlite3 blocks, so every query runs in a worker thread (``asyncio.to_thread``) behind
one lock: the event loop keeps serving other calls while the disk works. The schema
is created on first use, so a fresh path is a working (empty) directory; fill it with
:func:`ivr.crm.seed.seed_demo` or :meth:`SqliteDirectory.put_customer`.

Named actions that change an account are idempotent: the first outcome for an
idempotency key is stored in ``applied_actions`` in the same transaction as the
change, so a repeated request (a retry after a timeout, a replayed event) answers with
that outcome and writes nothing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TypeVar

from ivr.crm.customer import Customer
from ivr.crm.directory_ports import (
    ACTIONS,
    BALANCE,
    SERVICE_OFF,
    SERVICE_ON,
    TARIFF_CHANGE,
    ActionOutcome,
)
from ivr.crm.errors import CrmBadResponse, CrmUnavailable, CustomerInvalid
from ivr.crm.pin import burn_time, verify_pin

T = TypeVar("T")

SCHEMA_VERSION = 2
#: Columns added after version 1, with their type: a file made by an older version gains them on open.
_ADDED_COLUMNS = (("offer", "TEXT"), ("offer_text", "TEXT"), ("scores", "TEXT"))
#: How long a query waits for another process's write lock before failing.
BUSY_TIMEOUT_MS = 2000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS customers (
    id           TEXT PRIMARY KEY,
    number       TEXT NOT NULL UNIQUE,
    name         TEXT NOT NULL,
    language     TEXT NOT NULL,
    segment      TEXT NOT NULL,
    balance      TEXT NOT NULL,          -- Decimal as text: money is never a float
    currency     TEXT NOT NULL,
    debt         TEXT NOT NULL,
    overdue_days INTEGER NOT NULL,
    tariff       TEXT,
    manager      TEXT,
    region       TEXT,
    account      TEXT UNIQUE,
    pin_hash     TEXT,                   -- see ivr.crm.pin; never the PIN itself
    blacklisted  INTEGER NOT NULL DEFAULT 0,
    last_agent   TEXT,
    last_contact TEXT,                   -- ISO date
    offer        TEXT,
    offer_text   TEXT,
    scores       TEXT                    -- JSON {topic: "0.9"}: Decimals as text
);
CREATE TABLE IF NOT EXISTS customer_services (
    customer_id TEXT NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    service     TEXT NOT NULL,
    enabled     INTEGER NOT NULL,
    PRIMARY KEY (customer_id, service)
);
CREATE TABLE IF NOT EXISTS tariffs (
    name TEXT PRIMARY KEY
);
CREATE TABLE IF NOT EXISTS applied_actions (
    key         TEXT PRIMARY KEY,        -- the idempotency key: interaction, action, args
    customer_id TEXT NOT NULL,
    name        TEXT NOT NULL,
    ok          INTEGER NOT NULL,
    data        TEXT NOT NULL,           -- JSON of the first outcome's data
    applied_at  REAL NOT NULL
);
"""

_COLUMNS = ("id, number, name, language, segment, balance, currency, debt, overdue_days, tariff, manager, "
            "region, account, blacklisted, last_agent, last_contact, offer, offer_text, scores")


class SqliteDirectory:
    """:class:`ivr.crm.directory_ports.CustomerDirectory` over a SQLite file (or ``":memory:"``)."""

    def __init__(self, path: str | Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path = str(path)
        self._clock = clock
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    # -- the port ------------------------------------------------------------------------

    async def by_number(self, e164: str) -> Customer | None:
        return await asyncio.to_thread(self._locked, "by_number", self._by_number, e164)

    async def by_id(self, customer_id: str) -> Customer | None:
        return await asyncio.to_thread(self._locked, "by_id", self._by_id, customer_id)

    async def by_account(self, account: str, pin: str) -> Customer | None:
        return await asyncio.to_thread(self._locked, "by_account", self._by_account, account, pin)

    async def run_action(self, name: str, args: Mapping[str, Any], customer_id: str,
                         idempotency_key: str) -> ActionOutcome:
        return await asyncio.to_thread(self._locked, f"action {name}", self._run_action, name, dict(args),
                                       customer_id, idempotency_key)

    # -- administration (synchronous: seeding and tools, not the call path) -----------------

    def put_customer(self, customer: Customer, *, pin_hash: str | None = None) -> None:
        """Insert or replace a customer with their services (and PIN hash, if they have one)."""
        self._locked("put_customer", self._put_customer, customer, pin_hash)

    def put_tariffs(self, names: Iterable[str]) -> None:
        """Tariffs a ``tariff_change`` may switch to."""
        rows = [(name,) for name in names]
        self._locked("put_tariffs", lambda conn: conn.executemany(
            "INSERT OR IGNORE INTO tariffs (name) VALUES (?)", rows))

    async def aclose(self) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # -- internals ---------------------------------------------------------------------------

    def _locked(self, operation: str, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(conn, *args)`` alone on the connection; storage failures become CrmUnavailable."""
        with self._lock:
            try:
                return fn(self._connection(), *args)
            except sqlite3.Error as exc:
                raise CrmUnavailable(f"SQLite {self.path}: {exc}", operation=operation) from exc

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            # One connection shared by the worker threads; the lock keeps them from overlapping.
            conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA foreign_keys = ON")
            if self.path != ":memory:":
                conn.execute("PRAGMA journal_mode = WAL")  # readers do not wait for a writer
            conn.executescript(_SCHEMA)
            have = {row[1] for row in conn.execute("PRAGMA table_info(customers)")}
            for column, kind in _ADDED_COLUMNS:
                if column not in have:
                    conn.execute(f"ALTER TABLE customers ADD COLUMN {column} {kind}")
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            self._conn = conn
        return self._conn

    def _by_number(self, conn: sqlite3.Connection, e164: str) -> Customer | None:
        row = conn.execute(f"SELECT {_COLUMNS} FROM customers WHERE number = ?", (e164,)).fetchone()
        return None if row is None else self._customer(conn, row)

    def _by_id(self, conn: sqlite3.Connection, customer_id: str) -> Customer | None:
        row = conn.execute(f"SELECT {_COLUMNS} FROM customers WHERE id = ?", (customer_id,)).fetchone()
        return None if row is None else self._customer(conn, row)

    def _by_account(self, conn: sqlite3.Connection, account: str, pin: str) -> Customer | None:
        row = conn.execute(f"SELECT {_COLUMNS}, pin_hash FROM customers WHERE account = ?", (account,)).fetchone()
        if row is None or row[-1] is None:
            burn_time(pin)
            return None
        if not verify_pin(pin, row[-1]):
            return None
        return self._customer(conn, row[:-1])

    def _customer(self, conn: sqlite3.Connection, row: tuple[Any, ...]) -> Customer:
        (id_, number, name, language, segment, balance, currency, debt, overdue_days, tariff, manager,
         region, account, blacklisted, last_agent, last_contact, offer, offer_text, scores) = row
        services = {service: bool(enabled) for service, enabled in conn.execute(
            "SELECT service, enabled FROM customer_services WHERE customer_id = ?", (id_,))}
        try:
            return Customer(
                id=id_, number=number, name=name, language=language, segment=segment,
                balance=Decimal(balance), currency=currency, debt=Decimal(debt), overdue_days=overdue_days,
                services=services, tariff=tariff, manager=manager, region=region, account=account,
                blacklisted=bool(blacklisted), last_agent=last_agent,
                last_contact=None if last_contact is None else dt.date.fromisoformat(last_contact),
                offer=offer, offer_text=offer_text,
                scores={k: Decimal(v) for k, v in json.loads(scores).items()} if scores else {},
            )
        except (InvalidOperation, ValueError, AttributeError, CustomerInvalid) as exc:
            raise CrmBadResponse(f"stored record {id_!r} is unreadable: {exc}", operation="read customer") from exc

    def _put_customer(self, conn: sqlite3.Connection, customer: Customer, pin_hash: str | None) -> None:
        c = customer
        with _transaction(conn):
            conn.execute("DELETE FROM customer_services WHERE customer_id = ?", (c.id,))
            conn.execute(
                f"INSERT OR REPLACE INTO customers ({_COLUMNS}, pin_hash) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (c.id, c.number, c.name, c.language, c.segment, str(c.balance), c.currency, str(c.debt),
                 c.overdue_days, c.tariff, c.manager, c.region, c.account, int(c.blacklisted), c.last_agent,
                 None if c.last_contact is None else c.last_contact.isoformat(), c.offer, c.offer_text,
                 json.dumps({k: str(v) for k, v in c.scores.items()}) if c.scores else None, pin_hash))
            conn.executemany(
                "INSERT INTO customer_services (customer_id, service, enabled) VALUES (?, ?, ?)",
                [(c.id, service, int(on)) for service, on in c.services.items()])

    def _run_action(self, conn: sqlite3.Connection, name: str, args: dict[str, Any], customer_id: str,
                    key: str) -> ActionOutcome:
        if name not in ACTIONS:
            return ActionOutcome(name, False, {"error": f"unknown action {name!r}"})
        if name == BALANCE:
            # A read: naturally repeatable, and a second "balance" in one call must be fresh.
            row = conn.execute("SELECT balance, currency FROM customers WHERE id = ?", (customer_id,)).fetchone()
            if row is None:
                return ActionOutcome(name, False, {"error": f"no customer {customer_id!r}"})
            return ActionOutcome(name, True, {"balance": Decimal(row[0]), "currency": row[1]})
        with _transaction(conn):
            done = conn.execute("SELECT customer_id, name, ok, data FROM applied_actions WHERE key = ?",
                                (key,)).fetchone()
            if done is not None:
                if (done[0], done[1]) != (customer_id, name):
                    return ActionOutcome(name, False, {
                        "error": f"idempotency key {key!r} was already used for {done[1]} on customer {done[0]!r}"})
                return ActionOutcome(name, bool(done[2]), json.loads(done[3]), replayed=True)
            outcome = self._apply(conn, name, args, customer_id)
            conn.execute("INSERT INTO applied_actions (key, customer_id, name, ok, data, applied_at) "
                         "VALUES (?, ?, ?, ?, ?, ?)",
                         (key, customer_id, name, int(outcome.ok), json.dumps(dict(outcome.data)), self._clock()))
            return outcome

    def _apply(self, conn: sqlite3.Connection, name: str, args: dict[str, Any], customer_id: str) -> ActionOutcome:
        """Make the change; a refusal is an outcome too (stored, so a retry gets the same answer)."""
        if conn.execute("SELECT 1 FROM customers WHERE id = ?", (customer_id,)).fetchone() is None:
            return ActionOutcome(name, False, {"error": f"no customer {customer_id!r}"})
        if name in (SERVICE_ON, SERVICE_OFF):
            service = args.get("service")
            if not isinstance(service, str) or not service:
                return ActionOutcome(name, False, {"error": "no service given"})
            row = conn.execute("SELECT enabled FROM customer_services WHERE customer_id = ? AND service = ?",
                               (customer_id, service)).fetchone()
            if row is None:
                return ActionOutcome(name, False, {"error": f"service {service!r} is not available to this customer"})
            enabled = name == SERVICE_ON
            conn.execute("UPDATE customer_services SET enabled = ? WHERE customer_id = ? AND service = ?",
                         (int(enabled), customer_id, service))
            return ActionOutcome(name, True, {"service": service, "enabled": enabled,
                                              "changed": bool(row[0]) != enabled})
        if name != TARIFF_CHANGE:
            return ActionOutcome(name, False, {"error": f"action {name!r} has no SQLite implementation"})
        tariff = args.get("tariff")
        if not isinstance(tariff, str) or not tariff:
            return ActionOutcome(name, False, {"error": "no tariff given"})
        if conn.execute("SELECT 1 FROM tariffs WHERE name = ?", (tariff,)).fetchone() is None:
            return ActionOutcome(name, False, {"error": f"unknown tariff {tariff!r}"})
        (previous,) = conn.execute("SELECT tariff FROM customers WHERE id = ?", (customer_id,)).fetchone()
        conn.execute("UPDATE customers SET tariff = ? WHERE id = ?", (tariff, customer_id))
        return ActionOutcome(name, True, {"tariff": tariff, "previous": previous, "changed": previous != tariff})


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE .. COMMIT, or ROLLBACK on any exception.

    The write lock is taken up front, so the "already applied?" check and the write
    cannot interleave with another process using the same file.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
