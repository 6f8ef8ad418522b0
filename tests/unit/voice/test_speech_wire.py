"""The edges of the speech path: RTP payloads, byte order, and the Vosk protocol's replies."""

from __future__ import annotations

import pytest

from ivr.voice.ari.audio import be16_to_le, rtp_payload
from ivr.voice.speech.recogniser import Reply, reply_from


def rtp(payload: bytes, *, csrc: int = 0, extension: bytes = b"", padding: int = 0) -> bytes:
    first = 0x80 | csrc | (0x10 if extension else 0) | (0x20 if padding else 0)
    header = bytes([first, 118]) + b"\x00\x01" + b"\x00" * 8 + b"\x00\x00\x00\x01" * csrc
    pad = (b"\x00" * (padding - 1) + bytes([padding])) if padding else b""
    return header + extension + payload + pad


@pytest.mark.parametrize(("packet", "payload"), [
    (rtp(b"\x01\x02"), b"\x01\x02"),
    (rtp(b"\x01\x02", csrc=2), b"\x01\x02"),
    (rtp(b"\x01\x02", extension=b"\xbe\xde\x00\x01abcd"), b"\x01\x02"),
    (rtp(b"\x01\x02", padding=4), b"\x01\x02"),
    (b"\x00" * 20, None),        # version 0: not RTP
    (b"\x80\x00", None),         # shorter than a header
])
def test_rtp_payloads_are_cut_out_of_any_header_shape(packet, payload):
    assert rtp_payload(packet) == payload


def test_l16_in_network_order_becomes_little_endian_pcm():
    assert be16_to_le(b"\x12\x34\xff\xfe") == b"\x34\x12\xfe\xff"


@pytest.mark.parametrize(("message", "reply"), [
    ({"partial": "로밍"}, Reply("로밍", False)),
    ({"partial": ""}, Reply("", False)),
    ({"text": "로밍", "result": [{"word": "로밍", "conf": 0.8}]}, Reply("로밍", True, 0.8)),
    ({"text": "데이터 전화", "result": [{"conf": 1.0}, {"conf": 0.4}]}, Reply("데이터 전화", True, 0.4)),
    ({"text": ""}, Reply("", True, 0.0)),
])
def test_vosk_messages_become_replies_with_the_least_sure_words_confidence(message, reply):
    assert reply_from(message) == reply
