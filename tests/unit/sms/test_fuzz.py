"""Whatever arrives on /sms/kannel or /sms/dlr, the answer is a reply or a clean 400, never a 500."""

from __future__ import annotations

import asyncio
import dataclasses
import string
from pathlib import Path
from urllib.parse import quote

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from yarl import URL

from ivr.crm.actions import CrmActions
from ivr.crm.lookup import CrmLookup
from ivr.crm.seed import seed_demo
from ivr.crm.sqlite_directory import SqliteDirectory
from ivr.journey.memory import MemoryJourney
from ivr.sms import dlr
from ivr.sms.config import SmsConfig
from ivr.sms.kannel_http import mount_sms
from ivr.sms.service import SmsService

from .conftest import ANNA, IVAN, OLGA, UNKNOWN

# What may appear unencoded in a request line (no space, no '#', no control characters).
URL_SAFE = "".join(c for c in string.printable if c not in " #\t\n\r\x0b\x0c")
FIELDS = ["from", "to", "text", "smsc", "id", "coding", "charset", "ref", "sig", "status", "answer"]


def encoded(text: str) -> str:
    return quote(text, safe="")


well_encoded = st.text(max_size=300).map(encoded)  # any Unicode at all, properly encoded
values = st.one_of(
    well_encoded,
    well_encoded,
    st.sampled_from([ANNA, IVAN, OLGA, UNKNOWN, "8 999 123-45-67", "BAL", "ROAM ON", "TARIFF SMART", "СТОП",
                     "UTF-16BE", "UCS-2", "2", "1", "0", "x" * 2000]).map(encoded),
    st.binary(max_size=200).map(lambda b: quote(b, safe="")),  # often not UTF-8
    st.text(alphabet=URL_SAFE.replace("&", ""), max_size=60),  # often not valid percent-encoding
)


def mostly(*good: str) -> st.SearchStrategy[str]:
    """One of the ``good`` values (encoded) five times in six, else anything from ``values``."""
    return st.sampled_from([*good, None] if len(good) >= 5 else [*good * 5, None]).flatmap(
        lambda v: values if v is None else st.just(encoded(v)))


stray = st.lists(st.tuples(st.one_of(st.sampled_from(FIELDS), st.text(alphabet=URL_SAFE, max_size=8)), values),
                 max_size=3)
# Shaped like Kannel's get-url, so most examples get past "missing field" into every later check.
kannel_like = st.builds(
    lambda fields, extra: "&".join([*(f"{k}={v}" for k, v in fields.items()), *(f"{k}={v}" for k, v in extra)]),
    st.fixed_dictionaries(
        {"from": mostly(ANNA, IVAN, OLGA, UNKNOWN, "89991234567"), "to": mostly("1000"), "text": values},
        optional={"smsc": mostly("fake"), "id": mostly("0b7c6a51-1d0e-4c39-9a55-2f1e8e0c3d2a"),
                  "coding": mostly("0", "2"), "charset": mostly("UTF-8", "UTF-16BE")}),
    st.lists(st.tuples(st.sampled_from(["x", "y"]), values), max_size=2) | stray,
)
anything = st.one_of(stray.map(lambda ps: "&".join(f"{k}={v}" for k, v in ps)),
                     st.text(alphabet=URL_SAFE, max_size=400))
# Shaped like the DLR URL we hand Kannel: a real reference, then fuzzed status and answer.
dlr_like = st.builds(
    lambda fields, extra: "&".join([f"ref={dlr.encode_ref('sms-1', 'C-100231')['ref']}",
                                    *(f"{k}={v}" for k, v in fields.items()), *(f"{k}={v}" for k, v in extra)]),
    st.fixed_dictionaries({"status": mostly("1", "2", "4", "8", "16")}, optional={"answer": values, "sig": values}),
    st.lists(st.tuples(st.sampled_from(["x", "y"]), values), max_size=2) | stray,
)


def test_kannel_and_dlr_endpoints_never_answer_500(tmp_path: Path, sms_config: SmsConfig) -> None:
    loop = asyncio.new_event_loop()
    seed_demo(tmp_path / "crm.sqlite", pin_iterations=1)
    directory = SqliteDirectory(tmp_path / "crm.sqlite")
    lookup = CrmLookup(directory)
    config = dataclasses.replace(sms_config, limits=dataclasses.replace(sms_config.limits, rate_count=10**6))
    service = SmsService(config, lookup, CrmActions(directory, on_change=lookup.forget), MemoryJourney())

    async def start() -> TestClient[web.Request, web.Application]:
        app = web.Application()
        mount_sms(app, service)
        started: TestClient[web.Request, web.Application] = TestClient(TestServer(app, host="127.0.0.1", port=0))
        await started.start_server()
        return started

    client = loop.run_until_complete(start())

    async def status_of(path: str, query: str) -> int:
        async with client.session.get(URL(f"{client.make_url(path)}?{query}", encoded=True)) as resp:
            await resp.read()
            return resp.status

    def answers(path: str, query: str) -> None:
        assert loop.run_until_complete(status_of(path, query)) in (200, 400), (path, query)

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
    @given(query=kannel_like)
    def kannel_shaped(query: str) -> None:
        answers("/sms/kannel", query)

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
    @given(query=dlr_like)
    def dlr_shaped(query: str) -> None:
        answers("/sms/dlr", query)

    @settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
    @given(query=anything)
    def any_query(query: str) -> None:
        answers("/sms/kannel", query)
        answers("/sms/dlr", query)

    try:
        kannel_shaped()
        dlr_shaped()
        any_query()
    finally:
        loop.run_until_complete(client.close())
        directory.close()
        loop.close()
