"""asterisk-docker/ cannot run here, so its consistency is checked instead:
every file it refers to exists, and Asterisk is configured from the same directories the
local root is rendered from."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from ivr.runtime.render import ConfigSources
from ivr.settings import load_settings

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "asterisk-docker"


def compose() -> dict:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


def test_every_build_context_and_dockerfile_exists():
    for name, service in compose()["services"].items():
        build = service.get("build")
        if not build:
            continue
        context = (DOCKER / build["context"]).resolve()
        assert context.is_dir(), name
        assert (context / build["dockerfile"]).is_file(), name


def test_every_bind_mount_source_exists():
    for name, service in compose()["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DOCKER / source).resolve().exists(), f"{name}: {source}"


def test_every_file_a_dockerfile_copies_exists():
    for dockerfile in DOCKER.glob("*Dockerfile"):
        for line in dockerfile.read_text().splitlines():
            if line.startswith("COPY"):
                for src in line.split()[1:-1]:
                    assert (REPO / src).exists(), f"{dockerfile.name}: {src}"


def _services(kind: str) -> dict[str, dict]:
    """The services whose name is ``kind`` or ``kind-<n>``."""
    return {name: svc for name, svc in compose()["services"].items() if re.fullmatch(rf"{kind}(-\d+)?", name)}


def _address(service: dict) -> str:
    return service["networks"]["ivr"]["ipv4_address"]


def test_every_asterisk_in_docker_is_rendered_from_the_local_roots_sources():
    sources = ConfigSources.of(load_settings())
    services = compose()["services"]
    for name in _services("asterisk"):
        config_service = services[f"{name}-config"]
        mounts = {v.split(":")[1]: (DOCKER / v.split(":")[0]).resolve() for v in config_service["volumes"]
                  if v.startswith(".")}

        assert mounts["/opt/ivr/config"] / "asterisk" == sources.asterisk.resolve(), name
        assert mounts["/opt/ivr/dialplan"] == sources.dialplan.resolve(), name
        assert config_service["command"][:3] == ["ivr", "asterisk", "render"], name
        rendered = next(v for v in config_service["volumes"] if v.endswith(":/rendered")).split(":")[0]
        assert f"{rendered}:/etc/asterisk:ro" in services[name]["volumes"], name


def test_docker_runs_the_topology_ivr_cluster_up_runs():
    cluster = load_settings(env={}).cluster

    assert len(_services("asterisk")) == cluster.asterisks
    assert len(_services("controller")) == cluster.controllers
    assert len(_services("kamailio")) == 1


def test_kamailio_in_docker_dispatches_to_every_asterisk_and_is_their_only_trunk_peer():
    command = compose()["services"]["kamailio-config"]["command"]
    asterisks = command[command.index("--asterisks") + 1].split(",")
    env = _environments()

    assert sorted(asterisks) == sorted(f"{_address(s)}:5060" for s in _services("asterisk").values())
    for name in _services("asterisk"):
        assert env[f"{name}-config"]["IVR_SIP_TRUNK_PEER"] == _address(compose()["services"]["kamailio"])


def test_every_asterisk_in_docker_offers_calls_to_every_controller_over_fastagi_and_ari():
    env = _environments()
    controllers = _services("controller")
    for name in _services("asterisk"):
        rendered = env[f"{name}-config"]

        assert sorted(rendered["IVR_AGI_CONTROLLERS"].split(",")) == sorted(
            f"{_address(c)}:4573" for c in controllers.values())
        assert sorted(rendered["IVR_ARI_APPS"].split(",")) == sorted(env[c]["IVR_ARI_APP"] for c in controllers)


def test_every_controller_in_docker_serves_every_asterisk_and_keeps_callbacks_on_the_same_one():
    env = _environments()
    asterisks = _services("asterisk")

    for name in _services("controller"):
        nodes = env[name]["IVR_ARI_NODES"].split(",")
        assert sorted(nodes) == sorted(f"{_address(a)}:8088:5038" for a in asterisks.values()), name
        assert env[name]["IVR_AMI_HOST"] in {_address(a) for a in asterisks.values()}, name
    assert len({env[c]["IVR_ARI_APP"] for c in _services("controller")}) == len(_services("controller"))
    callback_nodes = {env[c]["IVR_ROUTING_CALLBACK_NODE"] for c in _services("controller")}
    assert len(callback_nodes) == 1 and callback_nodes <= {f"{_address(a)}:5038" for a in asterisks.values()}


def test_every_asterisk_in_docker_has_its_own_system_name():
    env = _environments()
    names = [env[f"{name}-config"]["IVR_ASTERISK_SYSTEM_NAME"] for name in _services("asterisk")]

    assert all(names) and len(set(names)) == len(names)


def test_asterisks_in_docker_publish_the_media_ports_they_are_configured_with_and_no_two_overlap():
    env = _environments()
    taken: set[int] = set()
    for name, service in _services("asterisk").items():
        start, end = int(env[f"{name}-config"]["IVR_SIP_RTP_START"]), int(env[f"{name}-config"]["IVR_SIP_RTP_END"])
        ports = set(range(start, end + 1))

        assert f"{start}-{end}:{start}-{end}/udp" in service["ports"], name
        assert not ports & taken, name
        taken |= ports


def test_the_kamailio_config_docker_renders_is_accepted_by_kamailio(tmp_path):
    from ivr.cli import main
    from ivr.runtime.kamailio import BINARY

    if not Path(BINARY).exists():
        pytest.skip("Kamailio is not installed (./dev setup installs it)")
    command = compose()["services"]["kamailio-config"]["command"]
    args = [a.replace("${IVR_SIP_PUBLIC_ADDRESS:-127.0.0.1}", "203.0.113.5") for a in command[1:]]
    args[args.index("--out") + 1] = str(tmp_path)

    assert main([*args, "--etc", str(tmp_path)]) == 0
    check = subprocess.run([BINARY, "-c", "-f", str(tmp_path / "kamailio.cfg")], capture_output=True, text=True,
                           timeout=30, cwd=tmp_path)
    assert check.returncode == 0, check.stderr[-800:]
    assert "advertise 203.0.113.5:5060" in (tmp_path / "kamailio.cfg").read_text()


def test_docker_asterisk_comes_from_the_same_debian_packages_as_the_local_root():
    from ivr.runtime.rootfs import PACKAGES

    text = (DOCKER / "Dockerfile").read_text()
    assert re.search(r"^FROM debian:sid", text, re.MULTILINE)
    for package in PACKAGES:
        assert package in text


def _environments() -> dict[str, dict[str, str]]:
    out = {}
    for name, service in compose()["services"].items():
        env = service.get("environment") or {}
        out[name] = {str(k): str(v) for k, v in (env.items() if isinstance(env, dict) else [])}
    return out


def test_every_ivr_variable_compose_sets_is_a_real_setting():
    """A typo (or IVR_DATABASE_URL, which nothing reads) would be silently ignored by the controller."""
    from ivr.sms.config import DEPLOY_ENV, SECRET_ENV

    known = {f"IVR_{name}".upper() for name in load_settings(env={}).flat()}
    known |= set(SECRET_ENV.values()) | set(DEPLOY_ENV.values()) | {"IVR_HOME", "IVR_CONFIG"}
    unknown = sorted({var for env in _environments().values() for var in env
                      if var.startswith("IVR_") and var not in known})
    assert unknown == []


def test_every_controller_in_compose_uses_the_one_postgresql_and_needs_its_secrets_set():
    postgres = _address(compose()["services"]["postgres"])
    for name in _services("controller"):
        env = _environments()[name]
        assert env["IVR_JOURNEY_BACKEND"] == "postgres", name
        assert env["IVR_JOURNEY_POSTGRES_DSN"].startswith("postgresql://"), name
        assert f"@{postgres}/" in env["IVR_JOURNEY_POSTGRES_DSN"], name
        for secret in ("IVR_TOKENS_SECRET", "IVR_AGENT_API_KEY"):
            assert ":?" in env[secret], f"{name}: {secret} must have no default: compose refuses to start without it"


def test_kannel_in_docker_takes_texts_from_both_controllers_on_its_own_address():
    kannel = _address(compose()["services"]["kannel"])
    render = _environments()["kannel-config"]
    assert render["IVR_SMS_SENDSMS_HOST"] == kannel
    allowed = render["IVR_SMS_SENDSMS_ALLOW"].split(";")
    for name in _services("controller"):
        assert _environments()[name]["IVR_SMS_SENDSMS_HOST"] == kannel, name
        assert _address(compose()["services"][name]) in allowed, name
