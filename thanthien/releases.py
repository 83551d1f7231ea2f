"""Release bundles of the edge agent: the format, Ed25519 signing and verification.

A bundle is one uncompressed tar (the wheels in it are compressed already) holding:

* ``manifest.json``: the release's version, the Python and platform it is for, the project's
  wheel and every file of the bundle with its sha256 digest and size;
* ``manifest.sig``: the Ed25519 signature of the exact bytes of ``manifest.json`` (absent in a
  bundle that was built and not signed yet);
* ``wheels/<file>.whl``: the project's wheel and the exact wheels of its edge dependencies.

The deployment's private key stays with IT (``thanthien release keygen``, ``release sign``);
the hub checks an uploaded bundle with the public key of its ``[releases]`` section and nodes
with the copy they got at enrollment. :func:`verify` refuses a bundle whose signature is missing
or does not match, a file whose digest or size differs from the manifest, a file missing or one
the manifest does not list, and any member that is not a plain file under those names. The hub,
the node and the command line use this one function. Shared by the hub and the edge, so it lives
in the top-level package and imports neither.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

FORMAT: Final = 1
MANIFEST: Final = "manifest.json"
SIGNATURE: Final = "manifest.sig"
WHEELS: Final = "wheels/"
NAME: Final = "thanthien-edge"
VERSION_PATTERN: Final = r"^[0-9][0-9A-Za-z.+!-]{0,40}$"
_WHEEL_NAME = re.compile(r"^wheels/[A-Za-z0-9_.+!-]+\.whl$")
_CHUNK = 1 << 20


class BundleError(Exception):
    """A bundle that cannot be trusted or used; the message says why."""


@dataclass(frozen=True)
class FileEntry:
    name: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Manifest:
    version: str
    python: str
    platform: str
    project_wheel: str
    requirements: tuple[str, ...]
    files: tuple[FileEntry, ...]
    created_at: str
    raw: bytes

    @classmethod
    def parse(cls, raw: bytes) -> Manifest:
        try:
            data = json.loads(raw)
            if data.get("format") != FORMAT or data.get("name") != NAME:
                raise BundleError(f"not a {NAME} bundle of format {FORMAT}")
            files = tuple(
                FileEntry(name=str(f["name"]), sha256=str(f["sha256"]), size=int(f["size"]))
                for f in data["files"]
            )
            manifest = cls(
                version=str(data["version"]),
                python=str(data["python"]),
                platform=str(data["platform"]),
                project_wheel=str(data["project_wheel"]),
                requirements=tuple(str(r) for r in data.get("requirements", [])),
                files=files,
                created_at=str(data.get("created_at", "")),
                raw=raw,
            )
        except BundleError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise BundleError(f"the manifest cannot be read: {exc}") from None
        if not re.fullmatch(VERSION_PATTERN, manifest.version):
            raise BundleError(f"the manifest's version {manifest.version!r} is not a release version")
        names = [f.name for f in files]
        if len(set(names)) != len(names):
            raise BundleError("the manifest lists a file twice")
        for entry in files:
            if not _WHEEL_NAME.fullmatch(entry.name) or ".." in entry.name:
                raise BundleError(f"the manifest lists {entry.name!r}, which is not a wheel under {WHEELS}")
            if not re.fullmatch(r"[0-9a-f]{64}", entry.sha256):
                raise BundleError(f"the manifest's digest of {entry.name} is not a sha256")
        if f"{WHEELS}{manifest.project_wheel}" not in names:
            raise BundleError(f"the project's wheel {manifest.project_wheel} is not in the bundle")
        return manifest

    def wheel(self, name: str) -> FileEntry:
        for entry in self.files:
            if entry.name == name:
                return entry
        raise KeyError(name)


def make_manifest(
    *,
    version: str,
    python: str,
    platform: str,
    project_wheel: str,
    requirements: list[str],
    files: list[FileEntry],
    created_at: datetime | None = None,
) -> bytes:
    data: dict[str, Any] = {
        "format": FORMAT,
        "name": NAME,
        "version": version,
        "python": python,
        "platform": platform,
        "project_wheel": project_wheel,
        "requirements": sorted(requirements),
        "created_at": (created_at or datetime.now(UTC)).isoformat(timespec="seconds"),
        "files": [
            {"name": f.name, "sha256": f.sha256, "size": f.size} for f in sorted(files, key=lambda f: f.name)
        ],
    }
    return json.dumps(data, indent=1, ensure_ascii=False).encode()


# -- keys --------------------------------------------------------------------------------------
def generate_key() -> tuple[bytes, bytes]:
    """A new deployment key: (private PEM, public PEM)."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return private, public_pem(key.public_key())


def public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_private(pem: bytes) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise BundleError(f"the signing key cannot be read: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise BundleError("the signing key is not an Ed25519 key")
    return key


def load_public(pem: bytes | str) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem.encode() if isinstance(pem, str) else pem)
    except (ValueError, TypeError) as exc:
        raise BundleError(f"the release public key cannot be read: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise BundleError("the release public key is not an Ed25519 key")
    return key


def fingerprint(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


# -- writing -----------------------------------------------------------------------------------
def file_digest(path: Path) -> FileEntry:
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
            size += len(chunk)
    return FileEntry(name=f"{WHEELS}{path.name}", sha256=h.hexdigest(), size=size)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, 0
    tar.addfile(info, io.BytesIO(data))


def write_bundle(out: Path, manifest: bytes, wheels: list[Path], signature: bytes | None = None) -> Path:
    """The bundle file: the manifest, its signature when given, the wheels (written aside, renamed in)."""
    tmp = out.with_name(out.name + ".part")
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        _add_bytes(tar, MANIFEST, manifest)
        if signature is not None:
            _add_bytes(tar, SIGNATURE, signature)
        for wheel in sorted(wheels, key=lambda p: p.name):
            info = tar.gettarinfo(str(wheel), arcname=f"{WHEELS}{wheel.name}")
            info.mtime, info.uid, info.gid, info.uname, info.gname, info.mode = 0, 0, 0, "", "", 0o644
            with wheel.open("rb") as f:
                tar.addfile(info, f)
    tmp.replace(out)
    return out


def sign(bundle: Path, key: Ed25519PrivateKey, out: Path | None = None) -> Manifest:
    """Sign a bundle's manifest (replacing an earlier signature); written to ``out`` or in place."""
    out = out or bundle
    with tarfile.open(bundle, "r:") as tar:
        members = {m.name: m for m in tar.getmembers()}
        manifest = Manifest.parse(_read(tar, members, MANIFEST))
        signature = key.sign(manifest.raw)
        tmp = out.with_name(out.name + ".part")
        with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as dst:
            _add_bytes(dst, MANIFEST, manifest.raw)
            _add_bytes(dst, SIGNATURE, signature)
            for name, member in members.items():
                if name in (MANIFEST, SIGNATURE):
                    continue
                src = tar.extractfile(member)
                if src is None:
                    raise BundleError(f"{name} is not a plain file")
                dst.addfile(member, src)
    tmp.replace(out)
    return manifest


# -- reading -----------------------------------------------------------------------------------
def _read(tar: tarfile.TarFile, members: dict[str, tarfile.TarInfo], name: str) -> bytes:
    member = members.get(name)
    if member is None:
        raise BundleError(f"the bundle has no {name}")
    f = tar.extractfile(member)
    if f is None or member.size > 4 << 20:
        raise BundleError(f"{name} is not a plain file of a sensible size")
    return f.read()


def _digest(f: IO[bytes]) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    while chunk := f.read(_CHUNK):
        h.update(chunk)
        size += len(chunk)
    return h.hexdigest(), size


def verify(
    bundle: Path | IO[bytes], public_key: Ed25519PublicKey, *, extract_to: Path | None = None
) -> Manifest:
    """Check a bundle (see the module) and return its manifest; with ``extract_to``, its wheels are
    written there (only after the signature was checked, each checked against its digest; the
    caller removes the directory when this raises)."""
    try:
        tar = (
            tarfile.open(bundle, "r:")  # noqa: SIM115 - closed by the with below
            if isinstance(bundle, Path)
            else tarfile.open(fileobj=bundle, mode="r:")  # noqa: SIM115
        )
    except (tarfile.TarError, OSError) as exc:
        raise BundleError(f"not a release bundle (a tar file): {exc}") from None
    with tar:
        try:
            members_list = tar.getmembers()
        except (tarfile.TarError, OSError) as exc:
            raise BundleError(f"the bundle is damaged: {exc}") from None
        members: dict[str, tarfile.TarInfo] = {}
        for member in members_list:
            if member.name in members:
                raise BundleError(f"the bundle holds {member.name} twice")
            if not member.isfile():
                raise BundleError(f"the bundle holds {member.name!r}, which is not a plain file")
            members[member.name] = member
        manifest = Manifest.parse(_read(tar, members, MANIFEST))
        if SIGNATURE not in members:
            raise BundleError(
                "the bundle is not signed (no manifest.sig): sign it with `thanthien release sign`"
            )
        try:
            public_key.verify(_read(tar, members, SIGNATURE), manifest.raw)
        except InvalidSignature:
            raise BundleError(
                "the signature does not match the manifest: the bundle was changed or "
                f"signed with another key (this key: {fingerprint(public_key)})"
            ) from None
        listed = {f.name for f in manifest.files}
        extra = sorted(set(members) - listed - {MANIFEST, SIGNATURE})
        if extra:
            raise BundleError(f"the bundle holds files its manifest does not list: {', '.join(extra)}")
        if extract_to is not None:
            extract_to.mkdir(parents=True, exist_ok=True)
        for entry in manifest.files:
            member = members.get(entry.name)
            if member is None:
                raise BundleError(f"{entry.name} is listed in the manifest but missing from the bundle")
            src = tar.extractfile(member)
            assert src is not None
            if extract_to is None:
                digest, size = _digest(src)
            else:
                target = extract_to / entry.name.removeprefix(WHEELS)
                h = hashlib.sha256()
                size = 0
                with target.open("wb") as out:
                    while chunk := src.read(_CHUNK):
                        h.update(chunk)
                        size += len(chunk)
                        out.write(chunk)
                digest = h.hexdigest()
            if digest != entry.sha256 or size != entry.size:
                raise BundleError(f"{entry.name} does not match its digest in the manifest (changed file)")
    return manifest


def bundle_digest(path: Path) -> str:
    """The sha256 of the bundle file as a whole (what the hub offers and the node checks on download)."""
    with path.open("rb") as f:
        return _digest(f)[0]
