"""Downloads the media a plan needs ahead of time, earliest start first, on one thread.

Failures that may heal (the hub or the network is down) are retried with a doubling
back-off; failures that will not (bad token, hash mismatch) are retried too, but only at the
longest back-off, since the hub may have been fixed meanwhile. Each download that lands
calls ``on_ready(sha)`` so the player can reconsider what it is waiting for.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from thanthien.edge.speaker.media_cache import MediaCache, MediaFetchError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Want:
    sha256: str
    url: str | None
    needed_at: float  # epoch seconds; play-now uses 0 to go first


@dataclass
class _Backoff:
    next_try: float
    delay: float
    reason: str


class Prefetcher:
    def __init__(self, cache: MediaCache, *, on_ready: Callable[[str], None] | None = None,
                 retry_min_s: float = 2.0, retry_max_s: float = 60.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.cache = cache
        self._on_ready = on_ready
        self.retry_min_s = retry_min_s
        self.retry_max_s = retry_max_s
        self._clock = clock
        self._lock = threading.Lock()
        self._planned: dict[str, Want] = {}
        self._urgent: dict[str, Want] = {}
        self._backoff: dict[str, _Backoff] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- what to fetch --------------------------------------------------------------------

    def want(self, wants: Iterable[Want]) -> None:
        """Replace the plan's wish list."""
        planned: dict[str, Want] = {}
        for w in wants:
            if w.sha256 not in planned or w.needed_at < planned[w.sha256].needed_at:
                planned[w.sha256] = w
        with self._lock:
            self._planned = planned
        self._wake.set()

    def urgent(self, sha256: str, url: str | None) -> None:
        """Fetch this before anything planned, now (a play-now command)."""
        with self._lock:
            self._urgent[sha256] = Want(sha256, url, 0.0)
            backoff = self._backoff.get(sha256)
            if backoff is not None:
                backoff.next_try = min(backoff.next_try, self._clock())
        self._wake.set()

    def last_error(self, sha256: str) -> str | None:
        with self._lock:
            backoff = self._backoff.get(sha256)
            return backoff.reason if backoff else None

    def wanted(self) -> set[str]:
        with self._lock:
            return set(self._planned) | set(self._urgent)

    # -- the thread -----------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="speaker-prefetch", daemon=True)
            self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=self.cache.timeout_s + 5)
            self._thread = None

    def _next(self, now: float) -> tuple[Want | None, float]:
        """The next file to fetch, or how long until one may be tried."""
        with self._lock:
            for sha in [s for s in self._urgent if self.cache.has(s)]:
                del self._urgent[sha]
            candidates = list(self._urgent.values()) + [
                w for s, w in self._planned.items() if s not in self._urgent]
            soonest_retry = 3600.0
            best: Want | None = None
            for w in candidates:
                if self.cache.has(w.sha256):
                    continue
                backoff = self._backoff.get(w.sha256)
                if backoff is not None and backoff.next_try > now:
                    soonest_retry = min(soonest_retry, backoff.next_try - now)
                    continue
                if best is None or w.needed_at < best.needed_at:
                    best = w
            return best, soonest_retry

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            want, wait = self._next(self._clock())
            if want is None:
                self._wake.wait(wait)
                continue
            try:
                self.cache.fetch(want.sha256, want.url)
            except MediaFetchError as exc:
                self._failed(want, exc)
                continue
            except Exception:
                log.exception("unexpected error fetching %s", want.sha256[:12])
                self._failed(want, MediaFetchError("unexpected error"))
                continue
            with self._lock:
                self._backoff.pop(want.sha256, None)
                self._urgent.pop(want.sha256, None)
            if self._on_ready is not None:
                self._on_ready(want.sha256)

    def _failed(self, want: Want, exc: MediaFetchError) -> None:
        with self._lock:
            old = self._backoff.get(want.sha256)
            delay = (self.retry_max_s if not exc.retry
                     else min(self.retry_max_s, old.delay * 2) if old else self.retry_min_s)
            self._backoff[want.sha256] = _Backoff(self._clock() + delay, delay, exc.reason)
        log.warning("media %s not fetched (%s); next try in %.0f s", want.sha256[:12],
                    exc.reason, delay)
