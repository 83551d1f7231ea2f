"""The hub's scheduler jobs (APScheduler 3, one ``BackgroundScheduler`` per process).

``contexts`` holds, by name, the :class:`HubContext` and scheduler each job runs against (jobs
take that name as their one primitive argument); ``maintenance`` has the health, alarm,
camera, telemetry, webhook and hub-time (the nodes' clock beacon) jobs; ``broadcasts`` the
plan and delivery-check jobs; ``scheduler`` builds the scheduler with all of them.
"""
