"""Putting a node into service with a one-time code, and taking it out again.

IT add a node (``registry``) and ask for an **enrollment code** (:func:`issue_code`): 16 letters
and digits (80 bits, Crockford's alphabet, grouped by four), valid for ``[enrollment]
code_ttl_s``, once. Only its SHA-256 is stored; a newer code for the node replaces an unused
one. On the Pi, ``thanthien edge enroll --hub URL --code CODE`` sends it to ``POST
/api/v1/enroll`` (:func:`redeem`), with a certificate signing request for a key it made itself.
A wrong, used, replaced or expired code is refused with the reason and changes nothing. A good
one is marked used and the node gets, in that one answer:

* its **broker identity**: a new random password (the hub keeps only the Mosquitto hash that
  goes into the broker's password file) or, with ``identity = "certificate"``, a client
  certificate signed from the CA in ``pki_dir`` for the Pi's own key (the key never leaves it);
* its **media token** (the speaker's downloads), new;
* the **configuration** the hub holds for it (``services/node_config.py``).

Re-enrolling rotates all three: the identity in force is revoked (its password removed from
the file, its certificate listed in the CRL). :func:`retire_node` revokes them for good.

**The broker.** After a commit that changed identities (``mark_changed(BROKER_CHANGES)``),
:func:`sync_broker` writes the password file in ``broker_data`` from the table (only the users
enrollment manages; the hub's own and hand-made ones stay), rewrites the CRL, and sends SIGHUP
to the broker ``thanthien broker`` started there (its ``mosquitto.pid``). Mosquitto 2.0 then
reads both again and disconnects a client whose password is gone; a connection made with a
certificate since revoked is ended by taking over its client id (a node whose identity was
revoked is refused at its next connect either way).

Secrets (the code, the password, the token) appear only in the one answer that hands them
over: never in a log line, the audit log or a later answer.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from thanthien.broker import mosquitto_hash, reload_running, set_hashes
from thanthien.hub.context import HubContext
from thanthien.hub.db.models import Commune, Counter, Device, EnrollmentCode, Node, NodeCredential, Zone
from thanthien.hub.db.session import mark_changed
from thanthien.hub.roles import DEVICE_STAFF, SYSTEM, ActingUser, Actor, require
from thanthien.hub.services import alarms, audit, logins, media_items, node_config, registry
from thanthien.hub.services.errors import Conflict, Forbidden, Invalid, NotFound, Throttled, Unavailable
from thanthien.hub.settings import AuthSection, EnrollmentSection
from thanthien.hub.tenancy import Tenant, is_province, require_reach
from thanthien.pki import CsrError, ca_certificate, sign_csr, write_crl
from thanthien.protocol.ids import ID_PATTERN
from thanthien.protocol.payloads import NodeConfig

log = logging.getLogger(__name__)

_SYNC = threading.Lock()
_TO_KICK: set[str] = set()
"""Nodes whose certificate was revoked in this process and whose connection is still to end."""
BROKER_CHANGES: Final = "node_credentials"
"""``mark_changed`` topic: broker identities changed; the follower rewrites the broker's files."""
ALPHABET: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford's base 32: no I, L, O, U
GROUPS: Final = 4
GROUP_LEN: Final = 4
_TYPOS: Final = str.maketrans({"O": "0", "I": "1", "L": "1"})

WRONG_CODE: Final = "Mã đăng ký không đúng (wrong enrollment code)."
NO_BROKER: Final = ("Trung tâm chưa được cấu hình để cấp tài khoản MQTT ([enrollment] broker_data) "
                    "(the hub cannot write broker credentials).")
NO_PKI: Final = ("Trung tâm chưa được cấu hình để cấp chứng thư ([enrollment] pki_dir) "
                 "(the hub has no certificate authority).")


class CodeRefused(Forbidden):
    """A wrong, used, replaced or expired code. The session holds only the failure counted
    against the client's address: the caller commits it, then answers the refusal."""


@dataclass(frozen=True)
class IssuedCode:
    node_id: str
    code: str
    expires_at: datetime


@dataclass(frozen=True)
class Enrollment:
    """What a node gets in return for its code (the only answer that carries its secrets)."""

    node_id: str
    broker_host: str
    broker_port: int
    tls: bool
    password: str | None
    certificate_pem: str | None
    ca_pem: str | None
    media_token: str
    hub_url: str
    config: NodeConfig | None


# -- codes ---------------------------------------------------------------------------------
def new_code() -> str:
    chars = "".join(secrets.choice(ALPHABET) for _ in range(GROUPS * GROUP_LEN))
    return "-".join(chars[i:i + GROUP_LEN] for i in range(0, len(chars), GROUP_LEN))


def normalize(code: str) -> str:
    """The code as typed (any case, spaces or dashes, O for 0, I or L for 1), as issued."""
    chars = "".join(c for c in code.upper().translate(_TYPOS) if c.isalnum())
    return "-".join(chars[i:i + GROUP_LEN] for i in range(0, len(chars), GROUP_LEN))


def code_digest(code: str) -> str:
    return hashlib.sha256(normalize(code).encode()).hexdigest()


def _node(session: Session, node_id: str, actor: Tenant) -> Node:
    """The node, if ``actor`` reaches its commune (another commune's, or one not placed yet to a
    commune user, is not found)."""
    node = session.get(Node, node_id)
    if node is None:
        raise NotFound(f"Không có thiết bị mã {node_id}.")
    require_reach(actor, node.commune_id, what=f"Thiết bị mã {node_id}")
    return node


def issue_code(session: Session, *, actor: Actor, node_id: str, now: datetime,
               settings: EnrollmentSection) -> IssuedCode:
    """A new one-time code for a registered node (IT staff); an unused earlier one stops working.
    The node comes under the hub's configuration. Audited without the code."""
    require(actor, DEVICE_STAFF)
    node = _node(session, node_id, actor)
    if node.retired_at is not None:
        raise Conflict(f"Thiết bị {node_id} đã ngừng sử dụng; không cấp mã đăng ký.")
    if not node.registered:
        raise Conflict(f"Thiết bị {node_id} chưa được đăng ký trong danh mục.")
    replaced = session.execute(
        update(EnrollmentCode).where(EnrollmentCode.node_id == node_id, EnrollmentCode.used_at.is_(None),
                                     EnrollmentCode.replaced_at.is_(None))
        .values(replaced_at=now)).rowcount
    code = new_code()
    expires = now + timedelta(seconds=settings.code_ttl_s)
    session.add(EnrollmentCode(node_id=node_id, code_sha256=code_digest(code), created_at=now,
                               created_by=actor.username[:64], expires_at=expires, used_from=""))
    node_config.ensure(session, node_id=node_id, now=now, username=actor.username)
    audit.record(session, actor=actor, action="node.enrollment_code", subject=f"node:{node_id}", at=now,
                 details={"expires_at": expires, "replaced": bool(replaced)}, commune_id=node.commune_id)
    session.flush()
    log.info("enrollment code for node %s issued by %s, valid until %s", node_id, actor.username,
             expires.isoformat(timespec="seconds"))
    return IssuedCode(node_id=node_id, code=code, expires_at=expires)


def _refusal(row: EnrollmentCode | None, now: datetime) -> str | None:
    """Why this code cannot be used now (``None``: it can)."""
    when = "%H:%M %d/%m/%Y UTC"
    if row is None:
        return WRONG_CODE
    if row.used_at is not None:
        return (f"Mã đăng ký đã được dùng lúc {row.used_at.strftime(when)}; hãy xin mã mới "
                "(enrollment code already used).")
    if row.replaced_at is not None:
        return "Mã đăng ký đã được thay bằng một mã mới hơn (enrollment code replaced by a newer one)."
    if row.expires_at <= now:
        return (f"Mã đăng ký đã hết hạn lúc {row.expires_at.strftime(when)}; hãy xin mã mới "
                "(enrollment code expired).")
    return None


def _usable(session: Session, *, code: str, now: datetime, settings: EnrollmentSection, throttle: AuthSection,
            client: str | None, tz: str) -> EnrollmentCode:
    """The code's row, if it may be used now. Refused while the client's address is locked
    (``Throttled``, without looking at the code), and counted against the address when refused:
    80-bit codes cannot be guessed, but a script trying them is stopped and shows in the audit log."""
    locked = logins.address_locked_until(session, scope=logins.ENROLL_ADDRESS, address=client, now=now)
    if locked is not None:
        message, seconds = logins.throttled_message(until=locked, now=now, tz=tz, what="Nhập sai mã đăng ký")
        raise Throttled(f"{message} (too many refused enrollment codes)", retry_after_s=seconds)
    row = session.scalar(select(EnrollmentCode).where(EnrollmentCode.code_sha256 == code_digest(code)))
    reason = _refusal(row, now)
    if reason is not None:
        logins.count_address_failure(session, scope=logins.ENROLL_ADDRESS, address=client,
                                     threshold=settings.address_failures, now=now, cfg=throttle)
        raise CodeRefused(reason)
    assert row is not None
    return row


# -- enrolling -----------------------------------------------------------------------------
def redeem(session: Session, *, code: str, csr_pem: str | None, now: datetime, settings: EnrollmentSection,
           throttle: AuthSection, enrolled_via: str, client: str | None, tz: str = "UTC") -> Enrollment:
    """Trade a code for the node's identity, media token and config (see the module). Refused
    (:class:`CodeRefused`, nothing changed but the failure counted against ``client``'s address)
    for a wrong, used, replaced or expired code; ``Throttled`` while that address is locked."""
    row = _usable(session, code=code, now=now, settings=settings, throttle=throttle, client=client, tz=tz)
    node = _node(session, row.node_id, SYSTEM)  # the code is the credential
    if node.retired_at is not None:
        raise Forbidden(f"Thiết bị {node.id} đã ngừng sử dụng (node retired).")
    certificate = settings.identity == "certificate"
    if certificate and settings.pki_dir is None:
        raise Unavailable(NO_PKI)
    if not certificate and settings.broker_data is None:
        raise Unavailable(NO_BROKER)
    if certificate and not csr_pem:
        raise Invalid("Trung tâm cấp chứng thư: cần yêu cầu ký (CSR) của thiết bị (a CSR is required).")
    claimed = session.execute(update(EnrollmentCode).where(
        EnrollmentCode.id == row.id, EnrollmentCode.used_at.is_(None), EnrollmentCode.replaced_at.is_(None))
        .values(used_at=now, used_from=(client or "")[:64])).rowcount
    if claimed != 1:  # another request took it first (PostgreSQL reads committed rows)
        raise Forbidden("Mã đăng ký vừa được dùng (enrollment code already used).")
    actor = ActingUser(username=f"enroll:{row.created_by}"[:64], role="it")
    rotated = _revoke(session, node.id, now, reason="re-enrolled")
    credential = NodeCredential(node_id=node.id, kind=settings.identity, issued_at=now, revoke_reason="")
    password = cert_pem = ca_pem = None
    if certificate:
        assert settings.pki_dir is not None and csr_pem is not None
        try:
            issued = sign_csr(settings.pki_dir, csr_pem.encode(), node.id)
        except CsrError as exc:
            raise Invalid(f"Yêu cầu ký không dùng được: {exc}") from None
        credential.cert_serial, credential.cert_not_after = format(issued.serial, "x"), issued.not_after
        cert_pem = issued.cert_pem.decode()
        ca_pem = ca_certificate(settings.pki_dir).decode()
    else:
        password = secrets.token_urlsafe(24)
        credential.password_hash = mosquitto_hash(password)
        if settings.broker_tls and settings.pki_dir is not None:  # TLS with a password: verify the broker
            ca_pem = ca_certificate(settings.pki_dir).decode()
    session.add(credential)
    token = media_items.issue_node_token(session, actor=actor, node_id=node.id, now=now)
    config = node_config.current(session, node_id=node.id, now=now)
    parts = urlsplit(enrolled_via)
    tls = certificate or settings.broker_tls
    host = settings.broker_host or parts.hostname or "127.0.0.1"
    port = settings.broker_port or (8883 if tls else 1883)
    hub_url = settings.hub_url or f"{parts.scheme}://{parts.netloc}/api/v1/"
    audit.record(session, actor=actor, action="node.enroll", subject=f"node:{node.id}", at=now,
                 details={"identity": settings.identity, "rotated": rotated, "from": client or "",
                          "config_version": config.version if config else None})
    mark_changed(session, BROKER_CHANGES)
    log.info("node %s enrolled (%s identity%s) from %s", node.id, settings.identity,
             ", the previous one revoked" if rotated else "", client or "?")
    return Enrollment(node_id=node.id, broker_host=host, broker_port=port, tls=tls, password=password,
                      certificate_pem=cert_pem, ca_pem=ca_pem, media_token=token, hub_url=hub_url,
                      config=config)


def _revoke(session: Session, node_id: str, now: datetime, *, reason: str) -> int:
    """Revoke the node's identities in force; how many. A certificate's live connection is
    ended after the commit (:func:`sync_broker`)."""
    rows = list(session.scalars(select(NodeCredential).where(NodeCredential.node_id == node_id,
                                                             NodeCredential.revoked_at.is_(None))))
    for row in rows:
        row.revoked_at, row.revoke_reason = now, reason
        if row.kind == "certificate":
            with _SYNC:
                _TO_KICK.add(node_id)
    return len(rows)


def revoke_node(session: Session, *, actor: Actor, node_id: str, now: datetime,
                reason: str = "revoked", media_token: bool = True) -> int:
    """Take the node's broker identity, unused codes and (``media_token``) media token away (IT
    staff): the broker refuses its next connect. Returns how many identities were revoked. A
    node about to be deleted keeps its token: it goes with the node's row."""
    require(actor, DEVICE_STAFF)
    node = session.get(Node, node_id)
    if node is not None:
        require_reach(actor, node.commune_id, what=f"Thiết bị mã {node_id}")
    elif not is_province(actor):
        raise NotFound(f"Không có thiết bị mã {node_id}.")
    revoked = _revoke(session, node_id, now, reason=reason)
    session.execute(update(EnrollmentCode).where(EnrollmentCode.node_id == node_id,
                                                 EnrollmentCode.used_at.is_(None),
                                                 EnrollmentCode.replaced_at.is_(None)).values(replaced_at=now))
    if media_token:
        media_items.revoke_node_token(session, actor=actor, node_id=node_id, now=now)
    if revoked:
        audit.record(session, actor=actor, action="node.revoke", subject=f"node:{node_id}", at=now,
                     details={"identities": revoked, "reason": reason},
                     commune_id=node.commune_id if node is not None else None)
        mark_changed(session, BROKER_CHANGES)
    return revoked


def retire_node(session: Session, *, actor: Actor, node_id: str, now: datetime, notify: bool = False) -> Node:
    """Take a node out of service (IT staff): its identity revoked (the broker refuses its next
    connect), its devices retired, its retained config cleared, its offline alarm cleared (none is
    raised for it again); its history stays."""
    require(actor, DEVICE_STAFF)
    node = _node(session, node_id, actor)
    if node.retired_at is not None:
        raise Conflict(f"Thiết bị {node_id} đã ngừng sử dụng từ trước.")
    node.retired_at = now
    alarms.clear_alarm(session, kind="node_offline", subject=node_id, now=now, notify=notify)
    devices = []
    for device in session.scalars(select(Device).where(Device.node_id == node_id)):
        if getattr(device, "retired_at", None) is None:
            device.retired_at = now
            devices.append(device.code)
    revoke_node(session, actor=actor, node_id=node_id, now=now, reason="retired")
    audit.record(session, actor=actor, action="node.retire", subject=f"node:{node_id}", at=now,
                 details={"devices": devices}, commune_id=node.commune_id)
    mark_changed(session, node_config.CONFIG_CHANGES)
    return node


# -- the broker's files --------------------------------------------------------------------
@dataclass(frozen=True)
class BrokerSync:
    passwords: int
    removed: int
    revoked_certificates: int
    reloaded: bool




def sync_broker(ctx: HubContext) -> BrokerSync:
    """Make the broker's password file and CRL say what ``node_credentials`` says, then reload
    the broker and end connections made with a revoked certificate."""
    cfg = ctx.settings.enrollment
    with ctx.db.session(write=False) as session:
        rows = list(session.scalars(select(NodeCredential).order_by(NodeCredential.issued_at)))
    active = {r.node_id: r for r in rows if r.revoked_at is None}
    users: dict[str, str | None] = {}
    for node_id in {r.node_id for r in rows}:
        cred = active.get(node_id)
        users[node_id] = cred.password_hash if cred is not None and cred.kind == "password" else None
    revoked = [(int(r.cert_serial, 16), r.revoked_at) for r in rows
               if r.cert_serial and r.revoked_at is not None]
    reloaded = False
    if cfg.broker_data is not None:
        set_hashes(Path(cfg.broker_data) / "passwd", users)
    if cfg.pki_dir is not None and (Path(cfg.pki_dir) / "ca.key").exists():
        write_crl(Path(cfg.pki_dir), revoked)  # type: ignore[arg-type]
    if cfg.broker_data is not None:
        reloaded = reload_running(Path(cfg.broker_data))
        if not reloaded:
            log.warning("no broker process to reload in %s: run `kill -HUP $(pidof mosquitto)` (or restart "
                        "the broker) so that it reads the node identities again", cfg.broker_data)
    with _SYNC:
        kick = sorted(_TO_KICK - {n for n, r in active.items() if r.kind == "certificate"})
        _TO_KICK.clear()
    kicked = _kick(ctx, kick)
    result = BrokerSync(passwords=sum(1 for v in users.values() if v), removed=sum(1 for v in users.values()
                                                                                  if v is None),
                        revoked_certificates=len(revoked), reloaded=reloaded)
    log.info("broker identities written: %d password(s), %d removed, %d certificate(s) revoked%s%s",
             result.passwords, result.removed, result.revoked_certificates,
             ", broker reloaded" if reloaded else "", f", {kicked} connection(s) ended" if kicked else "")
    return result


def _kick(ctx: HubContext, node_ids: list[str]) -> int:
    """End the live connection of each node by connecting with its client id (the broker drops
    the older one); the node's next connect meets its revoked identity."""
    if not node_ids or ctx.mqtt is None:
        return 0
    from thanthien.mqtt import MqttLink

    done = 0
    for node_id in node_ids:
        link = MqttLink(client_id=node_id, settings=ctx.settings.mqtt, persistent=False)
        link.start()
        try:
            if link.wait_connected(5):
                done += 1
        finally:
            link.stop()
    return done


def follow(ctx: HubContext) -> None:
    """Rewrite the broker's files after every commit that changed node identities."""
    ctx.db.follow(BROKER_CHANGES, ("enrollment", id(ctx)), lambda: sync_broker(ctx))


# -- how the code is shown -----------------------------------------------------------------
def hub_base(settings: EnrollmentSection, request_base: str) -> str:
    """The hub's address as a node should reach it (``[enrollment] hub_url`` without its API
    path, else the address the page or API was reached at)."""
    if settings.hub_url:
        parts = urlsplit(settings.hub_url)
        return f"{parts.scheme}://{parts.netloc}"
    return request_base.rstrip("/")


def enroll_command(base: str, code: str) -> str:
    """What to type on the Pi (as root: it writes /etc/thanthien and may start the unit)."""
    return f"sudo thanthien edge enroll --hub {base} --code {code}"


def qr_svg(text: str) -> str:
    """``text`` as a QR code, an inline SVG drawn on the hub (nothing loaded from elsewhere)."""
    import segno

    return str(segno.make(text, error="m").svg_inline(scale=4, border=2, title="Mã QR đăng ký thiết bị"))


# -- adding a node, and what the node page says --------------------------------------------
def add_node(session: Session, *, actor: Actor, node_id: str, name: str, now: datetime,
             settings: EnrollmentSection, zone: str | None = None, counter: str | None = None,
             commune: str | None = None) -> IssuedCode:
    """A new node with its speaker (serving ``zone``) or its rating box (at ``counter``), under
    the hub's configuration, and its first enrollment code (IT staff). The node belongs to the
    actor's commune (a province user names one, ``commune``, or gets the zone's or counter's)."""
    require(actor, DEVICE_STAFF)
    node_id = node_id.strip()
    if not re.fullmatch(ID_PATTERN, node_id):
        raise Invalid("Mã thiết bị chỉ gồm chữ thường không dấu, số và dấu gạch ngang (tối đa 63 ký tự), "
                      "ví dụ loa-ban-moi.")
    existing = session.get(Node, node_id)
    if existing is not None and existing.registered:
        raise Conflict(f"Đã có thiết bị mã {node_id}.")
    if zone and counter:
        raise Invalid("Một thiết bị mới có một cụm loa hoặc một hộp đánh giá, không cả hai.")
    name = " ".join(name.split())[:200]
    if existing is not None and existing.commune_id is not None:
        require_reach(actor, existing.commune_id, what=f"Thiết bị mã {node_id}")
    if commune is None and is_province(actor) and (zone or counter):
        place = session.scalar(select(Zone.commune_id).where(Zone.code == zone)) if zone else \
            session.scalar(select(Counter.commune_id).where(Counter.code == counter))
        commune = session.scalar(select(Commune.code).where(Commune.id == place)) if place else None
    registry.register_node(session, actor=actor, node_id=node_id, name=name, now=now, commune=commune)
    if zone:
        registry.upsert_device(session, actor=actor, node_id=node_id, code="loa", kind="speaker",
                               name=name or "Cụm loa", zone=zone, now=now)
    elif counter:
        registry.upsert_device(session, actor=actor, node_id=node_id, code=f"hop-{counter}"[:63],
                               kind="rating_box", name=name or "Hộp đánh giá", counter=counter, now=now)
    return issue_code(session, actor=actor, node_id=node_id, now=now, settings=settings)


@dataclass(frozen=True)
class EnrollmentStatus:
    identity: str | None
    """``password`` or ``certificate`` in force; ``None``: not enrolled (or revoked)."""
    enrolled_at: datetime | None
    code_expires_at: datetime | None
    """An unused code waiting for the node."""
    retired_at: datetime | None


def status(session: Session, *, viewer: Tenant, node_id: str, now: datetime) -> EnrollmentStatus:
    """The node's identity and waiting code (a node ``viewer`` does not reach is not found)."""
    _node(session, node_id, viewer)
    cred = session.scalar(select(NodeCredential).where(NodeCredential.node_id == node_id,
                                                       NodeCredential.revoked_at.is_(None))
                          .order_by(NodeCredential.issued_at.desc()).limit(1))
    code = session.scalar(select(EnrollmentCode.expires_at).where(
        EnrollmentCode.node_id == node_id, EnrollmentCode.used_at.is_(None),
        EnrollmentCode.replaced_at.is_(None), EnrollmentCode.expires_at > now))
    node = session.get(Node, node_id)
    return EnrollmentStatus(identity=cred.kind if cred else None,
                            enrolled_at=cred.issued_at if cred else None, code_expires_at=code,
                            retired_at=node.retired_at if node else None)
