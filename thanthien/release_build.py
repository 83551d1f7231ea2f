"""``thanthien release build``: the edge agent's bundle from this checkout and ``requirements.lock``.

What goes in: the project's wheel (built from the checkout with ``pip wheel``, or given) and, for
every requirement of the project and its ``edge`` extra, followed through each wheel's own
``Requires-Dist``, the wheel of the exact version the lock pins, for the target Python and
platform (by default this machine's; ``--platform manylinux_2_36_aarch64 --python 3.11`` for a
Raspberry Pi on Debian bookworm). Each wheel is taken from a ``--wheelhouse`` directory when one
holds it, else fetched with ``pip download`` into the first wheelhouse, and every one must match a
sha256 the lock lists for that pin. A pin the index has no wheel of (PyAudio ships only its
source) is built with ``pip wheel`` from the locked source (its hash checked by pip) when the
target is this machine; for another platform, build that wheel on such a machine and name it with
``--built NAME`` (its own digest then goes into the signed manifest only).
"""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import sysconfig
import tempfile
import zipfile
from dataclasses import dataclass, field
from email.parser import Parser
from pathlib import Path

from packaging.requirements import Requirement
from packaging.tags import Tag, compatible_tags, cpython_tags, sys_tags
from packaging.utils import canonicalize_name, parse_wheel_filename

from thanthien import releases

log = logging.getLogger(__name__)


SDIST_MARK = ".from-locked-sdist"
"""Beside a wheel this build made from the locked source: the source's hashes."""


class BuildError(Exception):
    """The bundle cannot be built; the message says why and what to do."""


@dataclass(frozen=True)
class Pin:
    name: str
    version: str
    hashes: frozenset[str]


def read_lock(path: Path) -> dict[str, Pin]:
    """``name==version`` and its ``--hash=sha256:`` lines, per canonical name."""
    pins: dict[str, Pin] = {}
    current: tuple[str, str] | None = None
    hashes: set[str] = set()
    for line in path.read_text().splitlines():
        stripped = line.strip()
        match = re.match(r"^([A-Za-z0-9_.-]+)==([^\s\\;]+)", stripped)
        if match and not line.startswith(" "):
            if current is not None:
                pins[canonicalize_name(current[0])] = Pin(current[0], current[1], frozenset(hashes))
            current, hashes = (match.group(1), match.group(2)), set()
        for digest in re.findall(r"--hash=sha256:([0-9a-f]{64})", stripped):
            hashes.add(digest)
    if current is not None:
        pins[canonicalize_name(current[0])] = Pin(current[0], current[1], frozenset(hashes))
    if not pins:
        raise BuildError(f"{path} pins nothing")
    return pins


@dataclass(frozen=True)
class Target:
    python: str  # "3.11"
    platform: str | None  # None: this machine

    @property
    def native(self) -> bool:
        return self.platform is None

    @property
    def python_tag(self) -> str:
        return "cp" + self.python.replace(".", "")

    @property
    def platform_label(self) -> str:
        return self.platform or sysconfig.get_platform().replace("-", "_").replace(".", "_")

    def tags(self) -> set[Tag]:
        if self.native:
            return set(sys_tags())
        assert self.platform is not None
        match = re.fullmatch(r"manylinux_(\d+)_(\d+)_(\w+)", self.platform)
        platforms = [self.platform]
        if match:
            major, minor, arch = int(match.group(1)), int(match.group(2)), match.group(3)
            platforms = [f"manylinux_{major}_{m}_{arch}" for m in range(minor, 16, -1)]
            platforms += [f"manylinux2014_{arch}", f"linux_{arch}"]
        version = tuple(int(x) for x in self.python.split("."))
        return set(cpython_tags(version, platforms=platforms)) | set(
            compatible_tags(version, platforms=platforms)
        )

    def pip_args(self) -> list[str]:
        if self.native:
            return []
        assert self.platform is not None
        platforms = sorted(f"{t.platform}" for t in self.tags() if t.platform != "any")
        args = [
            "--python-version",
            self.python,
            "--implementation",
            "cp",
            "--abi",
            self.python_tag,
            "--abi",
            "abi3",
            "--abi",
            "none",
        ]
        for p in dict.fromkeys(platforms):
            args += ["--platform", p]
        return args


@dataclass
class Collected:
    wheels: dict[str, Path] = field(default_factory=dict)  # canonical name -> wheel file
    requirements: list[str] = field(default_factory=list)
    built: list[str] = field(default_factory=list)


def _requires(wheel: Path, extras: set[str], target: Target) -> list[Requirement]:
    with zipfile.ZipFile(wheel) as zf:
        meta = next((n for n in zf.namelist() if n.endswith(".dist-info/METADATA")), None)
        if meta is None:
            raise BuildError(f"{wheel.name} has no METADATA")
        message = Parser().parsestr(zf.read(meta).decode())
    env: dict[str, str] = {"python_version": target.python, "python_full_version": f"{target.python}.0"}
    if target.platform and "aarch64" in target.platform:
        env["platform_machine"] = "aarch64"
    out = []
    for spec in message.get_all("Requires-Dist") or []:
        req = Requirement(spec)
        if req.marker is not None and not any(
            req.marker.evaluate({**env, "extra": e}) for e in (extras or {""})
        ):
            continue
        out.append(req)
    return out


def _sha256(path: Path) -> str:
    return releases.file_digest(path).sha256


def _find(wheelhouses: list[Path], pin: Pin, tags: set[Tag]) -> Path | None:
    for house in wheelhouses:
        if not house.is_dir():
            continue
        for path in sorted(house.glob("*.whl")):
            try:
                name, version, _build, wheel_tags = parse_wheel_filename(path.name)
            except ValueError:
                continue
            if (
                canonicalize_name(name) == canonicalize_name(pin.name)
                and str(version) == pin.version
                and wheel_tags & tags
            ):
                return path
    return None


def _pip(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        check=False,
    )


def _fetch(pin: Pin, dest: Path, target: Target, built: set[str]) -> Path:
    """Download the pin's wheel for the target (hash checked by pip), or build it from the locked
    source for this machine."""
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        reqs = Path(tmp) / "req.txt"
        reqs.write_text(
            f"{pin.name}=={pin.version} " + " ".join(f"--hash=sha256:{h}" for h in sorted(pin.hashes)) + "\n"
        )
        done = _pip(
            [
                "download",
                "--quiet",
                "--no-deps",
                "--only-binary=:all:",
                "--require-hashes",
                "--dest",
                tmp,
                "-r",
                str(reqs),
                *target.pip_args(),
            ]
        )
        if done.returncode != 0 and target.native:
            done = _pip(
                ["wheel", "--quiet", "--no-deps", "--require-hashes", "--wheel-dir", tmp, "-r", str(reqs)]
            )
            if done.returncode == 0:
                built.add(canonicalize_name(pin.name))
        if done.returncode != 0:
            raise BuildError(
                f"no wheel of {pin.name}=={pin.version} for {target.platform_label} / "
                f"Python {target.python}: {done.stderr.strip()[-400:]}\nBuild it on such a machine "
                f"(`pip wheel {pin.name}=={pin.version}`), put it in a --wheelhouse and name it "
                f"with --built {pin.name}."
            )
        found = sorted(Path(tmp).glob("*.whl"))
        if not found:
            raise BuildError(f"pip gave no wheel of {pin.name}=={pin.version}")
        target_path = dest / found[0].name
        found[0].replace(target_path)
        if canonicalize_name(pin.name) in built:  # remembered for the next build from this wheelhouse
            target_path.with_name(target_path.name + SDIST_MARK).write_text(
                " ".join(sorted(pin.hashes)) + "\n"
            )
        return target_path


def collect(
    project_wheel: Path, lock: dict[str, Pin], wheelhouses: list[Path], target: Target, built_ok: set[str]
) -> Collected:
    """The project's edge dependencies as wheels, each the locked version (see the module)."""
    tags = target.tags()
    out = Collected()
    built: set[str] = set()
    todo = _requires(project_wheel, {"edge"}, target)
    problems: list[str] = []
    while todo:
        req = todo.pop(0)
        key = canonicalize_name(req.name)
        if key in out.wheels:
            continue
        pin = lock.get(key)
        if pin is None:
            problems.append(
                f"{req.name} is needed ({req}) but requirements.lock does not pin it: run make lock"
            )
            continue
        if not req.specifier.contains(pin.version, prereleases=True):
            problems.append(f"{req} does not allow the locked {pin.name}=={pin.version}")
            continue
        path = _find(wheelhouses, pin, tags)
        if path is None:
            if not wheelhouses:
                raise BuildError("no --wheelhouse to download into")
            path = _fetch(pin, wheelhouses[0], target, built)
        digest = _sha256(path)
        mark = path.with_name(path.name + SDIST_MARK)
        if mark.exists() and set(mark.read_text().split()) & pin.hashes:
            built.add(key)
        if digest not in pin.hashes:
            if key in built or key in {canonicalize_name(n) for n in built_ok}:
                out.built.append(pin.name)
            else:
                problems.append(
                    f"{path.name}: its sha256 {digest} is not one requirements.lock lists for "
                    f"{pin.name}=={pin.version}"
                )
                continue
        out.wheels[key] = path
        out.requirements.append(f"{pin.name}=={pin.version}")
        todo.extend(_requires(path, set(req.extras), target))
    if problems:
        raise BuildError("; ".join(problems))
    return out


def build_project_wheel(source: Path, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    done = _pip(
        ["wheel", "--quiet", "--no-deps", "--no-build-isolation", "--wheel-dir", str(out_dir), str(source)]
    )
    if done.returncode != 0:
        raise BuildError(f"building the project's wheel failed: {done.stderr.strip()[-600:]}")
    wheels = sorted(out_dir.glob("thanthien-*.whl"), key=lambda p: p.stat().st_mtime)
    if not wheels:
        raise BuildError("pip built no thanthien wheel")
    return wheels[-1]


def build(
    *,
    out_dir: Path,
    lock_path: Path,
    wheelhouses: list[Path],
    target: Target,
    project_wheel: Path | None = None,
    source: Path | None = None,
    built_ok: set[str] | None = None,
    key: bytes | None = None,
) -> Path:
    """Build (and with ``key``, sign) the bundle; returns its path ``out_dir/thanthien-edge-<v>.tar``."""
    lock = read_lock(lock_path)
    with tempfile.TemporaryDirectory() as tmp:
        if project_wheel is None:
            if source is None:
                raise BuildError("either a project wheel or the source to build it from")
            project_wheel = build_project_wheel(source, Path(tmp))
        name, version, _b, _t = parse_wheel_filename(project_wheel.name)
        if canonicalize_name(name) != "thanthien":
            raise BuildError(f"{project_wheel.name} is not the project's wheel")
        deps = collect(project_wheel, lock, wheelhouses, target, built_ok or set())
        wheels = [project_wheel, *deps.wheels.values()]
        manifest = releases.make_manifest(
            version=str(version),
            python=target.python_tag,
            platform=target.platform_label,
            project_wheel=project_wheel.name,
            requirements=deps.requirements,
            files=[releases.file_digest(w) for w in wheels],
        )
        signature = releases.load_private(key).sign(manifest) if key is not None else None
        out_dir.mkdir(parents=True, exist_ok=True)
        out = releases.write_bundle(out_dir / f"{releases.NAME}-{version}.tar", manifest, wheels, signature)
    log.info(
        "release %s: %d wheel(s)%s, %s",
        version,
        len(wheels),
        f" ({', '.join(deps.built)} built from source)" if deps.built else "",
        "signed" if signature else "not signed yet",
    )
    return out
