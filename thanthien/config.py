"""Loading and validating TOML configuration files, shared by the hub and the edge agent.

A file is read once at start-up; environment variables override it
(``THANTHIEN_EDGE_MQTT__PASSWORD`` overrides ``[mqtt] password`` of an edge file). Every
problem is collected and reported together, each with its location in the file.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from thanthien.protocol import DEFAULT_ROOT


class Section(BaseModel):
    """Base of every config table: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


class MqttSettings(Section):
    host: str = Field("127.0.0.1", description="Broker host name or address.")
    port: int = Field(1883, ge=1, le=65535, description="Broker port (8883 for TLS).")
    username: str | None = Field(None, description="Broker user; an edge node defaults to its node id.")
    password: SecretStr | None = Field(None, description="Broker password (or use client certificates).")
    root: str = Field(DEFAULT_ROOT, pattern=r"^[^+#/][^+#]*[^+#/]$", description="Topic root.")
    keepalive_s: int = Field(30, ge=5, le=600, description="MQTT keepalive in seconds.")
    session_expiry_s: int = Field(
        7 * 24 * 3600, ge=0, le=30 * 24 * 3600,
        description="MQTT v5 session expiry: how long the broker keeps queued QoS 1 messages.",
    )
    tls_ca: Path | None = Field(None, description="CA certificate to verify the broker (enables TLS).")
    tls_cert: Path | None = Field(None, description="Client certificate (identity as username).")
    tls_key: Path | None = Field(None, description="Client private key.")
    reconnect_min_s: float = Field(1.0, gt=0, le=60, description="First reconnect delay.")
    reconnect_max_s: float = Field(30.0, gt=0, le=600, description="Longest reconnect delay.")

    @model_validator(mode="after")
    def _backoff_order(self) -> MqttSettings:
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must not be below reconnect_min_s")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together")
        return self


class LoggingSettings(Section):
    level: str = Field("INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")


class FileSettings(BaseSettings):
    """A settings model whose values come from a TOML file, overridden by the environment."""

    model_config = ConfigDict(extra="forbid", env_nested_delimiter="__")  # type: ignore[assignment]

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The file's contents arrive as init values; the environment wins over them.
        return env_settings, init_settings

    def problems(self) -> list[str]:
        """Checks across fields that pydantic's per-field validation cannot see."""
        return []


S = TypeVar("S", bound=FileSettings)


class ConfigError(Exception):
    """A configuration file that cannot be used; ``problems`` lists every reason."""

    def __init__(self, path: Path | str, problems: list[str]) -> None:
        self.path = Path(path)
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{path}: {len(problems)} problem(s)\n{lines}")


def format_location(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(file)"


def read_toml(path: Path | str) -> dict[str, Any]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(path, [f"cannot read file: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(path, [f"not UTF-8 text: {exc}"]) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, [f"TOML syntax: {exc}"]) from None


def validate_data(model: type[S], data: dict[str, Any], path: Path | str = "<config>") -> S:
    try:
        settings = model(**data)
    except ValidationError as exc:
        problems = [
            f"{format_location(err['loc'])}: {err['msg']}"
            + (f" (got {err['input']!r})" if _echoable(err) else "")
            for err in exc.errors(include_url=False)
        ]
        raise ConfigError(path, problems) from None
    extra = settings.problems()
    if extra:
        raise ConfigError(path, extra)
    return settings


SECRET_WORDS = ("password", "secret", "token", "key", "url")


def _echoable(err: Any) -> bool:
    """Echo a short bad value to help the reader, but never one that may be a secret."""
    value = err.get("input")
    secret = any(w in str(part).lower() for part in err["loc"] for w in SECRET_WORDS)
    return (not secret and isinstance(value, str | int | float | bool) and len(repr(value)) < 60
            and err["type"] not in ("missing", "extra_forbidden"))


def load_config(model: type[S], path: Path | str) -> S:
    """Read, merge with the environment and validate; raise :class:`ConfigError` listing all
    problems."""
    return validate_data(model, read_toml(path), path)
