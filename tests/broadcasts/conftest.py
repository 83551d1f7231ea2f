"""Broadcast fixtures: the hub's migrated SQLite/PostgreSQL databases and contexts, plus a
library row for a media file without running ffmpeg."""

from __future__ import annotations

from hub.conftest import _migrated, clock, ctx, db, db_url, pg_url  # noqa: F401  (SQLite and PostgreSQL)
