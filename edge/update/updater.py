"""The agent's side of a roll-out: take the hub's offer, install beside the release in force,
switch, and keep the new release only after a health window.

The hub's offer arrives retained on ``node/{node}/release`` (a node that was away gets it when it
returns). On a worker thread (never the MQTT one) the node:

1. **downloading**: fetches the bundle from the offer's URL with its media token (only to its own
   hub) and checks the file's size and sha256 against the offer;
2. **verified**: checks the Ed25519 signature of the manifest with the public key it got at
   enrollment, and every file's digest (``thanthien/releases.py``); a bundle that fails is
   **failed** with the reason and nothing is installed;
3. **installed**: a venv of its own in ``releases/<version>/``, installed offline from the bundle's
   wheels, its agent imported once;
4. waits while a broadcast plays or is due within ``[update] broadcast_margin_s`` (the status
   says which and until when), then records the trial, points ``current`` at the new release in
   one rename and stops the agent, which systemd starts again (``Restart=always``) from ``current``;
5. **running**: the new agent checks, for ``[update] health_window_s``, that the MQTT link is up,
   its devices are open and pass their self-test and its own threads run. Then **kept**: releases
   older than the one before it are removed. Otherwise it points ``current`` back, says
   **rolled_back** with the reason, and stops, so the release before starts again. A release that
   cannot even stay up is rolled back by the guard before its next start (``guard.py``).

Each step goes out retained on ``node/{node}/release/status``, and the last one again after every
connect.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from thanthien import releases
from thanthien.edge.commands import MessageWorker
from thanthien.edge.update import guard
from thanthien.edge.update.layout import InstallError, Layout
from thanthien.edge.update.state import Outcome, Trial, UpdateState, switch_link
from thanthien.mqtt import Message
from thanthien.protocol.payloads import PayloadError, ReleaseOffer, ReleaseStatus, decode, utc_now

log = logging.getLogger(__name__)

POLL_S = 0.5
RECHECK_S = 5.0
"""While the switch waits for a broadcast, the speaker's plan is asked again this often (it may change)."""


@dataclass(frozen=True)
class UpdateHost:
    """What the updater needs of the agent."""

    node_id: str
    running_version: str
    session: Callable[[], int]
    connected: Callable[[], bool]
    problems: Callable[[], list[str]]
    """Why the agent is not healthy now (devices, self-tests, threads); empty when it is."""
    busy: Callable[[float], tuple[str, float] | None]
    """A broadcast playing or due within the given seconds: (why, until when, epoch seconds)."""
    restart: Callable[[], None]
    """Stop the agent so that systemd starts ``current`` again."""
    publish: Callable[[ReleaseStatus], None]


@dataclass(frozen=True)
class UpdateConfig:
    root: Path
    public_key: releases.Ed25519PublicKey
    hub_url: str | None
    token: str | None
    health_window_s: float
    broadcast_margin_s: float
    max_starts: int
    download_timeout_s: float


class Updater(MessageWorker):
    thread_name = "updater"

    def __init__(self, host: UpdateHost, config: UpdateConfig, stop: threading.Event) -> None:
        super().__init__(stop, size=4)
        self.host = host
        self.config = config
        self.layout = Layout(config.root)
        self._lock = threading.Lock()
        self._status = ReleaseStatus(
            node=host.node_id, session=0, at=utc_now(), running_version=host.running_version
        )
        self._offer: ReleaseOffer | None = None
        self._trial: Trial | None = None
        self._health: threading.Thread | None = None
        self.outcome = threading.Event()
        """Set once this process kept or rolled back the release it runs on trial."""

    # -- start ---------------------------------------------------------------------------------
    def begin(self) -> None:
        """At agent start: a release on trial that this process runs enters its health window; the
        last outcome is what the status says until something new happens."""
        state = UpdateState.load(self.layout.root)
        if state.trial is not None and state.trial.version == self.host.running_version:
            self._trial = state.trial
            self._set(
                "running",
                state.trial.version,
                state.trial.rollout,
                f"health window {self.config.health_window_s:g} s, start {state.trial.starts}",
            )
            self._health = threading.Thread(target=self._watch, name="update-health", daemon=True)
            self._health.start()
        elif state.result is not None:
            r = state.result
            self._set(r.state, r.version, r.rollout, r.reason, publish=False)
        super().start()

    @property
    def alive(self) -> bool:
        return super().alive

    def status(self) -> ReleaseStatus:
        with self._lock:
            return self._status.model_copy(update={"session": self.host.session()})

    def report(self) -> None:
        """Publish the status (after every connect)."""
        try:
            self.host.publish(self.status())
        except Exception:
            log.exception("publishing the release status failed")

    def _set(
        self,
        state: str,
        version: str | None,
        rollout: int | None,
        reason: str | None = None,
        *,
        waiting_until: float | None = None,
        publish: bool = True,
    ) -> None:
        with self._lock:
            self._status = ReleaseStatus(
                node=self.host.node_id,
                session=self.host.session(),
                at=utc_now(),
                running_version=self.host.running_version,
                version=version,
                rollout=rollout,
                state=state,  # type: ignore[arg-type]
                reason=reason[:500] if reason else None,
                waiting_until=datetime.fromtimestamp(waiting_until, UTC) if waiting_until else None,
            )
        log.info("release %s: %s%s", version, state, f" ({reason})" if reason else "")
        if publish and self.host.connected():
            self.report()

    # -- the health window ----------------------------------------------------------------------
    def _watch(self) -> None:
        trial = self._trial
        assert trial is not None
        end = time.monotonic() + self.config.health_window_s
        problems: list[str] = ["the health window has not been checked"]
        connected = False
        while not self.stop_event.wait(POLL_S):
            connected = connected or self.host.connected()
            problems = ([] if self.host.connected() else ["MQTT not connected"]) + self.host.problems()
            if time.monotonic() >= end:
                break
        if self.stop_event.is_set():
            return  # stopped inside the window: the next start counts again (the guard)
        if not problems and connected:
            self._keep(trial)
        else:
            self._roll_back(trial, "health check failed: " + "; ".join(problems or ["MQTT never connected"]))

    def _keep(self, trial: Trial) -> None:
        state = UpdateState.load(self.layout.root)
        state.finish(
            Outcome(version=trial.version, state="kept", rollout=trial.rollout, reason=None, at=time.time())
        )
        state.save(self.layout.root)
        guard.write(self.layout.root, str(self.layout.python(trial.version)), self.config.max_starts)
        removed = self.layout.prune([trial.version, trial.previous])
        self._set("kept", trial.version, trial.rollout, f"removed {', '.join(removed)}" if removed else None)
        self.outcome.set()

    def _roll_back(self, trial: Trial, reason: str) -> None:
        log.error("release %s rolls back to %s: %s", trial.version, trial.previous, reason)
        switch_link(self.layout.root, trial.previous)
        state = UpdateState.load(self.layout.root)
        state.finish(
            Outcome(
                version=trial.version,
                state="rolled_back",
                rollout=trial.rollout,
                reason=reason,
                at=time.time(),
            )
        )
        state.save(self.layout.root)
        self._set("rolled_back", trial.version, trial.rollout, reason)
        self.outcome.set()
        self.host.restart()

    # -- offers ---------------------------------------------------------------------------------
    def handle(self, message: Message) -> None:
        if not message.payload:
            with self._lock:
                self._offer = None
            log.info("the hub withdrew its release offer")
            return
        try:
            offer = decode(ReleaseOffer, message.payload)
        except PayloadError as exc:
            log.warning("ignoring a malformed release offer: %s", exc.reason)
            return
        if offer.node != self.host.node_id:
            log.warning("ignoring a release offer for node %s", offer.node)
            return
        with self._lock:
            self._offer = offer
        self.take(offer)

    def _current_offer(self, offer: ReleaseOffer) -> bool:
        with self._lock:
            return (
                self._offer is not None
                and self._offer.version == offer.version
                and self._offer.rollout == offer.rollout
            )

    def take(self, offer: ReleaseOffer) -> None:
        """Carry one offer as far as it goes (see the module)."""
        if offer.version == self.host.running_version:
            if self._trial is None:
                self._set("kept", offer.version, offer.rollout, "already running this release")
            return
        if self._trial is not None:
            log.info(
                "release %s is on trial; the offer of %s waits for its outcome",
                self._trial.version,
                offer.version,
            )
            return
        last = UpdateState.load(self.layout.root).result
        if (
            last is not None
            and last.version == offer.version
            and last.rollout == offer.rollout
            and last.state in ("rolled_back", "failed")
        ):
            self._set(last.state, last.version, last.rollout, last.reason)
            return
        self._set("offered", offer.version, offer.rollout)
        try:
            bundle = self._download(offer)
            try:
                releases.verify(bundle, self.config.public_key)
                self._set("verified", offer.version, offer.rollout)
                if not self.layout.installed(offer.version):
                    self.layout.install(bundle, self.config.public_key, version=offer.version)
            finally:
                bundle.unlink(missing_ok=True)
        except (releases.BundleError, InstallError, DownloadError) as exc:
            self._fail(offer, str(exc))
            return
        self._set("installed", offer.version, offer.rollout)
        if not self._wait_for_quiet(offer):
            return
        self._switch(offer)

    def _fail(self, offer: ReleaseOffer, reason: str) -> None:
        state = UpdateState.load(self.layout.root)
        state.finish(
            Outcome(
                version=offer.version, state="failed", rollout=offer.rollout, reason=reason, at=time.time()
            )
        )
        state.save(self.layout.root)
        self._set("failed", offer.version, offer.rollout, reason)

    def _wait_for_quiet(self, offer: ReleaseOffer) -> bool:
        """Until no broadcast plays or is due within the margin; False if the offer went away or
        the agent stops."""
        said: str | None = None
        while not self.stop_event.is_set():
            if not self._current_offer(offer):
                log.info("release %s installed but no longer offered: not switching", offer.version)
                return False
            busy = self.host.busy(self.config.broadcast_margin_s)
            if busy is None:
                return True
            why, until = busy
            if why != said:
                self._set(
                    "installed", offer.version, offer.rollout, f"chờ phát xong: {why}", waiting_until=until
                )
                said = why
            self.stop_event.wait(min(max(until - time.time(), POLL_S), RECHECK_S))  # a plan may change
        return False

    def _switch(self, offer: ReleaseOffer) -> None:
        root = self.layout.root
        previous = self.layout.current or self.host.running_version
        now = time.time()
        window = self.config.health_window_s
        state = UpdateState.load(root)
        state.trial = Trial(
            version=offer.version,
            previous=previous,
            rollout=offer.rollout,
            switched_at=now,
            deadline=now + window * self.config.max_starts + 300,
        )
        state.save(root)
        python = self.layout.python(previous)
        guard.write(root, str(python if python.exists() else Path(sys.executable)), self.config.max_starts)
        switch_link(root, offer.version)
        log.warning("switched to release %s (from %s); restarting the agent", offer.version, previous)
        self.host.restart()

    # -- download -------------------------------------------------------------------------------
    def _download(self, offer: ReleaseOffer) -> Path:
        self._set("downloading", offer.version, offer.rollout)
        headers = {}
        if self.config.token:
            if not _same_origin(offer.url, self.config.hub_url):
                raise DownloadError(f"the bundle URL {offer.url} is not on this node's hub; token not sent")
            headers["Authorization"] = f"Bearer {self.config.token}"
        self.layout.staging.mkdir(parents=True, exist_ok=True)
        target = self.layout.staging / f"bundle-{offer.version}.tar"
        h = hashlib.sha256()
        size = 0
        request = urllib.request.Request(offer.url, headers=headers)
        try:
            with (
                urllib.request.urlopen(request, timeout=self.config.download_timeout_s) as response,
                target.open("wb") as out,
            ):
                while chunk := response.read(1 << 20):
                    size += len(chunk)
                    if size > offer.size:
                        raise DownloadError(f"the bundle is larger than the {offer.size} bytes offered")
                    h.update(chunk)
                    out.write(chunk)
        except urllib.error.HTTPError as exc:
            target.unlink(missing_ok=True)
            raise DownloadError(f"the hub answered HTTP {exc.code} for the bundle") from None
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            target.unlink(missing_ok=True)
            raise DownloadError(
                f"the bundle could not be downloaded: {getattr(exc, 'reason', exc)}"
            ) from None
        except DownloadError:
            target.unlink(missing_ok=True)
            raise
        if size != offer.size or h.hexdigest() != offer.sha256:
            target.unlink(missing_ok=True)
            raise DownloadError("the downloaded bundle does not match the offer's size and sha256")
        return target


class DownloadError(Exception):
    pass


def _same_origin(url: str, hub_url: str | None) -> bool:
    if not hub_url:
        return False
    a, b = urlsplit(url), urlsplit(hub_url)
    return (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port)


def clean_staging(root: Path) -> None:
    shutil.rmtree(Layout(root).staging, ignore_errors=True)
