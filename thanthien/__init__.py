"""Thân Thiện edge platform: shared infrastructure (CLI, config loading, MQTT link, broker)."""

__version__ = "0.1.0"
