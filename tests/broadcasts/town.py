"""End-to-end harness: a private Mosquitto, the real hub (API + ingest + scheduler) in this
process on a free port, and real edge agents with speakers on mock hardware whose audio goes
to WAV sinks. Optional NetCut proxies sit between chosen nodes and the broker."""

from __future__ import annotations

import hashlib
import json
import uuid
import wave
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from support import Account, wait_until
from thanthien.broker import free_port
from thanthien.config import validate_data
from thanthien.edge.agent import EdgeAgent
from thanthien.edge.audio import WavSink
from thanthien.edge.devices.speaker import SpeakerDevice
from thanthien.edge.settings import EdgeSettings
from thanthien.hub.roles import SYSTEM
from thanthien.hub.runtime import HubRuntime
from thanthien.hub.services import users
from thanthien.hub.settings import HubSettings
from thanthien.sim.acoustics import SimAcoustics, relay_pin_on
from thanthien.sim.netcut import NetCut

PASSWORD = "mat-khau-123"
RELAY = 22



def node_accounts(n: int) -> list[Account]:
    return [Account(f"loa-{i:02d}", f"loa-{i:02d}-secret") for i in range(1, n + 1)]


def daytime_zone(now: datetime | None = None) -> str:
    """A fixed-offset time zone in which it is about noon now: the town's broadcasts, a few
    seconds ahead, then never fall in the quiet hours (21:30-05:30 local), whenever the suite runs."""
    offset = (12 - (now or datetime.now(UTC)).hour + 12) % 24 - 12  # -12 .. +11 hours
    return f"Etc/GMT{-offset:+d}" if offset else "Etc/GMT"


def wav_frames(data: bytes) -> bytes:
    import io

    with wave.open(io.BytesIO(data)) as w:
        return w.readframes(w.getnframes())


class Town:
    def __init__(
        self,
        tmp: Path,
        broker_port: int,
        hub_account: Account,
        nodes: list[Account],
        *,
        zones: dict[str, str],
        cut: tuple[str, ...] = (),
        realtime: bool = False,
        db_url: str | None = None,
        wrong_token: tuple[str, ...] = (),
        microphones: bool = False,
    ) -> None:
        self.tmp = tmp
        self.broker_port = broker_port
        self.nodes = nodes
        self.zones = zones  # node id -> zone code
        self.http_port = free_port()
        self.base = f"http://127.0.0.1:{self.http_port}/api/v1"
        self.settings = validate_data(
            HubSettings,
            {
                "hub": {"data_dir": str(tmp / "hub"), "timezone": daytime_zone()},
                "database": {"url": db_url or f"sqlite:///{tmp / 'hub.db'}"},
                "http": {
                    "host": "127.0.0.1",
                    "port": self.http_port,
                    "secret_key": "e2e-secret-key-0123456789",
                },
                "mqtt": {
                    "host": "127.0.0.1",
                    "port": broker_port,
                    "username": hub_account.username,
                    "password": hub_account.password,
                    "reconnect_min_s": 0.1,
                    "reconnect_max_s": 0.5,
                },
                "ingest": {"client_id": f"hub-e2e-{uuid.uuid4().hex[:6]}", "flush_ms": 5},
                "broadcasts": {"play_now_lead_s": 1.5, "report_grace_s": 2.0},
                "registry": {
                    "zones": [{"code": z, "name": f"Bản {z}"} for z in sorted(set(zones.values()))],
                    "nodes": [
                        {
                            "id": a.username,
                            "devices": [{"code": "loa", "kind": "speaker", "zone": zones[a.username]}],
                        }
                        for a in nodes
                    ],
                },
            },
        )
        self.hub = HubRuntime(self.settings)
        self.cuts: dict[str, NetCut] = {n: NetCut(broker_port).start() for n in cut}
        self.realtime = realtime
        self.wrong_token = wrong_token
        self.microphones = microphones
        """Each speaker's WAV sink hears through the simulator's microphone model (proof of play)."""
        self.acoustics: dict[str, SimAcoustics] = {}
        self.agents: dict[str, EdgeAgent] = {}
        self.http = httpx.Client(base_url=self.base, timeout=30)
        self._headers: dict[str, dict[str, str]] = {}

    # -- life -----------------------------------------------------------------------------
    def start(self) -> Town:
        self.hub.start()
        assert self.hub.wait_http(15), "hub API did not start"
        assert self.hub.link is not None and self.hub.link.wait_connected(10)
        with self.hub.db.session() as s:
            for role in ("admin", "officer", "leader", "it"):
                users.create_user(s, actor=SYSTEM, username=role, password=PASSWORD, role=role,
                                  now=self.hub.ctx.clock())
        for account in self.nodes:
            token = self.post(f"/nodes/{account.username}/media-token", "it").json()["token"]
            if account.username in self.wrong_token:
                token = "tn_" + token[::-1][:-3]
            settings = validate_data(EdgeSettings, self._edge(account, token))
            audio = None
            if self.microphones:
                node = account.username
                acoustics = SimAcoustics(relay_pin_on(lambda n=node: self._pins(n), RELAY),
                                         seed=len(self.acoustics))
                self.acoustics[node] = acoustics
                audio = WavSink(settings.audio.wav_dir or self.tmp, realtime=self.realtime, hears=acoustics)
            agent = EdgeAgent(settings, audio=audio)
            agent.start()
            self.agents[account.username] = agent
        for node, agent in self.agents.items():
            assert agent.link is not None and agent.link.wait_connected(10), f"{node} not connected"
        return self

    def _pins(self, node: str) -> object | None:
        agent = self.agents.get(node)
        return agent.pin_factory if agent is not None else None

    def stop(self) -> None:
        for agent in self.agents.values():
            agent.stop()
        for cut in self.cuts.values():
            cut.close()
        self.hub.stop()
        self.http.close()

    def _edge(self, account: Account, token: str) -> dict[str, Any]:
        node = account.username
        port = self.cuts[node].port if node in self.cuts else self.broker_port
        data_dir = self.tmp / "nodes" / node
        return {
            "node": {"id": node, "hardware": "mock", "data_dir": str(data_dir)},
            "mqtt": {
                "host": "127.0.0.1",
                "port": port,
                "password": account.password,
                "reconnect_min_s": 0.1,
                "reconnect_max_s": 0.5,
                "keepalive_s": 5,
            },
            "outbox": {"resend_interval_s": 0.5},
            "audio": {"output": "wav", "wav_dir": str(data_dir / "sink"), "realtime": self.realtime},
            "speakers": {
                "hub_url": f"{self.base}/",
                "token": token,
                "relay_pin": RELAY,
                "warmup_s": 0.2,
                "relay_off_delay_s": 0.5,
            },
        }

    # -- API ------------------------------------------------------------------------------
    def headers(self, role: str) -> dict[str, str]:
        if role not in self._headers:
            r = self.http.post("/auth/login", data={"username": role, "password": PASSWORD})
            r.raise_for_status()
            self._headers[role] = {"Authorization": f"Bearer {r.json()['access_token']}"}
        return self._headers[role]

    def post(self, path: str, role: str, **kw: Any) -> httpx.Response:
        return self.http.post(path, headers=self.headers(role), **kw)

    def get(self, path: str, role: str = "leader") -> Any:
        r = self.http.get(path, headers=self.headers(role))
        r.raise_for_status()
        return r.json()

    def upload_tone(self, path: Path, title: str) -> dict[str, Any]:
        r = self.post(
            "/media",
            "officer",
            data={"title": title},
            files={"file": (path.name, path.read_bytes(), "audio/wav")},
        )
        assert r.status_code == 201, r.text
        return r.json()

    def schedule_once(
        self, sha: str, at: datetime, *, title: str = "Bản tin", priority: str = "normal", **targets: Any
    ) -> int:
        body = {
            "title": title,
            "media_sha256": sha,
            "schedule_kind": "once",
            "start_at": at.isoformat(),
            "priority": priority,
            **targets,
        }
        r = self.post("/broadcasts", "officer", json=body)
        assert r.status_code == 201, r.text
        approved = self.post(f"/broadcasts/{r.json()['id']}/approve", "leader")
        assert approved.status_code == 200, approved.text
        return int(r.json()["id"])

    def library_file(self, sha: str) -> bytes:
        return (self.settings.hub.data_dir / "media" / sha[:2] / f"{sha}.wav").read_bytes()

    # -- nodes ----------------------------------------------------------------------------
    def speaker(self, node: str) -> SpeakerDevice:
        return self.agents[node].device(SpeakerDevice)

    def wait_cached(self, sha: str, timeout: float = 20.0) -> None:
        def all_cached() -> bool:
            return all(
                self.speaker(n).cache is not None and self.speaker(n).cache.has(sha)  # type: ignore[union-attr]
                for n in self.agents
                if n not in self.wrong_token
            )

        assert wait_until(all_cached, timeout), {
            n: self.speaker(n).cache.has(sha)  # type: ignore[union-attr]
            for n in self.agents
        }

    def playlog(self, node: str) -> list[dict[str, Any]]:
        path = self.tmp / "nodes" / node / "sink" / "playlog.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]

    def sink_file(self, node: str, entry: dict[str, Any]) -> bytes:
        return (self.tmp / "nodes" / node / "sink" / str(entry["file"])).read_bytes()

    def wait_played(self, nodes: list[str], label: str, timeout: float) -> dict[str, dict[str, Any]]:
        def found() -> dict[str, dict[str, Any]]:
            out = {}
            for n in nodes:
                entry = next((e for e in self.playlog(n) if e["label"] == label), None)
                if entry is not None:
                    out[n] = entry
            return out

        assert wait_until(lambda: len(found()) == len(nodes), timeout), sorted(found())
        return found()

    def wait_report(
        self, occurrence_id: str, done: Callable[[dict[str, Any]], bool], timeout: float = 20.0
    ) -> dict[str, Any]:
        last: dict[str, Any] = {}

        def check() -> bool:
            nonlocal last
            last = self.get(f"/occurrences/{occurrence_id}/report")
            return done(last)

        assert wait_until(check, timeout, every=0.2), last
        return last


def label_of(sha: str) -> str:
    """The label the speaker's cache gives a clip (its WAV sink writes it to the playlog)."""
    return sha[:12]


def sha_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
