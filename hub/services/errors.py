"""Errors the services raise; the API maps them to HTTP statuses."""


class ServiceError(Exception):
    """Base: a request that cannot be done; the message is safe to show."""


class NotFound(ServiceError):
    pass


class Conflict(ServiceError):
    pass


class Invalid(ServiceError):
    pass
