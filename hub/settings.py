"""Configuration of the hub, loaded from TOML (see config/hub.example.toml)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from thanthien.config import FileSettings, LoggingSettings, MqttSettings, Section


class HubSection(Section):
    site_name: str = Field("UBND", min_length=1, max_length=200, description="Shown in the UI.")
    data_dir: Path = Field(Path("var/hub"), description="Database file, media and logs.")
    timezone: str = Field("Asia/Ho_Chi_Minh", description="Times are shown in this zone.")


class DatabaseSection(Section):
    url: str | None = Field(
        None, description="SQLAlchemy URL; default: a SQLite file in hub.data_dir."
    )


class HttpSection(Section):
    host: str = Field("127.0.0.1", description="Address the API and UI listen on.")
    port: int = Field(8080, ge=1, le=65535)
    secret_key: SecretStr = Field(
        SecretStr("change-me-in-production"), min_length=16,
        description="Signs login tokens.",
    )
    token_ttl_s: int = Field(12 * 3600, ge=60, le=30 * 24 * 3600)


class HealthSection(Section):
    heartbeat_s: float = Field(
        30.0, ge=1, le=3600, description="Expected telemetry interval of the nodes."
    )


class HubSettings(FileSettings):
    model_config = SettingsConfigDict(
        extra="forbid", env_prefix="THANTHIEN_HUB_", env_nested_delimiter="__"
    )

    hub: HubSection = Field(default_factory=HubSection)
    database: DatabaseSection = Field(default_factory=DatabaseSection)
    mqtt: MqttSettings = Field(default_factory=lambda: MqttSettings(username="hub"))
    http: HttpSection = Field(default_factory=HttpSection)
    health: HealthSection = Field(default_factory=HealthSection)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite:///{self.hub.data_dir / 'hub.db'}"

    def problems(self) -> list[str]:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        out = []
        try:
            ZoneInfo(self.hub.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            out.append(f"hub.timezone: unknown time zone {self.hub.timezone!r}")
        return out
