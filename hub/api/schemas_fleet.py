"""Request and response bodies of enrollment, node configuration and fleet commands (issue 15)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from thanthien.hub.api.schemas import Body, Out
from thanthien.hub.services.fleet_commands import COMMANDS
from thanthien.hub.services.node_config import ConfigUpdate
from thanthien.protocol.payloads import NodeConfig, ScalarArg


class EnrollmentCodeOut(Out):
    node_id: str
    code: str = Field(description="The one-time code; shown in this answer only (the hub keeps its hash).")
    expires_at: datetime
    command: str = Field(description="What to type on the Pi.")
    qr_svg: str = Field(description="The command as a QR code (inline SVG).")


class EnrollIn(Body):
    code: str = Field(min_length=8, max_length=40, description="The enrollment code IT gave.")
    csr: str | None = Field(None, max_length=8192,
                            description="PEM certificate signing request for a key made on the node "
                                        "(required when the hub issues certificates).")
    agent_version: str = Field("", max_length=32)


class BrokerIdentityOut(BaseModel):
    host: str
    port: int
    username: str
    tls: bool
    password: str | None = Field(None, description="With password identities; shown in this answer only.")
    certificate: str | None = Field(None, description="PEM client certificate (common name = node id).")
    ca: str | None = Field(None, description="PEM certificate of the deployment CA (to verify the broker).")


class EnrollOut(BaseModel):
    node_id: str
    broker: BrokerIdentityOut
    hub_url: str = Field(description="The hub's API as the node reaches it (media downloads).")
    media_token: str = Field(description="The node's bearer token for media; shown in this answer only.")
    config: NodeConfig | None = Field(None, description="The configuration the hub holds for the node.")
    release_key: str | None = Field(None, description="The deployment's Ed25519 release public key (PEM): "
                                                      "the node installs only bundles it signed.")


class ConfigIn(ConfigUpdate):
    """What IT change of the configuration the hub holds for a node."""


class NodeConfigOut(BaseModel):
    node_id: str
    version: int = Field(description="The version the hub publishes (0: none yet).")
    published_at: datetime | None
    settings: dict[str, Any] = Field(description="The config as the node gets it (camera accounts masked).")
    values: dict[str, Any] = Field(description="The values the hub holds for the node (masked likewise).")
    reported_version: int | None = Field(description="The version the node says it runs.")
    reported_refused: int | None = Field(description="The last version the node refused.")
    reported_error: str
    reported_restart: list[str]
    reported_at: datetime | None
    in_force: bool


class CommandIn(Body):
    name: str = Field(description="One of: " + ", ".join(COMMANDS))
    args: dict[str, ScalarArg] = Field(default_factory=dict, max_length=8)


class CommandOut(Out):
    id: int
    node_id: str
    name: str
    label: str
    args: dict[str, Any]
    actor: str
    sent_at: datetime
    status: str = Field(description="ok, error, timeout (no answer in time), sent (waiting) or offline.")
    answered_at: datetime | None
    result: dict[str, Any]
    error: str
