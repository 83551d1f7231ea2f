"""`thanthien broker`: the project's Mosquitto in the foreground."""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import signal
from pathlib import Path

from thanthien.broker import Broker, BrokerError, BrokerTls
from thanthien.logs import setup_logging
from thanthien.sdnotify import Watchdog, notify

log = logging.getLogger(__name__)


def ensure_hub_user(broker: Broker, secret_file: Path) -> str:
    """The hub's broker password, created on first start and kept in ``secret_file``."""
    if secret_file.exists():
        return secret_file.read_text().strip()
    password = secrets.token_urlsafe(24)
    broker.add_user(broker.hub_user, password)
    secret_file.write_text(password + "\n")
    secret_file.chmod(0o600)
    return password


def _crl(pki: Path) -> Path | None:
    """The CA's revocation list (the hub rewrites it when it revokes a node's certificate), made
    empty when there is none yet and the CA key can be read; otherwise none, with a warning."""
    from thanthien.pki import CRL_FILE, write_crl

    crl = pki / CRL_FILE
    if crl.exists():
        return crl
    try:
        return write_crl(pki, [])
    except OSError as exc:
        log.warning("no certificate revocation list in %s (%s): a revoked node certificate is refused "
                    "only once the hub has written one and the broker restarted", pki, exc.strerror or exc)
        return None


def run(args: argparse.Namespace) -> int:
    setup_logging(args.log_level)
    data = Path(args.data)
    tls = None
    if args.tls_dir:
        pki = Path(args.tls_dir)
        tls = BrokerTls(ca=pki / "ca.crt", cert=pki / "server.crt", key=pki / "server.key",
                        port=args.tls_port, bind=args.tls_bind,
                        client_certs=not args.tls_password, crl=_crl(pki))
        missing = [str(f) for f in (tls.ca, tls.cert, tls.key) if not f.exists()]
        if missing:
            log.error("TLS files missing: %s (run `thanthien provision ca` and "
                      "`thanthien provision server`)", ", ".join(missing))
            return 2
    broker = Broker(data, port=args.port, bind=args.bind, hub_user=args.hub_user, tls=tls)
    ensure_hub_user(broker, data / "hub.secret")
    stopping = False

    def _stop(_sig: int, _frame: object) -> None:
        # Only signal here: the main thread is inside broker.wait() and finishes the stop.
        nonlocal stopping
        stopping = True
        if broker.pid is not None:
            os.kill(broker.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        broker.start()
    except BrokerError as exc:
        log.error("%s", exc)
        return 1
    log.info("hub user %r, password in %s; add nodes with `thanthien provision node`",
             args.hub_user, data / "hub.secret")
    notify("READY=1")
    watchdog = Watchdog(lambda: broker.running)
    watchdog.start()
    code = broker.wait()
    notify("STOPPING=1")
    watchdog.close()
    broker.stop()
    return 0 if stopping else code


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("broker", help="run the project's Mosquitto in the foreground")
    p.add_argument("--port", type=int, default=1883)
    p.add_argument("--bind", default="127.0.0.1", help="listen address (default loopback)")
    p.add_argument("--data", default="var/broker", help="config, users and persistence")
    p.add_argument("--hub-user", default="hub")
    p.add_argument("--tls-dir", help="add a TLS listener with the certificates in this folder")
    p.add_argument("--tls-port", type=int, default=8883)
    p.add_argument("--tls-bind", default="0.0.0.0")
    p.add_argument("--tls-password", action="store_true",
                   help="TLS listener takes passwords instead of client certificates")
    p.add_argument("--log-level", default="INFO")
    p.set_defaults(func=run)
