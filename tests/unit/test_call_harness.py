"""The call harness's pure parts: DTMF scripts, SIPp scenarios, records from AMI events."""

from __future__ import annotations

import socket
import xml.etree.ElementTree as ET

import pytest

from ivr.errors import IvrError
from ivr.harness import dtmf_script, sipp
from ivr.harness.calls import originate_caller_id
from ivr.harness.record import CallRecord, fill_from_events, find_linkedid_by_tag
from ivr.harness.sipp import media_port, scenario_xml, sip_display_name


def test_script_with_pauses_keeps_the_digits_in_order():
    steps = dtmf_script.parse("1w2,#")

    assert dtmf_script.digits_of(steps) == "12#"
    assert dtmf_script.as_senddtmf(steps) == "1w2ww#"


def test_script_with_a_letter_is_refused_with_its_position():
    with pytest.raises(IvrError, match=r"'x' at position 2"):
        dtmf_script.parse("1x")


def test_scenario_is_well_formed_xml_with_one_pcap_per_key():
    xml = scenario_xml(dtmf_script.parse("1*#"), delay_s=1, hold_s=3)
    root = ET.fromstring(xml.split("\n", 2)[2])  # past the XML declaration and DOCTYPE

    pcaps = [e.get("play_pcap_audio") for e in root.iter("exec")]
    assert pcaps == ["/usr/share/sip-tester/dtmf_2833_1.pcap", "/usr/share/sip-tester/dtmf_2833_star.pcap",
                     "/usr/share/sip-tester/dtmf_2833_pound.pcap"]


def test_hostile_display_name_is_one_quoted_string():
    assert sip_display_name('Bob "; EXEC System\r\n') == '"Bob \\"; EXEC System  "'


EVENTS = [
    {"Event": "Newchannel", "Uniqueid": "1.1", "Linkedid": "1.1", "Channel": "PJSIP/demo-trunk-1"},
    {"Event": "VarSet", "Uniqueid": "1.1", "Linkedid": "1.1", "Variable": "__IVR_CALL_TAG", "Value": "t-1"},
    {"Event": "Newstate", "Uniqueid": "1.1", "ChannelStateDesc": "Up"},
    {"Event": "DTMFEnd", "Uniqueid": "1.1", "Direction": "Received", "Digit": "0"},
    {"Event": "DTMFEnd", "Uniqueid": "1.1", "Direction": "Sent", "Digit": "9"},
    {"Event": "VarSet", "Uniqueid": "1.1", "Variable": "QUEUE_PRIO", "Value": "10"},
    {"Event": "VarSet", "Uniqueid": "1.1", "Variable": "SOMETHING_ELSE", "Value": "x"},
    {"Event": "QueueCallerJoin", "Uniqueid": "1.1", "Queue": "vip", "Position": "1"},
    {"Event": "AgentCalled", "Uniqueid": "2.1", "Linkedid": "1.1", "Interface": "PJSIP/agent1"},
    {"Event": "AgentCalled", "Uniqueid": "9.9", "Linkedid": "9.9", "Interface": "PJSIP/agent2"},
    {"Event": "Hangup", "Uniqueid": "1.1", "Cause": "16", "Cause-txt": "Normal Clearing"},
]


def test_call_is_found_by_its_tag():
    assert find_linkedid_by_tag(EVENTS, "t-1") == ("1.1", "1.1")


def test_record_holds_what_asterisk_reported_for_that_call_only():
    record = CallRecord("sipp", "7999", "100", "0", "t")
    fill_from_events(record, EVENTS, "1.1")

    assert record.answered
    assert record.digits == "0"
    assert record.queue is not None and (record.queue.name, record.queue.priority) == ("vip", 10)
    assert record.agents_called == ["PJSIP/agent1"]
    assert record.variables == {"IVR_CALL_TAG": "t-1", "QUEUE_PRIO": "10"}
    assert (record.hangup_cause, record.hangup_text) == (16, "Normal Clearing")


def test_json_shape_is_versioned_and_stable():
    data = CallRecord("ami", "7999", "100", "", "t").to_json()

    assert list(data) == ["version", "transport", "from", "to", "keys", "call_tag", "answered", "channel",
                          "uniqueid", "linkedid", "digits", "queue", "agents_called", "agent_events", "variables", "hangup",
                          "duration_s", "transport_result", "errors"]
    assert data["version"] == 1


def _rtp_headers(path):
    import struct

    data = path.read_bytes()
    offset, out = 24, []
    while offset + 16 <= len(data):
        incl = struct.unpack("<I", data[offset + 8:offset + 12])[0]
        ip = offset + 16 + 14
        rtp = ip + (data[ip] & 0x0F) * 4 + 8
        out.append(struct.unpack("!HI", data[rtp + 2:rtp + 8]))
        offset += 16 + incl
    return out


def test_each_key_press_continues_the_rtp_stream_so_asterisk_keeps_it(tmp_path):
    from ivr.harness.sipp import pcap_for, renumbered_dtmf_pcap

    nxt = renumbered_dtmf_pcap(pcap_for("2"), tmp_path / "a.pcap", 0, 1000)
    renumbered_dtmf_pcap(pcap_for("0"), tmp_path / "b.pcap", 1, nxt)
    first, second = _rtp_headers(tmp_path / "a.pcap"), _rtp_headers(tmp_path / "b.pcap")

    seqs = [s for s, _ in first + second]
    assert seqs == list(range(1000, 1000 + len(seqs)))
    assert max(ts for _, ts in first) < min(ts for _, ts in second)


def test_sipp_media_ports_are_four_free_ports_outside_asterisks_and_the_kernels_ranges() -> None:
    base = media_port()
    assert base % 4 == 0 and 20000 < base and base + 3 < 32768
    for port in range(base, base + 4):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", port))


def test_two_sipp_phones_in_one_run_never_get_the_same_media_ports() -> None:
    assert len({media_port() for _ in range(10)}) == 10


def test_a_block_with_one_port_held_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sipp, "_media_cursor", 0)
    start = sipp.MEDIA_RANGE.start
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", start + 2))  # the block's video port: what SIPp once failed to bind
        assert media_port() == start + 4


ORIGINATE_CALLER_IDS = [
    ("Anna", "+79991234567", '"Anna" <+79991234567>'),
    ("Eve\r\nAction: Hangup", "79990001122", '"Eve  Action: Hangup" <79990001122>'),
    ('Eve" <666>', "79990001122", '"Eve\\" <666>" <79990001122>'),
    ("C:\\", "100", '"C:\\\\" <100>'),
    (None, "+7 (999) 123-45-67", "+79991234567"),
    ("\n\t", "79990001122", "79990001122"),
]


@pytest.mark.parametrize(("name", "number", "expected"), ORIGINATE_CALLER_IDS)
def test_the_robots_caller_id_is_one_quoted_name_and_its_number(name, number, expected):
    assert originate_caller_id(name, number) == expected


@pytest.mark.parametrize("name", ["A" * 300, "Ж" * 300, '"' * 300])
def test_a_long_caller_name_is_cut_so_asterisk_keeps_the_number(name):
    caller_id = originate_caller_id(name, "79990001122")
    assert caller_id.endswith(" <79990001122>")
    assert len(caller_id.encode()) < 256  # Asterisk's Originate buffer
    assert "\n" not in caller_id and not caller_id.startswith('"\\"' * 101)


STAT_HEADER = ("StartTime;CurrentTime;SuccessfulCall(P);SuccessfulCall(C);FailedCall(P);FailedCall(C);"
               "FailedMaxUDPRetrans(P);FailedMaxUDPRetrans(C);FailedTimeoutOnRecv(P);FailedTimeoutOnRecv(C);"
               "FailedCallRejected(P);FailedCallRejected(C);")


@pytest.mark.parametrize(("rows", "causes"), [
    ([], {}),
    (["t0;t1;0;0;0;0;0;0;0;0;0;0;"], {}),
    (["t0;t1;5;5;0;0;0;0;0;0;0;0;", "t0;t2;3;8;2;3;0;1;1;2;0;0;"], {"MaxUDPRetrans": 1, "TimeoutOnRecv": 2}),
], ids=["no-rows", "no-failures", "last-row-cumulative"])
def test_sipp_failure_causes_are_the_last_rows_cumulative_counters_that_are_not_zero(rows, causes):
    assert sipp.failure_causes("\n".join([STAT_HEADER, *rows]) + "\n") == causes
