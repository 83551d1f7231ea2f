"""``make pi-check``: the edge install tried on the Pi's own platform (issue 18 item 5).

An arm64 Debian bookworm root (Raspberry Pi OS is bookworm) made with ``debootstrap`` and run
through ``qemu-user-static`` (binfmt_misc), where ``scripts/install.sh edge --bundle`` installs the
agent from a signed release bundle built for ``manylinux_2_36_aarch64`` / Python 3.11, the agent
enrolls against a hub on this machine (its own broker and HTTP on loopback) and runs on mock
hardware, and a second release is rolled out to it and kept. Each step's time is printed and
written to ``var/pi-check/times.json``. Where this machine cannot run foreign binaries (no
binfmt_misc), the error is printed and the same steps run in an amd64 bookworm root
(``PI_ARCH=amd64`` forces that). Needs root, ``debootstrap``, ``qemu-user-static`` and the network
to Debian's and PyPI's archives (the root, the arm64 wheels); not part of the 10-minute suite.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "firmware-sim"))

WORK = REPO / "var" / "pi-check"
TIMES: list[tuple[str, float]] = []
V1, V2 = "0.9.1", "0.9.2"
NODE = "loa-pi"
SUPERVISOR = (
    "while :; do /opt/thanthien/guard || true; /opt/thanthien/current/venv/bin/thanthien edge run "
    "--config /etc/thanthien/edge.toml >> /var/log/thanthien-edge.log 2>&1; sleep 1; done"
)
"""What systemd does for the unit in the root (no systemd runs there): the guard, the agent, again."""
PLATFORM = {"arm64": "manylinux_2_36_aarch64", "amd64": None}


@contextlib.contextmanager
def step(name: str) -> Iterator[None]:
    start = time.monotonic()
    print(f"==> {name}", flush=True)
    try:
        yield
    finally:
        took = time.monotonic() - start
        TIMES.append((name, round(took, 1)))
        print(f"    {name}: {took:.1f} s", flush=True)


def run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(cmd, text=True, capture_output=True, check=False, **kw)  # type: ignore[call-overload]
    if done.returncode != 0:
        raise SystemExit(
            f"failed ({done.returncode}): {' '.join(cmd)}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
        )
    return done


def binfmt_error(arch: str) -> str | None:
    """Why this machine cannot run ``arch`` binaries (None: it can)."""
    host = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    if arch == host:
        return None
    misc = Path("/proc/sys/fs/binfmt_misc")
    if not (misc / "status").exists():
        done = subprocess.run(
            ["mount", "-t", "binfmt_misc", "binfmt_misc", str(misc)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            return f"binfmt_misc is not mounted and cannot be: {done.stderr.strip()}"
    entry = misc / "qemu-aarch64"
    if not entry.exists():
        conf = Path("/usr/lib/binfmt.d/qemu-aarch64.conf")
        if not conf.exists():
            return "qemu-user-static is not installed (apt-get install qemu-user-static)"
        try:
            (misc / "register").write_text(conf.read_text())
        except OSError as exc:
            return f"registering qemu-aarch64 with binfmt_misc failed: {exc}"
    probe = subprocess.run(
        ["/usr/bin/qemu-aarch64-static", "--version"], capture_output=True, text=True, check=False
    )
    if probe.returncode != 0:
        return f"qemu-aarch64-static does not run: {probe.stderr.strip()}"
    return None


def make_root(arch: str) -> Path:
    root = WORK / f"rootfs-{arch}"
    if (root / ".pi-check-ready").exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    run(
        [
            "debootstrap",
            f"--arch={arch}",
            "--variant=minbase",
            "--include=python3",
            "bookworm",
            str(root),
            "http://deb.debian.org/debian",
        ]
    )
    (root / ".pi-check-ready").write_text("ok\n")
    return root


@contextlib.contextmanager
def mounted(root: Path) -> Iterator[None]:
    shutil.copy("/etc/resolv.conf", root / "etc" / "resolv.conf")
    done = []
    for src, dst, kind in (
        ("proc", "proc", ["-t", "proc"]),
        ("/dev", "dev", ["--bind"]),
        ("/sys", "sys", ["--bind"]),
    ):
        target = root / dst
        if subprocess.run(["mountpoint", "-q", str(target)], check=False).returncode != 0:
            run(["mount", *kind, src, str(target)])
            done.append(target)
    try:
        yield
    finally:
        for target in reversed(done):
            subprocess.run(["umount", "-l", str(target)], check=False)


def in_root(root: Path, script: str, timeout: float = 3600) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C.UTF-8"}
    return run(["chroot", str(root), "/bin/sh", "-ec", script], env=env, timeout=timeout)


def pyaudio_wheel(root: Path, arch: str, wheelhouse: Path) -> None:
    """PyAudio ships only its source: build its wheel once inside the root (the Pi's platform)."""
    from thanthien.release_build import SDIST_MARK, read_lock

    if arch == "amd64" or list(wheelhouse.glob("[Pp]y[Aa]udio-*.whl")):
        return
    pin = read_lock(REPO / "requirements.lock")["pyaudio"]
    # the source is fetched here (pip checks it against the lock's hashes), built there offline
    sdist_dir = WORK / "sdist"
    req = WORK / "pyaudio.txt"
    req.write_text(
        f"pyaudio=={pin.version} " + " ".join(f"--hash=sha256:{h}" for h in sorted(pin.hashes)) + "\n"
    )
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--no-binary",
            ":all:",
            "--require-hashes",
            "-r",
            str(req),
            "-d",
            str(sdist_dir),
        ]
    )
    sdist = next(sdist_dir.glob("[Pp]y[Aa]udio-*.tar.gz"))
    shutil.copy(sdist, root / "tmp" / sdist.name)
    in_root(
        root,
        "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "
        "gcc libc6-dev portaudio19-dev python3-dev python3-pip python3-setuptools python3-wheel "
        ">/dev/null && "
        "python3 -m pip wheel --quiet --no-deps --no-index --no-build-isolation -w /tmp/pyaudio-wheel "
        f"/tmp/{sdist.name}",
    )
    wheelhouse.mkdir(parents=True, exist_ok=True)
    for wheel in (root / "tmp" / "pyaudio-wheel").glob("*.whl"):
        shutil.copy(wheel, wheelhouse / wheel.name)
        (wheelhouse / (wheel.name + SDIST_MARK)).write_text(" ".join(sorted(pin.hashes)) + "\n")


def bundles(arch: str, tmp: Path, key: bytes) -> dict[str, Path]:
    from releases.release_helpers import _source

    from thanthien.release_build import Target, build, build_project_wheel

    out = {}
    for version in (V1, V2):
        wheel = build_project_wheel(_source(tmp, version), tmp / f"wheel-{version}")
        out[version] = build(
            out_dir=WORK / f"bundles-{arch}",
            lock_path=REPO / "requirements.lock",
            wheelhouses=[WORK / f"wheels-{arch}"],
            target=Target("3.11", PLATFORM[arch]),
            project_wheel=wheel,
            key=key,
            built_ok={"pyaudio"},
        )
    return out


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> int:
    arch = os.environ.get("PI_ARCH", "arm64")
    if os.geteuid() != 0:
        print("make pi-check needs root (debootstrap, chroot, mount)", file=sys.stderr)
        return 2
    WORK.mkdir(parents=True, exist_ok=True)
    error = binfmt_error(arch)
    if error is not None:
        print(
            f"this machine cannot run {arch} binaries: {error}\nrunning the same steps in an amd64 root",
            file=sys.stderr,
        )
        TIMES.append((f"binfmt for {arch}: {error}", 0.0))
        arch = "amd64"
    from demo import HubProcess, prepare_broker, to_toml  # firmware-sim

    from thanthien import releases

    with step(f"debootstrap bookworm {arch} (minbase + python3)"):
        root = make_root(arch)
    tmp = WORK / "build"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    private, public = releases.generate_key()
    (tmp / "release.pub").write_bytes(public)
    hub_dir = WORK / "hub"
    shutil.rmtree(hub_dir, ignore_errors=True)
    hub_dir.mkdir()
    broker, hub_password = prepare_broker(hub_dir, free_port())
    http_port = free_port()
    base = f"http://127.0.0.1:{http_port}"
    config = hub_dir / "hub.toml"
    config.write_text(
        to_toml(
            {
                "hub": {"data_dir": str(hub_dir / "data")},
                "mqtt": {
                    "host": "127.0.0.1",
                    "port": broker.port,
                    "username": "hub",
                    "password": hub_password,
                },
                "http": {
                    "host": "127.0.0.1",
                    "port": http_port,
                    "secret_key": "pi-check-secret-key-0123456789",
                },
                "enrollment": {
                    "broker_data": str(broker.data_dir),
                    "broker_host": "127.0.0.1",
                    "broker_port": broker.port,
                },
                "releases": {"public_key": str(tmp / "release.pub"), "download_url": f"{base}/api/v1"},
                "fleet": {"config_check_s": 5},
            }
        )
        + "\n"
    )
    hub = HubProcess(config, hub_dir / "hub.log")
    agent: subprocess.Popen[bytes] | None = None
    stop = threading.Event()
    with mounted(root):
        try:
            with step(f"PyAudio wheel for {arch} (built in the root from the locked source)"):
                pyaudio_wheel(root, arch, WORK / f"wheels-{arch}")
            with step(f"release bundles {V1} and {V2} for {PLATFORM[arch] or 'this machine'}"):
                built = bundles(arch, tmp, private)
            broker.start()
            hub.start()
            assert hub.wait_http(f"{base}/api/v1/health", stop), hub.log_tail()
            code = enroll_code(hub_dir)
            fresh = "rm -rf /opt/thanthien /opt/src /etc/thanthien /var/lib/thanthien-edge"
            in_root(root, fresh)  # a fresh node on every run
            src = root / "opt" / "src"
            shutil.rmtree(src, ignore_errors=True)
            shutil.copytree(
                REPO, src, ignore=shutil.ignore_patterns(".venv", "var", ".git", "__pycache__", "tests")
            )
            shutil.copy(built[V1], root / "tmp" / "bundle.tar")
            shutil.copy(tmp / "release.pub", root / "tmp" / "release.pub")
            with step(f"scripts/install.sh edge --bundle (release {V1}) + enroll, in the {arch} root"):
                done = in_root(
                    root,
                    "cd /opt/src && bash scripts/install.sh edge --bundle /tmp/bundle.tar "
                    f"--release-key /tmp/release.pub --hub {base} --code {code} --hardware mock",
                )
                print(done.stdout[-1500:])
            window = os.environ.get("PI_HEALTH_WINDOW_S")
            if window:  # a shorter health window than the 900 s default, for a quicker drill
                line = f"health_window_s = {float(window)}"
                in_root(root, f"sed -i '/^\\[update\\]/a {line}' /etc/thanthien/edge.toml")
            with step("the agent starts and reports online with its version"):
                agent = subprocess.Popen(
                    [
                        "chroot",
                        str(root),
                        "/bin/sh",
                        "-c",
                        SUPERVISOR,
                    ],
                    start_new_session=True,
                )
                wait_for(hub_dir, lambda n: n.state == "online" and n.agent_version == V1, 600)
            with step(f"upload {V2} and roll it out; the node installs, switches and keeps it"):
                rollout = roll_out(hub_dir, built[V2])
                wait_for(
                    hub_dir,
                    lambda n: n.agent_version == V2 and rollout_state(hub_dir, rollout) == "done",
                    1800,
                )
            current = os.readlink(root / "opt" / "thanthien" / "current")
            kept = sorted(p.name for p in (root / "opt" / "thanthien" / "releases").iterdir())
            print(f"current -> {current}; releases: {kept}")
        finally:
            if agent is not None:
                os.killpg(agent.pid, 15)
                agent.wait(30)
            hub.stop()
            broker.stop()
    (WORK / "times.json").write_text(json.dumps({"arch": arch, "steps": TIMES}, indent=1, ensure_ascii=False))
    print("\n".join(f"{t:8.1f} s  {name}" for name, t in TIMES))
    return 0


def _db(hub_dir: Path):  # type: ignore[no-untyped-def]
    from thanthien.hub.db.session import Database

    return Database(f"sqlite:///{hub_dir / 'data' / 'hub.db'}")


def enroll_code(hub_dir: Path) -> str:
    from datetime import UTC, datetime

    from thanthien.hub.roles import SYSTEM
    from thanthien.hub.services import enrollment, registry
    from thanthien.hub.settings import EnrollmentSection

    db = _db(hub_dir)
    with db.session() as s:
        registry.create_zone(s, actor=SYSTEM, code="ban-pi", name="Bản Pi")
        issued = enrollment.add_node(
            s,
            actor=SYSTEM,
            node_id=NODE,
            name="Cụm loa thử",
            now=datetime.now(UTC),
            settings=EnrollmentSection(),
            zone="ban-pi",
        )
    db.dispose()
    return issued.code


def roll_out(hub_dir: Path, bundle: Path) -> int:
    from datetime import UTC, datetime

    from thanthien.hub.roles import SYSTEM
    from thanthien.hub.services import releases

    db = _db(hub_dir)
    import tomllib

    settings = tomllib.loads((hub_dir / "hub.toml").read_text())
    with db.session() as s, bundle.open("rb") as f:
        releases.upload(
            s,
            actor=SYSTEM,
            data=f,
            store=hub_dir / "data" / "releases",
            key_path=Path(settings["releases"]["public_key"]),
            now=datetime.now(UTC),
        )
    with db.session() as s:
        rid = releases.create_rollout(
            s,
            actor=SYSTEM,
            request=releases.RolloutRequest(version=V2, target="nodes", nodes=[NODE], stages=[100]),
            now=datetime.now(UTC),
        ).id
    db.dispose()
    return rid


def rollout_state(hub_dir: Path, rid: int) -> str:
    from thanthien.hub.db.models import Rollout

    db = _db(hub_dir)
    with db.session(write=False) as s:
        state = s.get(Rollout, rid).state
    db.dispose()
    return state


def wait_for(hub_dir: Path, ok, timeout: float) -> None:  # type: ignore[no-untyped-def]
    from thanthien.hub.db.models import Node

    end = time.monotonic() + timeout
    stop = threading.Event()
    while time.monotonic() < end:
        db = _db(hub_dir)
        with db.session(write=False) as s:
            node = s.get(Node, NODE)
            good = node is not None and ok(node)
        db.dispose()
        if good:
            return
        stop.wait(1.0)
    raise SystemExit(f"timed out after {timeout:.0f} s; see {WORK}/rootfs-*/var/log/thanthien-edge.log")


if __name__ == "__main__":
    sys.exit(main())
