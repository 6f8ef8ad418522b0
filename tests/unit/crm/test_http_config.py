"""The HTTP CRM mapping file: the example loads, and mistakes are found at load time with their key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from ivr.crm.errors import CrmConfigError
from ivr.crm.http_config import load_http_config, parse_http_config

EXAMPLE = Path(__file__).resolve().parents[3] / "config/crm/http.example.yaml"


def example() -> dict[str, Any]:
    raw: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    return raw


def test_the_example_file_loads() -> None:
    config = load_http_config(EXAMPLE)
    assert config.by_number_url == "/api/v2/contacts/by-phone/{digits}"
    assert config.fields["language"].map == {"ENG": "en", "RUS": "ru"}
    assert config.token_env == "ORBIT_CRM_TOKEN"


def test_an_unknown_url_placeholder_is_refused() -> None:
    raw = example()
    raw["by_number"]["url"] = "/contacts/{phone}"
    with pytest.raises(CrmConfigError, match=r"by_number.url: unknown placeholder \{phone\}"):
        parse_http_config(raw)


def test_a_mapping_to_a_field_customers_do_not_have_is_refused() -> None:
    raw = example()
    raw["fields"]["pin"] = "secrets.pin"
    with pytest.raises(CrmConfigError, match="fields.pin: not a Customer field"):
        parse_http_config(raw)


def test_the_required_fields_must_be_mapped() -> None:
    raw = example()
    del raw["fields"]["number"]
    with pytest.raises(CrmConfigError, match="number must be mapped"):
        parse_http_config(raw)


def test_a_misspelt_key_is_refused() -> None:
    raw = example()
    raw["by_number"]["recrod"] = "data"
    with pytest.raises(CrmConfigError, match="unknown field 'recrod' in 'by_number'; did you mean 'record'"):
        parse_http_config(raw)


def test_a_base_url_without_a_scheme_is_refused() -> None:
    raw = example()
    raw["base_url"] = "crm.example.com"
    with pytest.raises(CrmConfigError, match="base_url"):
        parse_http_config(raw)


def test_the_file_name_is_in_the_error(tmp_path: Path) -> None:
    path = tmp_path / "crm.yaml"
    path.write_text("base_url: http://x\n", encoding="utf-8")
    with pytest.raises(CrmConfigError, match=str(path)):
        load_http_config(path)


def test_every_problem_is_listed_at_its_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "crm.yaml"
    path.write_text("base_url: crm.example.com\nby_number:\n  url: /customers/{phone}\nfields: {pin: x}\n",
                    encoding="utf-8")
    with pytest.raises(CrmConfigError) as caught:
        load_http_config(path)
    lines = caught.value.message.splitlines()[1:]
    assert f"{path}:1:11: base_url 'crm.example.com' must start with http:// or https://" in lines
    assert any(line.startswith(f"{path}:3:8: by_number.url: unknown placeholder {{phone}}") for line in lines)
    assert any(line.startswith(f"{path}:4:10: fields.pin: not a Customer field") for line in lines)
