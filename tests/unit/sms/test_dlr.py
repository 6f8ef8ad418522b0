"""Delivery-report references: round trip, signed with a secret, and safe inside a Kannel URL."""

from __future__ import annotations

import pytest

from ivr.sms import dlr
from ivr.sms.errors import BadSmsRequest


def test_reference_round_trips() -> None:
    fields = dlr.encode_ref("sms-abc", "C-100231")
    assert dlr.decode_ref(fields["ref"], None) == ("sms-abc", "C-100231")


def test_reference_holds_no_percent_sign_kannel_could_take_for_an_escape() -> None:
    url = dlr.callback_url("http://127.0.0.1:8080", "notify-1", "Клиент-№1 +7 999")
    ours = url.split("&status=")[0]
    assert "%" not in ours


def test_signed_reference_round_trips() -> None:
    fields = dlr.encode_ref("sms-abc", "+79990001122", "secret")
    assert dlr.decode_ref(fields["ref"], fields["sig"], "secret") == ("sms-abc", "+79990001122")


def test_tampered_reference_is_refused() -> None:
    good = dlr.encode_ref("sms-abc", "C-100231", "secret")
    other = dlr.encode_ref("sms-abc", "C-208812")["ref"]
    with pytest.raises(BadSmsRequest, match="signature"):
        dlr.decode_ref(other, good["sig"], "secret")


def test_status_codes_are_kannels_dlr_types() -> None:
    assert [dlr.DeliveryReport("i", "k", code).status for code in (1, 2, 4, 8, 16, 3)] == [
        "delivered", "failed", "buffered", "accepted", "rejected", "unknown"]
