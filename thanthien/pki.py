"""A small certificate authority for one deployment: the broker's server certificate and
one client certificate per node, whose common name is the node id (Mosquitto's
``use_identity_as_username`` then makes it the MQTT username the ACL keys on).

Keys are ECDSA P-256: small and fast on a Raspberry Pi Zero 2 W.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
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
