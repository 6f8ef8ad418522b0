"""Each Asterisk of a cluster has its own queues: a call hears those of the Asterisk it is on."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from ivr.voice.ports import CallInfo
from ivr.voice.queue_monitor import QueueBoard, QueueMonitor


@dataclass
class Node:
    """One Asterisk's AMI as the monitor sees it: its system name and ``waiting`` callers in support."""

    name: str
    waiting: int

    async def queue_status(self) -> list[dict[str, str]]:
        return [{"Event": "QueueParams", "Queue": "support", "Holdtime": "30", "TalkTime": "60", "Calls": "0"},
                *({"Event": "QueueEntry", "Queue": "support", "Position": str(i + 1), "Uniqueid": f"{self.name}-u{i}",
                   "Channel": f"PJSIP/t-{i}", "Wait": "5"} for i in range(self.waiting))]

    async def action(self, action, timeout: float = 10.0):
        assert action == {"Action": "CoreSettings"}
        return {"Response": "Success", "SystemName": self.name}


async def board() -> QueueBoard:
    home, other = QueueMonitor(Node("asterisk1", 1)), QueueMonitor(Node("asterisk2", 4))
    for monitor in (home, other):
        await monitor.refresh()
    return QueueBoard(home, [home, other])


async def test_a_call_hears_the_queues_of_the_asterisk_it_is_on():
    queues = await board()

    assert queues.snapshot("asterisk2")["support"].waiting == 4
    assert queues.snapshot("asterisk1")["support"].waiting == 1


@pytest.mark.parametrize("node", ["", "asterisk9"], ids=["no system name", "an Asterisk not polled here"])
async def test_a_call_from_an_unknown_asterisk_hears_the_home_ones(node):
    queues = await board()

    assert queues.snapshot(node)["support"].waiting == 1


async def test_the_monitor_asks_the_asterisks_name_once():
    node = Node("asterisk2", 0)
    monitor = QueueMonitor(node)
    await monitor.refresh()
    node.name = "renamed"
    await monitor.refresh()

    assert monitor.system_name == "asterisk2"


@pytest.mark.parametrize(("call_id", "asterisk"), [
    ("asterisk1-1796479125.0", "asterisk1"),
    ("pbx-eu-2-1796479125.13", "pbx-eu-2"),
    ("1796479125.0", ""),
])
def test_a_calls_asterisk_is_the_system_name_its_uniqueid_starts_with(call_id, asterisk):
    assert CallInfo(call_id, "+79990001122", "", "100", "agi").asterisk == asterisk
