"""A small certificate authority for one deployment: the broker's server certificate and
one client certificate per node, whose common name is the node id (Mosquitto's
``use_identity_as_username`` then makes it the MQTT username the ACL keys on).

Keys are ECDSA P-256: small and fast on a Raspberry Pi Zero 2 W.

Enrollment (``thanthien edge enroll``) makes the node's key on the node itself and sends only a
certificate signing request (:func:`make_csr`); the hub signs it (:func:`sign_csr`), so the
private key never leaves the Pi. A revoked certificate goes into the CA's revocation list
(:func:`write_crl`), which the broker's TLS listener checks at every connect.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_NAME = "Thân Thiện deployment CA"


@dataclass(frozen=True)
class CertFiles:
    cert: Path
    key: Path


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    path.chmod(0o600)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Thân Thiện"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def create_ca(directory: Path, *, days: int = 3650) -> CertFiles:
    """Create ca.crt / ca.key in ``directory``; an existing CA is kept, never replaced."""
    directory.mkdir(parents=True, exist_ok=True)
    files = CertFiles(directory / "ca.crt", directory / "ca.key")
    if files.cert.exists() and files.key.exists():
        return files
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(CA_NAME)).issuer_name(_name(CA_NAME))
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .sign(key, hashes.SHA256())
    )
    _write_key(files.key, key)
    _write_cert(files.cert, cert)
    return files


def _load_ca(directory: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    ca_cert = x509.load_pem_x509_certificate((directory / "ca.crt").read_bytes())
    ca_key = serialization.load_pem_private_key((directory / "ca.key").read_bytes(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    return ca_cert, ca_key


def _issue(directory: Path, stem: str, common_name: str, usage: x509.ObjectIdentifier,
           sans: list[x509.GeneralName], days: int) -> CertFiles:
    if not (directory / "ca.key").exists():
        raise FileNotFoundError(f"no CA in {directory}: run `thanthien provision ca` first")
    ca_cert, ca_key = _load_ca(directory)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name)).issuer_name(ca_cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    files = CertFiles(directory / f"{stem}.crt", directory / f"{stem}.key")
    _write_key(files.key, key)
    _write_cert(files.cert, builder.sign(ca_key, hashes.SHA256()))
    return files


def issue_server(directory: Path, hosts: list[str], *, days: int = 825) -> CertFiles:
    """The broker's certificate, valid for every name or address in ``hosts``."""
    sans: list[x509.GeneralName] = []
    for host in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    return _issue(directory, "server", hosts[0], ExtendedKeyUsageOID.SERVER_AUTH, sans, days)


def issue_client(directory: Path, node_id: str, *, days: int = 825) -> CertFiles:
    """A node's certificate; its common name is the node id."""
    return _issue(directory, f"node-{node_id}", node_id, ExtendedKeyUsageOID.CLIENT_AUTH, [], days)


CRL_FILE = "crl.pem"


class CsrError(ValueError):
    """A signing request the CA will not sign; the message says why."""


def make_csr(common_name: str) -> tuple[bytes, bytes]:
    """A new ECDSA P-256 key and a signing request for it: ``(key PEM, CSR PEM)``. The key is
    the node's to keep (write it with mode 0600); only the request travels."""
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder().subject_name(_name(common_name))
           .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return key_pem, csr.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True)
class Issued:
    cert_pem: bytes
    serial: int
    not_after: datetime


def sign_csr(directory: Path, csr_pem: bytes, node_id: str, *, days: int = 825) -> Issued:
    """A node certificate for the key of ``csr_pem``: its common name is ``node_id`` whatever
    the request asked (the broker takes it as the MQTT username), client authentication only.
    The request must be signed by its own key (ECDSA P-256/P-384 or RSA of 2048 bits or more)."""
    if not (directory / "ca.key").exists():
        raise FileNotFoundError(f"no CA in {directory}: run `thanthien provision ca` first")
    try:
        csr = x509.load_pem_x509_csr(csr_pem)
    except ValueError:
        raise CsrError("not a PEM certificate signing request") from None
    if not csr.is_signature_valid:
        raise CsrError("the request is not signed by its own key")
    key = csr.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in ("secp256r1", "secp384r1"):
            raise CsrError(f"elliptic curve {key.curve.name} is not accepted (P-256 or P-384)")
    elif isinstance(key, rsa.RSAPublicKey):
        if key.key_size < 2048:
            raise CsrError(f"an RSA key of {key.key_size} bits is too short (2048 or more)")
    else:
        raise CsrError("only ECDSA and RSA keys are accepted")
    ca_cert, ca_key = _load_ca(directory)
    now = datetime.now(UTC)
    serial = x509.random_serial_number()
    not_after = now + timedelta(days=days)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(node_id)).issuer_name(ca_cert.subject)
        .public_key(key).serial_number(serial)
        .not_valid_before(now - timedelta(minutes=5)).not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return Issued(cert.public_bytes(serialization.Encoding.PEM), serial, not_after)


def write_crl(directory: Path, revoked: list[tuple[int, datetime]], *, path: Path | None = None,
              days: int = 3650) -> Path:
    """The CA's revocation list with these (serial, when) entries, replaced atomically
    (default ``<directory>/crl.pem``). Its next update lies far ahead: the broker only reads it
    again on SIGHUP, and an expired list would make it refuse every node."""
    ca_cert, ca_key = _load_ca(directory)
    now = datetime.now(UTC)
    builder = (x509.CertificateRevocationListBuilder().issuer_name(ca_cert.subject)
               .last_update(now - timedelta(minutes=5)).next_update(now + timedelta(days=days)))
    for serial, at in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(min(at, now)).build())
    target = path or directory / CRL_FILE
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_bytes(builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
    os.replace(tmp, target)
    return target


def ca_certificate(directory: Path) -> bytes:
    """The CA certificate (PEM) a node verifies the broker with."""
    return (directory / "ca.crt").read_bytes()
