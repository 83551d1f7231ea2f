"""Responses the API and the web UI build the same way."""

from __future__ import annotations

from fastapi import Response

from thanthien.hub.services.reports import Download


def attachment(download: Download) -> Response:
    """A file the browser saves (CSV, XLSX) rather than shows."""
    return Response(download.data, media_type=download.media_type,
                    headers={"Content-Disposition": f'attachment; filename="{download.filename}"'})
