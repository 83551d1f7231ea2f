"""Business logic shared by the API routes, the MQTT ingest handlers and the scheduler jobs.

Every function takes the SQLAlchemy session and its inputs as keyword arguments, works in
UTC and leaves committing to its caller (one transaction per request, batch or job run).
"""
