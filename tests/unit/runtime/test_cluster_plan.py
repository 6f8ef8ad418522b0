"""The cluster's plan: which ports each node takes, who reaches whom, what Kamailio is told."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from ivr.runtime.cluster import Cluster, ClusterError
from ivr.runtime.kamailio import kamailio_files
from ivr.settings import load_settings

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def cluster(tmp_path: Path) -> Cluster:
    return Cluster(load_settings(env={"IVR_CLUSTER_STATE_DIR": str(tmp_path)}))


def test_each_asterisk_takes_the_single_node_ports_plus_its_step_and_a_root_of_its_own(cluster):
    second = cluster.asterisk_settings(2)

    assert (second.sip.port, second.ami.port, second.ari.port) == (5260, 5238, 8288)
    assert second.asterisk.root == f"{cluster.settings.asterisk.root_path()}-2"


def test_every_asterisk_lists_every_controller_for_fastagi(cluster):
    for n in (1, 2):
        assert cluster.asterisk_settings(n).agi.urls() == "agi://127.0.0.1:4673|agi://127.0.0.1:4773"


@pytest.mark.parametrize(("controllers", "asterisks", "homes"), [(2, 2, [1, 2]), (3, 2, [1, 2, 1]), (2, 1, [1, 1])])
def test_controllers_take_their_home_asterisk_in_turn(tmp_path, controllers, asterisks, homes):
    settings = load_settings(env={"IVR_CLUSTER_CONTROLLERS": str(controllers),
                                  "IVR_CLUSTER_ASTERISKS": str(asterisks), "IVR_CLUSTER_STATE_DIR": str(tmp_path)})
    cluster = Cluster(settings)

    assert [cluster.controller(m).home_node for m in range(1, controllers + 1)] == homes


def test_a_controller_runs_on_postgresql_with_its_own_ports_and_its_home_asterisk(cluster):
    spec = cluster.controller(2, "postgresql://x")

    assert (spec.agi_port, spec.http_port) == (4773, 8280)
    assert spec.env["IVR_AMI_PORT"] == "5238" and spec.env["IVR_ARI_PORT"] == "8288"
    assert spec.env["IVR_JOURNEY_BACKEND"] == "postgres" and spec.env["IVR_JOURNEY_POSTGRES_DSN"] == "postgresql://x"


def test_kamailio_is_told_every_asterisk_in_one_dispatcher_set(cluster):
    kamailio = cluster.kamailio()
    files = kamailio_files(kamailio.front, kamailio.template, kamailio.state_dir, kamailio.ctl)

    assert files["dispatcher.list"].splitlines()[1:] == [
        "1 sip:127.0.0.1:5160 0 0 name=asterisk1", "1 sip:127.0.0.1:5260 0 0 name=asterisk2"]
    text = files["kamailio.cfg"]
    assert "listen=udp:127.0.0.1:5090 advertise 127.0.0.1:5090" in text and "ds_ping_interval\", 2)" in text
    assert "{{" not in text


def test_a_cluster_without_a_controller_is_refused(tmp_path):
    settings = load_settings(env={"IVR_CLUSTER_CONTROLLERS": "0", "IVR_CLUSTER_STATE_DIR": str(tmp_path)})

    with pytest.raises(ClusterError, match="at least one"):
        Cluster(dataclasses.replace(settings))


def test_every_asterisk_offers_ari_calls_to_every_controllers_application(cluster):
    assert cluster.asterisk_settings(1).ari.app_list() == "ivr-1|ivr-2"
    assert cluster.asterisk_settings(2).ari.app_list() == "ivr-1|ivr-2"


def test_each_controller_runs_its_own_application_on_every_asterisk(cluster):
    spec = cluster.controller(1)

    assert spec.env["IVR_ARI_APP"] == "ivr-1"
    assert spec.env["IVR_ARI_NODES"] == "127.0.0.1:8188:5138,127.0.0.1:8288:5238"


def test_each_asterisk_of_the_cluster_has_its_own_system_name_so_call_ids_never_collide(cluster):
    names = [cluster.asterisk_settings(n).asterisk.system_name for n in (1, 2)]

    assert all(names) and names[0] != names[1]


def test_every_controller_may_dial_callbacks_and_all_keep_them_on_asterisk_1(cluster):
    specs = [cluster.controller(m) for m in (1, 2)]

    assert {s.env["IVR_ROUTING_CALLBACK_DIALER"] for s in specs} == {"true"}
    assert {s.env["IVR_ROUTING_CALLBACK_NODE"] for s in specs} == {"127.0.0.1:5138"}
