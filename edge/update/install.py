"""``python3 -m thanthien.edge.update.install --root DIR --bundle FILE --public-key PEM``: the first
release of a node, installed from a bundle the way an update is (signature and every digest checked
before anything is installed, its own venv, ``current`` pointed at it, the guard written).
``scripts/install.sh edge --bundle`` runs it from the checkout with Debian's python3 (it needs only
the standard library and ``cryptography``: python3-cryptography)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from thanthien import releases
from thanthien.edge.update import guard
from thanthien.edge.update.layout import InstallError, Layout
from thanthien.edge.update.state import switch_link


def install_first(root: Path, bundle: Path, public_key: Path, max_starts: int = guard.MAX_STARTS) -> str:
    key = releases.load_public(public_key.read_bytes())
    manifest = releases.verify(bundle, key)
    layout = Layout(root)
    if not layout.installed(manifest.version):
        layout.install(bundle, key, version=manifest.version)
    switch_link(layout.root, manifest.version)
    guard.write(layout.root, str(layout.python(manifest.version)), max_starts)
    return manifest.version


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    parser = argparse.ArgumentParser(prog="python3 -m thanthien.edge.update.install")
    parser.add_argument("--root", required=True)
    parser.add_argument("--bundle", required=True)
    parser.add_argument("--public-key", required=True)
    args = parser.parse_args(argv)
    try:
        version = install_first(Path(args.root), Path(args.bundle), Path(args.public_key))
    except (releases.BundleError, InstallError, OSError) as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 2
    print(f"release {version} installed in {args.root}/releases/{version}; current -> it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
