"""Commands IT send to one node from its page or the API, each answered, kept and audited.

``ping``, ``identify`` (the boxes' LEDs blink, the speaker beeps), ``test-tone``, ``set-volume``
(also kept in the node's config, so the node keeps it after a restart), ``amplifier`` (on/off),
``restart`` (the agent), ``reload-config`` (the hub publishes the node's config again and the
node applies its local file with it). A command goes out on ``{root}/node/{node}/cmd/{name}``
with MQTT v5 request/response (the node's reply topic, the command's row id as correlation
data); the call waits up to ``[fleet] command_timeout_s`` for the answer and returns it. A
node the hub holds offline or lost is not sent anything: the call says so at once
(``Conflict``), and that refusal is kept and audited too. An answer that comes after the wait is
still stored with its command.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from thanthien.hub.context import HubContext
from thanthien.hub.db.models import Node, NodeCommand, NodeConfigRow
from thanthien.hub.roles import DEVICE_STAFF, Actor, require
from thanthien.hub.services import audit, node_config
from thanthien.hub.services.errors import Conflict, Invalid, NotFound, Unavailable
from thanthien.hub.tenancy import Tenant, require_reach
from thanthien.mqtt import Message, MqttLink, request_properties
from thanthien.protocol.payloads import Command, CommandResult, PayloadError, ScalarArg, decode

log = logging.getLogger(__name__)

CORRELATION_PREFIX: Final = b"thanthien-cmd:"
NO_LINK: Final = "Trung tâm chưa kết nối MQTT, không gửi được lệnh."


@dataclass(frozen=True)
class CommandSpec:
    name: str
    label: str
    args: Callable[[dict[str, Any]], dict[str, ScalarArg]]


def _none(args: dict[str, Any]) -> dict[str, ScalarArg]:
    if args:
        raise Invalid(f"Lệnh này không nhận tham số (got {', '.join(sorted(args))}).")
    return {}


def _number(args: dict[str, Any], name: str, low: float, high: float, default: float | None,
            whole: bool = False) -> float | int:
    value = args.get(name, default)
    if value is None:
        raise Invalid(f"Cần tham số {name}.")
    try:
        number = float(value) if not isinstance(value, bool) else float("nan")
    except (TypeError, ValueError):
        raise Invalid(f"Tham số {name} phải là số.") from None
    if not low <= number <= high:
        raise Invalid(f"Tham số {name} phải từ {low:g} đến {high:g}.")
    if whole:
        if not number.is_integer():
            raise Invalid(f"Tham số {name} phải là số nguyên.")
        return int(number)
    return number


def _only(args: dict[str, Any], *names: str) -> None:
    extra = sorted(set(args) - set(names))
    if extra:
        raise Invalid(f"Tham số không dùng được: {', '.join(extra)}.")


def _identify(args: dict[str, Any]) -> dict[str, ScalarArg]:
    _only(args, "seconds")
    return {"seconds": _number(args, "seconds", 1, 300, 10)}


def _tone(args: dict[str, Any]) -> dict[str, ScalarArg]:
    _only(args, "seconds", "volume")
    return {"seconds": _number(args, "seconds", 0.5, 30, 3),
            "volume": _number(args, "volume", 0, 100, 50, whole=True)}


def _volume(args: dict[str, Any]) -> dict[str, ScalarArg]:
    _only(args, "volume")
    return {"volume": _number(args, "volume", 0, 100, None, whole=True)}


def _amplifier(args: dict[str, Any]) -> dict[str, ScalarArg]:
    _only(args, "on")
    on = args.get("on")
    if isinstance(on, str):
        on = {"true": True, "1": True, "on": True, "false": False, "0": False, "off": False}.get(on.lower())
    if not isinstance(on, bool):
        raise Invalid("Tham số on phải là true hoặc false.")
    return {"on": on}


COMMANDS: Final[dict[str, CommandSpec]] = {s.name: s for s in (
    CommandSpec("ping", "Kiểm tra kết nối", _none),
    CommandSpec("identify", "Nhận diện (nháy đèn, kêu bíp)", _identify),
    CommandSpec("test-tone", "Phát âm thử", _tone),
    CommandSpec("set-volume", "Đặt âm lượng", _volume),
    CommandSpec("amplifier", "Bật/tắt âm ly", _amplifier),
    CommandSpec("restart", "Khởi động lại phần mềm", _none),
    CommandSpec("reload-config", "Nạp lại cấu hình", _none),
)}
STATUS_LABELS: Final[dict[str, str]] = {"sent": "đang chờ trả lời", "ok": "thành công", "error": "lỗi",
                                        "timeout": "không trả lời", "offline": "thiết bị ngoại tuyến"}


@dataclass(frozen=True)
class CommandView:
    id: int
    node_id: str
    name: str
    label: str
    args: dict[str, Any]
    actor: str
    sent_at: datetime
    status: str
    answered_at: datetime | None
    result: dict[str, Any]
    error: str

    @property
    def status_label(self) -> str:
        return STATUS_LABELS.get(self.status, self.status)

    @property
    def summary(self) -> str:
        """The answer in one line, as the page shows it."""
        if self.status == "ok":
            return ", ".join(f"{k}: {v}" for k, v in self.result.items()) or "xong"
        return self.error or self.status_label


def _view(row: NodeCommand) -> CommandView:
    spec = COMMANDS.get(row.name)
    return CommandView(id=row.id, node_id=row.node_id, name=row.name, label=spec.label if spec else row.name,
                       args=dict(row.args or {}), actor=row.actor, sent_at=row.sent_at, status=row.status,
                       answered_at=row.answered_at, result=dict(row.result or {}), error=row.error)


def recent(session: Session, *, viewer: Tenant, node_id: str, limit: int = 10) -> list[CommandView]:
    """The node's last commands (a node of a commune ``viewer`` does not reach is not found)."""
    node = session.get(Node, node_id)
    if node is None:
        raise NotFound(f"Không có thiết bị mã {node_id}.")
    require_reach(viewer, node.commune_id, what=f"Thiết bị mã {node_id}")
    rows = session.scalars(select(NodeCommand).where(NodeCommand.node_id == node_id)
                           .order_by(NodeCommand.sent_at.desc(), NodeCommand.id.desc()).limit(limit))
    return [_view(r) for r in rows]


# -- the answers -----------------------------------------------------------------------------
class ReplyWaiter:
    """The answers of this process's commands, from every node's reply topic (one subscription
    per MQTT link); a command waits on its own correlation data."""

    def __init__(self, ctx: HubContext, link: MqttLink) -> None:
        self.ctx = ctx
        self._lock = threading.Condition()
        self._answers: dict[int, CommandResult] = {}
        self._waiting: set[int] = set()
        link.route(ctx.topics.wildcard("command_result"), self.on_reply, qos=1)

    def on_reply(self, message: Message) -> None:
        correlation = getattr(message.properties, "CorrelationData", None)
        if not correlation or not bytes(correlation).startswith(CORRELATION_PREFIX):
            return  # someone else's command (play-now, stop) or none
        try:
            command_id = int(bytes(correlation)[len(CORRELATION_PREFIX):])
            result = decode(CommandResult, message.payload)
        except (ValueError, PayloadError) as exc:
            log.warning("ignoring a malformed command answer on %s: %s", message.topic, exc)
            return
        with self._lock:
            if command_id in self._waiting:
                self._answers[command_id] = result
                self._lock.notify_all()
                return
        # late: store it off the network thread
        threading.Thread(target=_store_answer, args=(self.ctx, command_id, result), name="late-answer",
                         daemon=True).start()

    def expect(self, command_id: int) -> None:
        with self._lock:
            self._waiting.add(command_id)

    def wait(self, command_id: int, timeout: float) -> CommandResult | None:
        with self._lock:
            self._lock.wait_for(lambda: command_id in self._answers, timeout)
            self._waiting.discard(command_id)
            return self._answers.pop(command_id, None)


_WAITERS: dict[int, ReplyWaiter] = {}
_WAITERS_LOCK = threading.Lock()


def _waiter(ctx: HubContext, link: MqttLink) -> ReplyWaiter:
    with _WAITERS_LOCK:
        waiter = _WAITERS.get(id(link))
        if waiter is None:
            waiter = _WAITERS[id(link)] = ReplyWaiter(ctx, link)
        return waiter


def _store_answer(ctx: HubContext, command_id: int, result: CommandResult) -> None:
    try:
        with ctx.db.session() as session:
            row = session.get(NodeCommand, command_id)
            if row is not None and row.status in ("sent", "timeout"):
                _answered(row, result, ctx.clock())
    except Exception:
        log.exception("storing the late answer of command %d failed", command_id)


def _answered(row: NodeCommand, result: CommandResult, now: datetime) -> None:
    row.status = "ok" if result.ok else "error"
    row.answered_at, row.result, row.error = now, dict(result.result), (result.error or "")[:500]


# -- sending --------------------------------------------------------------------------------
def send(ctx: HubContext, *, actor: Actor, node_id: str, name: str, args: dict[str, Any] | None = None,
         timeout_s: float | None = None) -> CommandView:
    """Send one command and wait for its answer (see the module). ``Conflict`` at once for a
    node that is not online; ``Invalid`` for an unknown command or bad arguments."""
    require(actor, DEVICE_STAFF)
    spec = COMMANDS.get(name)
    if spec is None:
        raise Invalid(f"Không có lệnh {name!r} (có: {', '.join(COMMANDS)}).")
    clean = spec.args(dict(args or {}))
    link = ctx.mqtt
    if link is None:
        raise Unavailable(NO_LINK)
    now = ctx.clock()
    with ctx.db.session() as session:
        node = session.get(Node, node_id)
        if node is None:
            raise NotFound(f"Không có thiết bị mã {node_id}.")
        require_reach(actor, node.commune_id, what=f"Thiết bị mã {node_id}")
        if node.retired_at is not None:
            raise Conflict(f"Thiết bị {node_id} đã ngừng sử dụng.")
        online = node.state == "online"
        row = NodeCommand(node_id=node_id, name=name, args=clean, actor=actor.username[:64], sent_at=now,
                          status="sent" if online else "offline", result={}, error="")
        if not online:
            row.error = _offline_text(node, ctx.settings.hub.timezone)
        session.add(row)
        session.flush()
        if online and name == "set-volume" and session.get(NodeConfigRow, node_id) is not None:
            node_config.update(session, actor=actor, node_id=node_id, now=now,
                               change=node_config.ConfigUpdate(speaker=node_config.SpeakerValues(
                                   volume=int(clean["volume"]))))  # type: ignore[arg-type]
        audit.record(session, actor=actor, action="node.command", subject=f"node:{node_id}", at=now,
                     details={"command": name, "args": clean, "status": row.status},
                     commune_id=node.commune_id)
        command_id, refusal = row.id, row.error
    if not online:
        log.info("command %s to node %s not sent: %s", name, node_id, refusal)
        raise Conflict(refusal)
    if name == "reload-config":
        node_config.sync(ctx, node_ids=[node_id], force=True)
    waiter = _waiter(ctx, link)
    waiter.expect(command_id)
    ttl = timeout_s if timeout_s is not None else ctx.settings.fleet.command_timeout_s
    payload = Command(args=clean, issued_at=now, expires_at=now + timedelta(seconds=max(ttl, 30))).to_bytes()
    props = request_properties(ctx.topics.command_result(node_id),
                               CORRELATION_PREFIX + str(command_id).encode())
    link.publish(ctx.topics.command(node_id, name), payload, qos=1, properties=props)
    result = waiter.wait(command_id, ttl)
    with ctx.db.session() as session:
        row = session.get(NodeCommand, command_id)
        assert row is not None
        if result is not None:
            _answered(row, result, ctx.clock())
        elif row.status == "sent":
            row.status, row.error = "timeout", f"thiết bị không trả lời trong {ttl:g} giây"
        view = _view(row)
    log.info("command %s to node %s by %s: %s", name, node_id, actor.username, view.status)
    return view


def _offline_text(node: Node, tz: str) -> str:
    state = {"offline": "ngoại tuyến", "lost": "mất kết nối", "unknown": "chưa kết nối lần nào"}.get(
        node.state, node.state)
    since = f" từ {node.state_at.astimezone(ZoneInfo(tz)):%H:%M %d/%m/%Y}" if node.state_at else ""
    return f"Thiết bị {node.name or node.id} đang {state}{since}: lệnh không được gửi."
