"""Errors the services raise; the API and the web UI map them to HTTP statuses."""


class ServiceError(Exception):
    """Base: a request that cannot be done; the message is safe to show."""


class NotFound(ServiceError):
    pass


class Conflict(ServiceError):
    pass


class Invalid(ServiceError):
    pass


class Forbidden(ServiceError):
    """The acting user's role may not do this (to this thing)."""


class Unavailable(ServiceError):
    """A part the request needs is not running in this process (e.g. no MQTT link)."""


class Throttled(ServiceError):
    """Too many failed attempts from this client: refused until later (HTTP 429, ``Retry-After``)."""

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


# error -> HTTP status, for the API's handler and the web's refusal pages alike
HTTP_STATUS: dict[type[ServiceError], int] = {NotFound: 404, Conflict: 409, Invalid: 422, Forbidden: 403,
                                              Unavailable: 503, Throttled: 429}


def http_status(exc: ServiceError) -> int:
    return next((code for kind, code in HTTP_STATUS.items() if isinstance(exc, kind)), 400)
