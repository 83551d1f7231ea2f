"""The devices part of a commune for the tenancy walk: an alarm on its speaker node, its camera's
status, a telemetry sample, a resident's fault report, an enrollment code, a dead letter, and a
roll-out of a release to its two nodes."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from thanthien.hub.db.models import Release
from thanthien.hub.roles import SYSTEM
from thanthien.hub.services import alarms, cameras, enrollment, fault_reports, health, releases
from thanthien.hub.services.deadletters import record_dead_letter
from thanthien.hub.settings import EnrollmentSection, PublicSection
from thanthien.protocol.payloads import CameraHealth, Telemetry


def seed(session: Session, *, commune: str, prefix: str, marker: str, now: datetime,
         registry: dict[str, Any]) -> dict[str, Any]:
    """Rows of this room in the commune (named with ``marker``); the ids the walk fills paths with."""
    speaker, box, camera = registry["speaker_node"], registry["box_node"], registry["camera"]
    alarm = alarms.raise_alarm(session, kind="node_offline", subject=speaker, severity="critical", now=now,
                               notify=False, message=f"Loa {marker} mất kết nối", details={"node": speaker})
    health.record_telemetry(session, t=Telemetry(
        node=box, session=1, at=now, uptime_s=60, agent_version="1.0.0", load_1m=0.1, load_5m=0.1,
        load_15m=0.1, mem_used_pct=20, disk_used_pct=95, disk_free_mb=100, outbox_depth=0,
        ignored_presses=0), now=now, thresholds=health.Thresholds(), notify=False)
    cameras.apply_health(session, health=CameraHealth(
        node=box, camera=camera, state="down", reason=f"RTSP {marker} không trả lời",
        since=now - timedelta(hours=1), at=now), now=now, alarm_after_s=60,
        tz=ZoneInfo("Asia/Ho_Chi_Minh"), notify=False)
    ticket = fault_reports.report(session, node_id=speaker, device_code="loa", kind="broken",
                                  message=f"Loa {marker} không kêu", address=f"{prefix}-dan", now=now,
                                  cfg=PublicSection())
    enrollment.issue_code(session, actor=SYSTEM, node_id=box, now=now, settings=EnrollmentSection())
    record_dead_letter(session, topic=f"thanthien/v1/node/{speaker}/rating", kind="rating", node_id=speaker,
                       reason=f"thiếu trường ({marker})", payload=b"{}", now=now)
    version = f"9.0.{1 if prefix == 'xa' else 2}"
    session.add(Release(version=version, sha256=f"{prefix:0<64}"[:64], size=1, python="3.11", platform="any",
                        key_fingerprint="0" * 16, files=1, uploaded_at=now, uploaded_by="tinh"))
    session.flush()
    rollout = releases.create_rollout(session, actor=SYSTEM, now=now, request=releases.RolloutRequest(
        version=version, target="nodes", nodes=[speaker, box], stages=[50, 100]))
    session.flush()
    return {"alarm_id": alarm.alarm.id, "rollout_id": rollout.id, "rollouts.action": "pause",
            "releases.action": "pause", "report_id": ticket.id, "version": version}
