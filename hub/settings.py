"""Configuration of the hub, loaded from TOML (see config/hub.example.toml)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Literal

from pydantic import Field, HttpUrl, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from thanthien.config import FileSettings, LoggingSettings, MqttSettings, Section
from thanthien.hub.notify.settings import NotifySettings, SmsSettings
from thanthien.hub.services.live import LiveSettings
from thanthien.hub.services.media import MediaSettings
from thanthien.hub.services.proof import ProofSettings
from thanthien.hub.services.schedule import BroadcastSettings
from thanthien.hub.services.tts import TtsSettings
from thanthien.protocol.ids import CounterId, DeviceId, NodeId

ProcessRole = Literal["api", "ingest", "scheduler"]
ALL_PROCESS_ROLES: tuple[ProcessRole, ...] = ("api", "ingest", "scheduler")
DEFAULT_SECRET = "change-me-in-production"


class HubSection(Section):
    site_name: str = Field("UBND", min_length=1, max_length=200, description="Shown in the UI.")
    data_dir: Path = Field(Path("var/hub"), description="Database file, media and logs.")
    timezone: str = Field("Asia/Ho_Chi_Minh", description="Times are shown in this zone.")


class DatabaseSection(Section):
    url: str | None = Field(
        None, description="SQLAlchemy URL; default: a SQLite file in hub.data_dir."
    )
    migrate_on_start: bool = Field(True, description="Run the Alembic migrations at start-up.")


class HttpSection(Section):
    host: str = Field("127.0.0.1", description="Address the API and UI listen on.")
    port: int = Field(8080, ge=1, le=65535)
    secret_key: SecretStr = Field(
        SecretStr(DEFAULT_SECRET), min_length=16,
        description="Signs login tokens.",
    )
    token_ttl_s: int = Field(12 * 3600, ge=60, le=30 * 24 * 3600)


class AuthSection(Section):
    """The login throttle (``services/logins.py``): after ``account_failures`` wrong logins of
    one username, or ``address_failures`` from one client address, each further failure locks
    that name or address for a delay that starts at ``first_delay_s`` and doubles, up to
    ``max_delay_s``. A right password resets the account (not the address)."""

    account_failures: int = Field(5, ge=1, le=1000,
                                  description="Wrong logins of one username before delays begin.")
    address_failures: int = Field(20, ge=1, le=100_000,
                                  description="Wrong logins from one client address before delays begin.")
    first_delay_s: float = Field(30.0, ge=1, le=24 * 3600,
                                 description="The first delay; each further failure doubles it.")
    max_delay_s: float = Field(900.0, ge=1, le=7 * 24 * 3600, description="The longest delay.")
    forget_after_s: float = Field(24 * 3600.0, ge=60, le=365 * 24 * 3600,
                                  description="Failures are forgotten after this long without another.")

    @model_validator(mode="after")
    def _delays_grow(self) -> AuthSection:
        if self.max_delay_s < self.first_delay_s:
            raise ValueError("auth.max_delay_s must not be shorter than auth.first_delay_s")
        return self


class IngestSection(Section):
    client_id: str = Field("thanthien-hub", min_length=1, max_length=64,
                           description="MQTT client id (persistent session) of the ingest role.")
    shared_group: str | None = Field(
        None, pattern=r"^[A-Za-z0-9_-]+$",
        description="MQTT v5 shared-subscription group for several ingest workers (province scale).",
    )
    batch_size: int = Field(500, ge=1, le=5000, description="Most messages committed in one transaction.")
    flush_ms: float = Field(5.0, ge=0, le=5000,
                            description="How long a worker waits for more messages before committing.")
    queue_max: int = Field(100_000, ge=100, description="Messages held in memory before MQTT is slowed.")
    future_press_tolerance_s: float = Field(
        300.0, ge=0, le=24 * 3600,
        description="A rating whose press time is more than this many seconds after the hub received it "
                    "(by the hub's clock) is refused: the node's clock runs ahead. It goes to dead letters "
                    "with the reason.")


class HealthSection(Section):
    heartbeat_s: float = Field(
        30.0, ge=0.1, le=3600, description="Expected telemetry interval of the nodes."
    )
    expiry_heartbeats: float = Field(
        1.5, ge=1.0, le=2.0,
        description="A node silent for this many heartbeats is offline (checked 4 times a heartbeat, "
                    "so it shows offline within two heartbeats).",
    )
    telemetry_retention_days: int = Field(30, ge=1, le=3650, description="Raw telemetry kept this long.")


class AlarmSection(Section):
    remind_s: float = Field(3600.0, ge=1, description="Reminder interval while an alarm is active.")
    check_s: float = Field(30.0, ge=0.1, le=3600, description="How often reminders and rules are checked.")
    webhook_url: HttpUrl | None = Field(None, description="Alarm events are POSTed here as JSON.")
    webhook_timeout_s: float = Field(5.0, gt=0, le=60)
    webhook_attempts: int = Field(5, ge=1, le=100, description="Tries per event before giving up.")
    webhook_backoff_s: float = Field(2.0, ge=0.01, le=3600, description="First retry delay; doubles.")
    outbox_depth_max: int = Field(100, ge=1, description="Outbox backing up above this many ratings.")
    disk_used_pct_max: float = Field(90.0, ge=1, le=100)
    cpu_temp_c_max: float = Field(75.0, ge=20, le=150)
    clock_offset_ms_max: float = Field(2000.0, ge=1)
    spike_window_min: float = Field(15.0, gt=0, le=24 * 60, description="Negative-rating spike window.")
    spike_min_presses: int = Field(4, ge=1)
    spike_ratio: float = Field(0.5, gt=0, le=1, description="Share of the two lowest levels that alarms.")


class CameraAlarmSection(Section):
    alarm_after_s: float = Field(
        300.0, ge=0, le=24 * 3600,
        description="A camera down, frozen or black for this long raises an alarm for IT staff.")


class EnrollmentSection(Section):
    """Putting a node into service with a one-time code (``services/enrollment.py``): how long a
    code is valid, the broker identity nodes get and where the broker's files are."""

    code_ttl_s: float = Field(86400.0, ge=60, le=30 * 86400,
                              description="An enrollment code expires this long after IT made it.")
    address_failures: int = Field(
        10, ge=1, le=100_000,
        description="Refused enrollment codes from one client address before each further one locks the "
                    "address, with the delays of `[auth]` (first_delay_s doubling up to max_delay_s).")
    identity: Literal["password", "certificate"] = Field(
        "password",
        description="`password`: a broker password in the broker's password file; `certificate`: a "
                    "client certificate signed from the CA in `pki_dir` for a key made on the node.")
    broker_data: Path | None = Field(
        None, description="The data directory of `thanthien broker` (its `passwd` and `mosquitto.pid`): "
                          "the hub writes node passwords there and makes the broker reload them (SIGHUP). "
                          "Unset: the hub cannot enroll nodes with passwords.")
    pki_dir: Path | None = Field(
        None, description="The deployment CA (`thanthien provision ca`): node certificates are signed with "
                          "it and revoked ones listed in its `crl.pem` (the broker's `crlfile`).")
    broker_host: str | None = Field(
        None, max_length=253,
        description="The broker address nodes connect to; default: the host name the node reached the "
                    "hub at when it enrolled.")
    broker_port: int | None = Field(
        None, ge=1, le=65535, description="Default: 8883 with certificates or `broker_tls`, else 1883.")
    broker_tls: bool = Field(False, description="Nodes connect with TLS (always with certificates).")
    hub_url: str | None = Field(
        None, pattern=r"^https?://[^\s/]+(/\S*)?$",
        description="The hub's API as nodes reach it (media downloads); default: the URL the node "
                    "enrolled through.")


class FleetSection(Section):
    """Commands to nodes from the page and the API, and the configuration the hub holds for them."""

    command_timeout_s: float = Field(8.0, gt=0, le=120,
                                     description="How long a command waits for the node's answer.")
    config_check_s: float = Field(60.0, ge=1, le=3600,
                                  description="How often node configs are rebuilt from the registry and "
                                              "published when they changed.")


class PublicSection(Section):
    """The public page (``/p/``, no login) and residents' fault reports from the QR code on a
    loudspeaker pole (``services/fault_reports.py``)."""

    reports_per_hour: int = Field(5, ge=1, le=1000,
                                  description="Fault reports one client address may send per hour.")
    due_hours_broken: float = Field(
        72.0, gt=0, le=30 * 24,
        description="IT answer a report of a broken speaker (or another problem) within this many hours.")
    due_hours_rules: float = Field(
        168.0, gt=0, le=30 * 24,
        description="IT answer a report of a speaker too loud or too early (a schedule or volume "
                    "question) within this many hours.")
    upcoming_days: int = Field(3, ge=1, le=14, description="Days of the broadcast schedule the page shows.")
    base_url: str | None = Field(
        None, pattern=r"^https?://[^\s/]+(/\S*)?$",
        description="The hub as residents' phones reach it, for the QR codes on speaker poles; default: "
                    "the address the IT page was opened at.")


class ReleasesSection(Section):
    """Remote updates of the edge agent (``services/releases.py``)."""

    public_key: Path | None = Field(
        None, description="The deployment's Ed25519 release public key (`thanthien release keygen`): uploads "
                          "are checked with it and nodes get it at enrollment. Unset: no uploads.")
    dir: Path | None = Field(None, description="Where bundles are kept; default `<hub.data_dir>/releases`.")
    download_url: str | None = Field(
        None, pattern=r"^https?://[^\s/]+(/\S*)?$",
        description="The hub's API as nodes reach it for bundles; default `[enrollment] hub_url`, else the "
                    "hub's own address.")


class CommuneDecl(Section):
    """A commune or ward (xã / phường) the hub serves (issue 20); ``home`` names the one a hub
    installed for one town has."""

    code: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    name: str = Field(min_length=1, max_length=200)


class SiteDecl(Section):
    code: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    name: str = Field(min_length=1, max_length=200)
    commune: str | None = Field(None, description="The commune's code; default: the only commune there is.")


class ZoneDecl(Section):
    code: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    name: str = Field(min_length=1, max_length=200)
    kind: Literal["hamlet", "residential_group"] = "hamlet"
    site: str | None = None
    commune: str | None = Field(None, description="The commune's code; default: the only commune there is.")


class CounterDecl(Section):
    code: CounterId
    name: str = Field(min_length=1, max_length=200)
    site: str | None = None
    commune: str | None = Field(None, description="The commune's code; default: the only commune there is.")


class DeviceDecl(Section):
    code: DeviceId
    kind: Literal["rating_box", "speaker", "camera"]
    name: str = Field("", max_length=200)
    counter: CounterId | None = Field(None, description="Rating box: the counter it stands at.")
    zone: str | None = Field(None, description="Speaker: the zone (bản / tổ dân phố) it serves.")


class NodeDecl(Section):
    id: NodeId
    name: str = Field("", max_length=200)
    site: str | None = None
    commune: str | None = Field(None, description="The commune's code; default: the only commune there is.")
    devices: list[DeviceDecl] = Field(default_factory=list, max_length=64)


class RegistrySection(Section):
    """Sites, zones, counters and nodes declared in the file; created or updated at start-up
    (never deleted: the API manages the rest)."""

    communes: list[CommuneDecl] = Field(default_factory=list)
    sites: list[SiteDecl] = Field(default_factory=list)
    zones: list[ZoneDecl] = Field(default_factory=list)
    counters: list[CounterDecl] = Field(default_factory=list)
    nodes: list[NodeDecl] = Field(default_factory=list)


class HubSettings(FileSettings):
    model_config = SettingsConfigDict(
        extra="forbid", env_prefix="THANTHIEN_HUB_", env_nested_delimiter="__"
    )

    hub: HubSection = Field(default_factory=HubSection)
    database: DatabaseSection = Field(default_factory=DatabaseSection)
    mqtt: MqttSettings = Field(default_factory=lambda: MqttSettings(username="hub"))
    http: HttpSection = Field(default_factory=HttpSection)
    auth: AuthSection = Field(default_factory=AuthSection)
    ingest: IngestSection = Field(default_factory=IngestSection)
    health: HealthSection = Field(default_factory=HealthSection)
    alarms: AlarmSection = Field(default_factory=AlarmSection)
    cameras: CameraAlarmSection = Field(default_factory=CameraAlarmSection)
    registry: RegistrySection = Field(default_factory=RegistrySection)
    enrollment: EnrollmentSection = Field(default_factory=EnrollmentSection)
    fleet: FleetSection = Field(default_factory=FleetSection)
    public: PublicSection = Field(default_factory=PublicSection)
    releases: ReleasesSection = Field(default_factory=ReleasesSection)
    media: MediaSettings = Field(default_factory=MediaSettings)
    tts: TtsSettings = Field(default_factory=TtsSettings)
    broadcasts: BroadcastSettings = Field(default_factory=BroadcastSettings)
    proof: ProofSettings = Field(default_factory=ProofSettings)
    live: LiveSettings = Field(default_factory=LiveSettings)
    sms: SmsSettings = Field(default_factory=SmsSettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite:///{self.hub.data_dir / 'hub.db'}"

    @property
    def releases_dir(self) -> Path:
        return self.releases.dir or self.hub.data_dir / "releases"

    def _commune_problems(self) -> list[str]:
        """A declared row names a declared commune (or ``home``); with several, it must name one."""
        from thanthien.hub.tenancy import RESERVED_CODES

        reg, out = self.registry, []
        communes = {c.code for c in reg.communes} | {"home"}
        out += [f"registry.communes: {c.code!r} is a code the public pages use" for c in reg.communes
                if c.code in RESERVED_CODES]
        dup = [c for c, n in Counter(c.code for c in reg.communes).items() if n > 1]
        out += [f"registry.communes: {c!r} appears more than once" for c in dup]
        several = len(reg.communes) > 1
        for table, rows in (("sites", reg.sites), ("zones", reg.zones), ("counters", reg.counters),
                            ("nodes", reg.nodes)):
            for i, row in enumerate(rows):
                if row.commune is not None and row.commune not in communes:
                    out.append(f"registry.{table}[{i}].commune: unknown commune {row.commune!r}")
                elif row.commune is None and several:
                    out.append(f"registry.{table}[{i}].commune: required when several communes are declared")
        return out

    def problems(self) -> list[str]:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        out = []
        try:
            ZoneInfo(self.hub.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            out.append(f"hub.timezone: unknown time zone {self.hub.timezone!r}")
        enroll = self.enrollment
        if enroll.identity == "certificate" and enroll.pki_dir is None:
            out.append("enrollment.pki_dir: required with identity = \"certificate\" (the CA that signs "
                       "node certificates)")
        reg = self.registry
        out += self._commune_problems()
        sites = {s.code for s in reg.sites}
        zones = {z.code for z in reg.zones}
        counters = {c.code for c in reg.counters}
        for table, codes in (("sites", [s.code for s in reg.sites]), ("zones", [z.code for z in reg.zones]),
                             ("counters", [c.code for c in reg.counters]),
                             ("nodes", [n.id for n in reg.nodes])):
            out += [f"registry.{table}: {c!r} appears {n} times" for c, n in Counter(codes).items() if n > 1]
        for i, z in enumerate(reg.zones):
            if z.site is not None and z.site not in sites:
                out.append(f"registry.zones[{i}].site: unknown site {z.site!r}")
        for i, c in enumerate(reg.counters):
            if c.site is not None and c.site not in sites:
                out.append(f"registry.counters[{i}].site: unknown site {c.site!r}")
        for i, node in enumerate(reg.nodes):
            if node.site is not None and node.site not in sites:
                out.append(f"registry.nodes[{i}].site: unknown site {node.site!r}")
            dup = [c for c, n in Counter(d.code for d in node.devices).items() if n > 1]
            out += [f"registry.nodes[{i}].devices: {c!r} appears twice" for c in dup]
            for j, d in enumerate(node.devices):
                loc = f"registry.nodes[{i}].devices[{j}]"
                if d.kind == "rating_box" and d.counter is None:
                    out.append(f"{loc}.counter: a rating box needs its counter")
                if d.counter is not None and d.counter not in counters:
                    out.append(f"{loc}.counter: unknown counter {d.counter!r}")
                if d.zone is not None and d.zone not in zones:
                    out.append(f"{loc}.zone: unknown zone {d.zone!r}")
        return out
