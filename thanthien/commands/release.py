"""``thanthien release keygen | build | sign | verify``: signed bundles of the edge agent.

``keygen`` makes the deployment's Ed25519 key pair (the private key stays with IT; the public key
goes into the hub's ``[releases] public_key`` and from there to every node at enrollment);
``build`` makes a bundle (``thanthien/release_build.py``), signed at once with ``--key``;
``sign`` signs a built bundle; ``verify`` checks one as the hub and the nodes do. Exit 2 with the
reason when something is refused.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

EXIT_REFUSED = 2


def _write(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def run_keygen(args: argparse.Namespace) -> int:
    from thanthien import releases

    private, public = releases.generate_key()
    key, pub = Path(args.key), Path(args.public)
    for path in (key, pub):
        if path.exists():
            print(
                f"refused: {path} exists (a new key would orphan every node that trusts the old one)",
                file=sys.stderr,
            )
            return EXIT_REFUSED
    _write(key, private, 0o600)
    _write(pub, public, 0o644)
    print(
        f"release key {releases.fingerprint(releases.load_public(public))}: private {key} (keep it with IT), "
        f"public {pub} (the hub's [releases] public_key)"
    )
    return 0


def run_build(args: argparse.Namespace) -> int:
    from thanthien import releases
    from thanthien.release_build import BuildError, Target, build

    target = Target(
        python=args.python or f"{sys.version_info.major}.{sys.version_info.minor}", platform=args.platform
    )
    try:
        out = build(
            out_dir=Path(args.out),
            lock_path=Path(args.lock),
            wheelhouses=[Path(w) for w in (args.wheelhouse or ["var/wheelhouse"])],
            target=target,
            project_wheel=Path(args.project_wheel) if args.project_wheel else None,
            source=Path(args.source),
            built_ok=set(args.built),
            key=Path(args.key).read_bytes() if args.key else None,
        )
    except (BuildError, releases.BundleError, OSError) as exc:
        print(f"release build failed: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    print(out)
    return 0


def run_sign(args: argparse.Namespace) -> int:
    from thanthien import releases

    try:
        manifest = releases.sign(Path(args.bundle), releases.load_private(Path(args.key).read_bytes()))
    except (releases.BundleError, OSError) as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    print(f"release {manifest.version} signed: {args.bundle}")
    return 0


def run_verify(args: argparse.Namespace) -> int:
    from thanthien import releases

    try:
        key = releases.load_public(Path(args.public_key).read_bytes())
        manifest = releases.verify(Path(args.bundle), key)
    except (releases.BundleError, OSError) as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    print(
        json.dumps(
            {
                "version": manifest.version,
                "python": manifest.python,
                "platform": manifest.platform,
                "files": len(manifest.files),
                "key": releases.fingerprint(key),
                "sha256": releases.bundle_digest(Path(args.bundle)),
            }
        )
    )
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("release", help="signed release bundles of the edge agent")
    rsub = p.add_subparsers(dest="release_command", required=True, metavar="ACTION")
    k = rsub.add_parser("keygen", help="the deployment's Ed25519 release key pair")
    k.add_argument("--key", required=True, help="where the private key goes (0600)")
    k.add_argument("--public", required=True, help="where the public key goes")
    k.set_defaults(func=run_keygen)
    b = rsub.add_parser("build", help="a bundle: the project's wheel and its locked edge wheels")
    b.add_argument("--out", default="dist", help="directory of the bundle (default dist)")
    b.add_argument("--source", default=".", help="the checkout to build the project's wheel from")
    b.add_argument("--project-wheel", help="use this wheel of the project instead of building one")
    b.add_argument("--lock", default="requirements.lock")
    b.add_argument(
        "--wheelhouse",
        action="append",
        default=[],
        help="directory of wheels to take from (repeatable); missing ones are downloaded into the "
        "first (default var/wheelhouse)",
    )
    b.add_argument("--python", help="target Python, e.g. 3.11 (default: this one)")
    b.add_argument("--platform", help="target platform, e.g. manylinux_2_36_aarch64 (default: this machine)")
    b.add_argument(
        "--built",
        action="append",
        default=[],
        help="a package whose wheel in a wheelhouse was built from its locked source (repeatable)",
    )
    b.add_argument("--key", help="sign with this private key at once")
    b.set_defaults(func=run_build)
    s = rsub.add_parser("sign", help="sign a bundle's manifest with the deployment's private key")
    s.add_argument("bundle")
    s.add_argument("--key", required=True)
    s.set_defaults(func=run_sign)
    v = rsub.add_parser("verify", help="check a bundle's signature and every digest")
    v.add_argument("bundle")
    v.add_argument("--public-key", required=True)
    v.set_defaults(func=run_verify)
