"""A CRM's JSON record to a Customer: the example mapping, and wrong shapes reported by field."""

from __future__ import annotations

import copy
import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ivr.crm.errors import CrmBadResponse
from ivr.crm.http_config import load_http_config
from ivr.crm.http_mapping import MISSING, customer_from_record, dig

EXAMPLE = Path(__file__).resolve().parents[3] / "config/crm/http.example.yaml"
FIELDS = load_http_config(EXAMPLE).fields

RECORD: dict[str, Any] = json.loads("""{
  "contact_id": "C-100231", "first_name": "Anna",
  "phones": {"mobile": "+79991234567"},
  "preferred_language": "ENG", "tier": "PLATINUM",
  "billing": {"account_no": "100231",
              "balance": {"amount": 15420.75, "currency": "RUB"},
              "overdue": {"amount": 0, "days": 0}},
  "plan": {"name": "Max"},
  "products": [{"code": "roaming", "active": true}, {"code": "voicemail", "active": false}],
  "account_manager": {"agent_id": "agent2"},
  "address": {"region": "Moscow"},
  "flags": {"do_not_connect": false},
  "last_interaction": {"agent_id": "agent5", "date": "2024-11-18T10:22:00Z"}
}""", parse_float=Decimal)


def record(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(RECORD)
    data.update(changes)
    return data


def test_the_example_record_maps_to_a_customer() -> None:
    c = customer_from_record(RECORD, FIELDS, operation="test")
    assert (c.id, c.number, c.name, c.language, c.segment) == ("C-100231", "+79991234567", "Anna", "en", "vip")
    assert (c.balance, c.debt, c.overdue_days) == (Decimal("15420.75"), Decimal("0"), 0)
    assert dict(c.services) == {"roaming": True, "voicemail": False}
    assert (c.manager, c.region, c.account, c.blacklisted) == ("agent2", "Moscow", "100231", False)
    assert (c.last_agent, c.last_contact) == ("agent5", dt.date(2024, 11, 18))


def test_missing_optional_fields_take_their_defaults() -> None:
    data = {"contact_id": "C-1", "first_name": "Ivan", "phones": {"mobile": "89991234567"}, "billing": {}}
    c = customer_from_record(data, FIELDS, operation="test")
    assert (c.language, c.segment, c.currency, c.debt, c.tariff) == ("en", "regular", "RUB", Decimal("0"), None)


def test_an_unmapped_value_with_a_default_takes_the_default() -> None:
    assert customer_from_record(record(tier="BRONZE"), FIELDS, operation="t").segment == "regular"


@pytest.mark.parametrize(("changes", "field"), [
    ({"first_name": 42}, "name"),
    ({"phones": {"mobile": "call me"}}, "number"),
    ({"billing": {"balance": {"amount": "lots"}}}, "balance"),
    ({"billing": {"balance": {"amount": True}}}, "balance"),
    ({"products": "roaming"}, "services"),
    ({"products": [{"code": "roaming", "active": "yes"}]}, "services"),
    ({"flags": {"do_not_connect": "no"}}, "blacklisted"),
    ({"last_interaction": {"date": "yesterday"}}, "last_contact"),
    ({"contact_id": None}, "id"),
])
def test_a_value_of_the_wrong_kind_is_a_bad_response_naming_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(CrmBadResponse, match=rf"^test: {field}: "):
        customer_from_record(record(**changes), FIELDS, operation="test")


def test_a_record_that_is_not_an_object_is_a_bad_response() -> None:
    with pytest.raises(CrmBadResponse, match="not an object"):
        customer_from_record(["Anna"], FIELDS, operation="test")


def test_dig_follows_keys_and_list_indexes() -> None:
    data = {"data": {"contacts": [{"name": "Anna"}]}}
    assert dig(data, "data.contacts.0.name") == "Anna"
    assert dig(data, "data.contacts.1.name") is MISSING
    assert dig(data, "data.nothing.here") is MISSING
    assert dig(data, "") is data
