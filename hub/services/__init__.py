"""Business logic shared by the API routes, the MQTT ingest handlers and the scheduler jobs.

Every function takes the SQLAlchemy session and its inputs as keyword arguments, works in
UTC and leaves committing to its caller (one transaction per request, batch or job run).
The exceptions send something out after their own commit and take the hub context instead
(``speaker_commands``: a command to each speaker). Who may do what is decided here too
(``hub/roles.py`` names the permissions), so the API and the web answer alike. A change
other parts must follow (plans after a broadcast change) is marked on the session
(``db.session.mark_changed``) and followed up after the commit, whoever committed it.
"""
