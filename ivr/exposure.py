"""No demo secret behind a listener that other machines can reach.

The embedded defaults make ``./dev up`` work on a fresh machine: every secret has a demo
value, and every listener is bound to 127.0.0.1. The moment one listener is bound beyond
loopback (``IVR_HTTP_HOST=0.0.0.0``, Docker's ``0.0.0.0`` binds), those demo values are
public knowledge: anyone could forge agent tokens, read journeys with the demo agent key,
log in to AMI, or reload the menus. So ``ivr serve`` and ``ivr asterisk up|render`` refuse to
start then, naming each weak secret, the variable that sets it and how to make one.

A secret is weak when it is the shipped demo value, a placeholder (``change-me``), empty, or
shorter than its minimum.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from ivr.errors import ConfigError
from ivr.settings import Settings

#: Values that mean "nobody set this": the shipped placeholders and the usual suspects.
PLACEHOLDERS = frozenset({"", "change-me", "changeme", "change_me", "secret", "password", "admin", "demo"})
#: How to make a good secret, for the error message.
MAKE_ONE = "e.g. `openssl rand -hex 32`"


@dataclass(frozen=True)
class Listener:
    """A socket we bind: which setting chooses its address, and the address."""

    setting: str
    env: str
    address: str

    @property
    def beyond_loopback(self) -> bool:
        return not is_loopback(self.address)


@dataclass(frozen=True)
class Secret:
    """A credential: its setting, the variable that sets it, its value and what it must not be."""

    setting: str
    env: str
    value: str
    demo: str
    min_length: int = 16

    def weakness(self) -> str | None:
        """Why this value must not face the network, or None when it may."""
        if self.value == self.demo:
            return "is the demo value shipped with ivr"
        if self.value.strip().lower() in PLACEHOLDERS:
            return "is empty or a placeholder" if self.value.strip() else "is empty"
        if len(self.value) < self.min_length:
            return f"is shorter than {self.min_length} characters"
        return None


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a bind address) is reachable from this machine only."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False  # a wildcard ("", "0.0.0.0", "::") or a name: other machines may reach it


def controller_listeners(settings: Settings) -> list[Listener]:
    return [Listener("[http] host", "IVR_HTTP_HOST", settings.http.host),
            Listener("[agi] host", "IVR_AGI_HOST", settings.agi.host)]


def asterisk_listeners(settings: Settings) -> list[Listener]:
    return [Listener("[sip] bind", "IVR_SIP_BIND", settings.sip.bind),
            Listener("[ami] bind", "IVR_AMI_BIND", settings.ami.bind),
            Listener("[ari] bind", "IVR_ARI_BIND", settings.ari.bind)]


def asterisk_secrets(settings: Settings) -> list[Secret]:
    """What Asterisk's rendered config holds: the AMI and ARI logins and the agents' SIP password."""
    defaults = Settings()
    return [Secret("[ami] secret", "IVR_AMI_SECRET", settings.ami.secret, defaults.ami.secret),
            Secret("[ari] password", "IVR_ARI_PASSWORD", settings.ari.password, defaults.ari.password),
            Secret("[sip] agent_password", "IVR_SIP_AGENT_PASSWORD", settings.sip.agent_password,
                   defaults.sip.agent_password, min_length=12)]


def controller_secrets(settings: Settings) -> list[Secret]:
    """Every secret of ``[...]`` settings the controller holds or presents (the Asterisk logins too);
    the SMS gateway's own come from :func:`ivr.sms.config.gateway_secrets`."""
    defaults = Settings()
    found = [Secret("[tokens] secret", "IVR_TOKENS_SECRET", settings.tokens.secret, defaults.tokens.secret,
                    min_length=32),
             Secret("[agent_api] key", "IVR_AGENT_API_KEY", settings.agent_api.key, defaults.agent_api.key),
             Secret("[admin] key", "IVR_ADMIN_KEY", settings.admin.key, defaults.admin.key),
             *asterisk_secrets(settings)]
    if settings.admin.metrics_key:
        found.append(Secret("[admin] metrics_key", "IVR_ADMIN_METRICS_KEY", settings.admin.metrics_key, ""))
    return found


class DemoSecretsExposed(ConfigError):
    """A listener faces the network while a secret is the demo value (or a placeholder)."""

    error_id = "demo-secrets-exposed"


def refuse_weak_secrets(listeners: Iterable[Listener], secrets: Iterable[Secret]) -> None:
    """Raise :class:`DemoSecretsExposed` naming each weak secret when any listener is beyond loopback."""
    exposed = [x for x in listeners if x.beyond_loopback]
    if not exposed:
        return
    weak = [(s, why) for s in secrets if (why := s.weakness()) is not None]
    if not weak:
        return
    where = ", ".join(f"{x.setting} = {x.address or '(all addresses)'}" for x in exposed)
    lines = [f"  {s.setting} {why}: set {s.env} ({MAKE_ONE}; at least {s.min_length} characters)"
             for s, why in weak]
    raise DemoSecretsExposed(
        f"not starting: {where} can be reached from other machines, and {len(weak)} secret(s) "
        "would let anyone in:\n" + "\n".join(lines),
        hint="set each variable above (an .env file or your secret store), or bind every listener to 127.0.0.1")
