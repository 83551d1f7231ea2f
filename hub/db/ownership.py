"""Which rows of each table belong to one commune (issue 20): what a commune's backup holds.

Every table of the schema is here, once (a test checks it), as one of:

- a condition on its own rows: the commune's (its ``commune_id``, its node, counter, dossier,
  alarm, broadcast …), plus the rows of other tables those rows point at, so a commune's backup
  restores into an empty database with every foreign key whole (a province broadcast that played
  on the commune's speakers, the province's media it used, a province contact an alarm paged);
- ``ALL``: hub-wide settings the commune's data needs as they are (notice templates, the TTS
  dictionary, the rating counts' zone);
- ``NONE``: the province's own, left out (software releases and roll-outs, login throttling).

The communes table itself is kept whole (codes and names only): rows of the commune may name
another one (a media item another commune uploaded that a province broadcast used).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from sqlalchemy import ColumnElement, or_, select, true

from thanthien.hub.db import models as m

ALL: Final = "all"
NONE: Final = "none"

Rule = Callable[[int], ColumnElement[bool]]


def _nodes(c: int) -> Any:
    return select(m.Node.id).where(m.Node.commune_id == c)


def _counters(c: int) -> Any:
    return select(m.Counter.code).where(m.Counter.commune_id == c)


def _alarms(c: int) -> Any:
    return select(m.Alarm.id).where(m.Alarm.commune_id == c)


def _dossiers(c: int) -> Any:
    return select(m.Dossier.id).where(m.Dossier.commune_id == c)


def _occurrences_heard(c: int) -> Any:
    """Occurrences that had a delivery to one of the commune's nodes."""
    return select(m.Delivery.occurrence_id).where(m.Delivery.node_id.in_(_nodes(c)))


def _broadcasts(c: int) -> Any:
    """The commune's broadcasts, and province (or other) ones that played on its speakers."""
    played = select(m.Occurrence.broadcast_id).where(m.Occurrence.id.in_(_occurrences_heard(c)))
    return select(m.Broadcast.id).where(or_(m.Broadcast.commune_id == c, m.Broadcast.id.in_(played)))


def _occurrences(c: int) -> Any:
    return select(m.Occurrence.id).where(m.Occurrence.broadcast_id.in_(_broadcasts(c)))


def _media(c: int) -> ColumnElement[bool]:
    return or_(m.MediaItem.commune_id == c,
               m.MediaItem.sha256.in_(select(m.Broadcast.media_sha256).where(m.Broadcast.id.in_(_broadcasts(c)))),
               m.MediaItem.sha256.in_(select(m.Occurrence.media_sha256).where(m.Occurrence.id.in_(_occurrences(c)))))


def _officers(c: int) -> ColumnElement[bool]:
    rated = select(m.Rating.officer_id).where(m.Rating.counter_code.in_(_counters(c)))
    handled = select(m.Dossier.officer_id).where(m.Dossier.commune_id == c)
    return or_(m.Officer.commune_id == c, m.Officer.id.in_(rated), m.Officer.id.in_(handled))


def _users(c: int) -> ColumnElement[bool]:
    linked = select(m.Officer.user_id).where(_officers(c))
    return or_(m.User.commune_id == c, m.User.id.in_(linked))


def _contacts(c: int) -> ColumnElement[bool]:
    paged = select(m.AlarmPage.contact_id).where(m.AlarmPage.alarm_id.in_(_alarms(c)))
    return or_(m.NotifyContact.commune_id == c, m.NotifyContact.id.in_(paged))


def _messages(c: int) -> ColumnElement[bool]:
    return or_(m.SmsMessage.dossier_id.in_(_dossiers(c)), m.SmsMessage.alarm_id.in_(_alarms(c)))


def _node(model: Any) -> Rule:
    return lambda c: model.node_id.in_(_nodes(c))


def _own(model: Any) -> Rule:
    return lambda c: model.commune_id == c


RULES: Final[dict[str, Rule | str]] = {
    "communes": ALL,
    "sites": lambda c: or_(m.Site.commune_id == c,
                           m.Site.id.in_(select(m.Node.site_id).where(m.Node.commune_id == c))),
    "zones": _own(m.Zone),
    "counters": _own(m.Counter),
    "nodes": _own(m.Node),
    "devices": _node(m.Device),
    "officers": _officers,
    "users": _users,
    "roster_patterns": lambda c: m.RosterPattern.counter_id.in_(
        select(m.Counter.id).where(m.Counter.commune_id == c)),
    "roster_exceptions": lambda c: or_(
        m.RosterException.counter_id.in_(select(m.Counter.id).where(m.Counter.commune_id == c)),
        m.RosterException.officer_id.in_(select(m.Officer.id).where(m.Officer.commune_id == c))),
    "ratings": lambda c: m.Rating.counter_code.in_(_counters(c)),
    "rating_counts": lambda c: m.RatingCount.counter_code.in_(_counters(c)),
    "rating_month_counts": lambda c: m.RatingMonthCount.counter_code.in_(_counters(c)),
    "rating_count_zone": ALL,
    "dead_letters": _node(m.DeadLetter),
    "telemetry": _node(m.TelemetrySample),
    "telemetry_hourly": _node(m.TelemetryHourly),
    "alarms": _own(m.Alarm),
    "alarm_notifications": lambda c: m.AlarmNotification.alarm_id.in_(_alarms(c)),
    "camera_status": _node(m.CameraStatus),
    "camera_periods": _node(m.CameraPeriod),
    "camera_thumbnails": _node(m.CameraThumbnailRow),
    "media_items": _media,
    "node_media_tokens": _node(m.NodeMediaToken),
    "broadcasts": lambda c: m.Broadcast.id.in_(_broadcasts(c)),
    "broadcast_audit": lambda c: m.BroadcastAudit.broadcast_id.in_(_broadcasts(c)),
    "broadcast_occurrences": lambda c: m.Occurrence.id.in_(_occurrences(c)),
    "broadcast_deliveries": lambda c: m.Delivery.node_id.in_(_nodes(c)),
    "playback_events": _node(m.PlaybackReport),
    "broadcast_rules": lambda c: or_(
        m.BroadcastRule.commune_id == c,
        m.BroadcastRule.zone_id.in_(select(m.Zone.id).where(m.Zone.commune_id == c)),
        m.BroadcastRule.device_id.in_(select(m.Device.id).where(m.Device.node_id.in_(_nodes(c))))),
    "tts_lexicon": ALL,
    "media_listens": lambda c: m.MediaListen.sha256.in_(select(m.MediaItem.sha256).where(_media(c))),
    "node_plans": _node(m.NodePlan),
    "login_throttle": NONE,
    "audit_log": _own(m.AuditEntry),
    "dossiers": _own(m.Dossier),
    "dossier_events": lambda c: m.DossierEvent.dossier_id.in_(_dossiers(c)),
    "dossier_ratings": lambda c: m.DossierRating.dossier_id.in_(_dossiers(c)),
    "sms_templates": ALL,
    "sms_messages": _messages,
    "sms_reports": lambda c: m.SmsReport.ref.in_(select(m.SmsMessage.gateway_ref).where(_messages(c))),
    "sms_inbound": lambda c: m.SmsInbound.dossier_id.in_(_dossiers(c)),
    "sms_optouts": lambda c: m.SmsOptOut.phone.in_(select(m.Dossier.phone).where(m.Dossier.commune_id == c)),
    "notify_contacts": _contacts,
    "oncall_shifts": lambda c: m.OnCallShift.contact_id.in_(select(m.NotifyContact.id).where(_contacts(c))),
    "alarm_pages": lambda c: m.AlarmPage.alarm_id.in_(_alarms(c)),
    "email_messages": lambda c: m.EmailMessage.alarm_id.in_(_alarms(c)),
    "enrollment_codes": _node(m.EnrollmentCode),
    "node_credentials": _node(m.NodeCredential),
    "node_configs": _node(m.NodeConfigRow),
    "node_commands": _node(m.NodeCommand),
    "node_state_changes": _node(m.NodeStateChange),
    "fault_reports": _own(m.FaultReport),
    "releases": NONE,
    "rollouts": NONE,
    "rollout_nodes": NONE,
}


def commune_clause(table: str, commune_id: int) -> ColumnElement[bool] | None:
    """The rows of ``table`` a backup of commune ``commune_id`` holds; ``None``: none of them."""
    rule = RULES[table]
    if rule == ALL:
        return true()
    if rule == NONE:
        return None
    return rule(commune_id)  # type: ignore[operator]
