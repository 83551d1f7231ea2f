"""Telling people: the SMS gateways (a GSM modem through gammu-smsd, an SMPP 3.4 account), the
SMTP mailer, and their settings. The rules (templates, Decree 91, the outbox, alarms to
people) are the services' (``services/sms_*.py``, ``services/dossiers.py``,
``services/paging.py``); this package only moves messages across the seam."""
