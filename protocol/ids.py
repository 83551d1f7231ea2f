"""Identifier types used in topics and payloads.

Ids end up inside MQTT topic levels and broker usernames, so they may not contain the
topic wildcards ``+`` and ``#`` nor the level separator ``/``: lower-case ASCII letters,
digits and dashes only.
"""

from typing import Annotated

from pydantic import StringConstraints

ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"

NodeId = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
DeviceId = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
CounterId = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
