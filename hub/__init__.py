"""The central hub: ingest, registry, health, alarms, broadcasts, the API and the web UI."""
