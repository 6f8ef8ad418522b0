"""asterisk-docker/ cannot run here, so its consistency is checked instead:
every file it refers to exists, and Asterisk is configured from the same directories the
local root is rendered from."""

from __future__ import annotations

import re
from pathlib import Path

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


def test_asterisk_config_in_docker_is_rendered_from_the_local_roots_sources():
    sources = ConfigSources.of(load_settings())
    config_service = compose()["services"]["asterisk-config"]
    mounts = {v.split(":")[1]: (DOCKER / v.split(":")[0]).resolve() for v in config_service["volumes"]
              if v.startswith(".")}

    assert mounts["/opt/ivr/config"] / "asterisk" == sources.asterisk.resolve()
    assert mounts["/opt/ivr/dialplan"] == sources.dialplan.resolve()
    assert config_service["command"][:3] == ["ivr", "asterisk", "render"]
    assert "asterisk-etc:/etc/asterisk:ro" in compose()["services"]["asterisk"]["volumes"]


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
    from ivr.sms.config import SECRET_ENV

    known = {f"IVR_{name}".upper() for name in load_settings(env={}).flat()}
    known |= set(SECRET_ENV.values()) | {"IVR_HOME", "IVR_CONFIG"}
    unknown = sorted({var for env in _environments().values() for var in env
                      if var.startswith("IVR_") and var not in known})
    assert unknown == []


def test_the_controller_in_compose_uses_postgresql_and_needs_its_secrets_set():
    env = _environments()["controller"]
    assert env["IVR_JOURNEY_BACKEND"] == "postgres"
    assert env["IVR_JOURNEY_POSTGRES_DSN"].startswith("postgresql://") and "@postgres/" in env["IVR_JOURNEY_POSTGRES_DSN"]
    for secret in ("IVR_TOKENS_SECRET", "IVR_AGENT_API_KEY"):
        assert ":?" in env[secret], f"{secret} must have no default: compose refuses to start without it"
