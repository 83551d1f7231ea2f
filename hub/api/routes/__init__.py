"""One router per resource; ``ROUTERS`` is mounted under /api/v1 by the app factory."""
