"""Service errors -> HTTP statuses."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from thanthien.hub.services.errors import ServiceError, Throttled, http_status


def install(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def _service_error(_request: Request, exc: ServiceError) -> JSONResponse:
        headers = {"Retry-After": str(exc.retry_after_s)} if isinstance(exc, Throttled) else None
        return JSONResponse({"detail": str(exc)}, status_code=http_status(exc), headers=headers)
