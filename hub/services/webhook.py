"""Delivering alarm events to the configured webhook (JSON POST), with retries and backoff."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from thanthien.hub.db.models import AlarmNotification

log = logging.getLogger(__name__)


def deliver_pending(session: Session, *, url: str, now: datetime, attempts: int, backoff_s: float,
                    timeout_s: float, site: str, post: Callable[..., httpx.Response] | None = None,
                    limit: int = 50) -> tuple[int, int]:
    """POST every due notification in order; returns (delivered, failed attempts). A failed try
    is retried after ``backoff_s`` × 2^(tries−1); after ``attempts`` tries it is given up."""
    due = list(session.scalars(
        select(AlarmNotification)
        .where(AlarmNotification.delivered.is_(False), AlarmNotification.failed.is_(False),
               AlarmNotification.next_attempt_at <= now)
        .order_by(AlarmNotification.id).limit(limit)))
    delivered = failures = 0
    if not due:
        return 0, 0
    with httpx.Client(timeout=timeout_s) as client:
        send = post or client.post
        for note in due:
            body = dict(note.body, site=site, sent_at=now.isoformat(), notification_id=note.id)
            note.attempts += 1
            try:
                response = send(url, json=body)
                if response.status_code >= 300:
                    raise httpx.HTTPStatusError(f"HTTP {response.status_code}", request=response.request,
                                                response=response)
            except httpx.HTTPError as exc:
                failures += 1
                note.last_error = str(exc)[:500] or type(exc).__name__
                if note.attempts >= attempts:
                    note.failed = True
                    log.error("alarm webhook gave up on notification %d after %d tries: %s", note.id,
                              note.attempts, note.last_error)
                else:
                    note.next_attempt_at = now + timedelta(seconds=backoff_s * 2 ** (note.attempts - 1))
                    log.warning("alarm webhook try %d failed (%s); retrying at %s", note.attempts,
                                note.last_error, note.next_attempt_at.isoformat())
                continue
            note.delivered = True
            note.last_error = ""
            delivered += 1
    return delivered, failures
