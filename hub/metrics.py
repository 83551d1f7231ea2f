"""Process counters, rendered with the database gauges in the Prometheus text format."""

from __future__ import annotations

import threading
from collections import defaultdict

Labels = tuple[tuple[str, str], ...]

HELP = {
    "thanthien_hub_ratings_stored_total": ("counter", "Rating events stored (first time)."),
    "thanthien_hub_ratings_duplicate_total": ("counter", "Rating events received again and acked again."),
    "thanthien_hub_dead_letters_total": ("counter", "Messages put in the dead-letter table, by topic kind."),
    "thanthien_hub_sequence_gaps_total": ("counter", "Gaps seen in a node's rating sequence numbers."),
    "thanthien_hub_ingest_messages_total": ("counter", "MQTT messages taken by the ingest, by topic kind."),
    "thanthien_hub_ingest_batches_total": ("counter", "Ingest transactions committed."),
    "thanthien_hub_ingest_errors_total": ("counter", "Ingest transactions that failed and were retried."),
    "thanthien_hub_acks_published_total": ("counter", "Ack messages published to nodes."),
    "thanthien_hub_ingest_queue_depth": ("gauge", "Messages waiting for the ingest worker."),
    "thanthien_hub_nodes": ("gauge", "Nodes by state."),
    "thanthien_hub_nodes_unregistered": ("gauge", "Nodes seen on MQTT but not registered."),
    "thanthien_hub_alarms_active": ("gauge", "Active alarms by severity."),
    "thanthien_hub_ratings_stored": ("gauge", "Ratings in the database."),
    "thanthien_hub_scheduler_leader": ("gauge", "1 while this process runs the scheduler (on PostgreSQL: "
                                                "holds its advisory lock), else 0."),
    "thanthien_hub_state_owner": ("gauge", "1 while this process's ingest handles the retained node state "
                                           "and camera health, else 0."),
    "thanthien_hub_role_changes_total": ("counter", "Times this process took or gave up an elected role, "
                                                    "by role and change."),
}


class Metrics:
    """Thread-safe counters and gauges of this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, dict[Labels, float]] = defaultdict(dict)

    def inc(self, name: str, amount: float = 1, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            series = self._values[name]
            series[key] = series.get(key, 0) + amount

    def set(self, name: str, value: float, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            self._values[name][key] = value

    def value(self, name: str, **labels: str) -> float:
        with self._lock:
            return self._values.get(name, {}).get(tuple(sorted(labels.items())), 0)

    def render(self, extra: dict[str, dict[Labels, float]] | None = None) -> str:
        with self._lock:
            values = {name: dict(series) for name, series in self._values.items()}
        for name, series in (extra or {}).items():
            values[name] = series
        lines: list[str] = []
        for name in sorted(set(HELP) | set(values)):
            kind, text = HELP.get(name, ("untyped", name))
            lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
            series = values.get(name) or ({(): 0.0} if kind == "counter" else {})
            for labels, value in sorted(series.items()):
                label_text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
                lines.append(f"{name}{{{label_text}}} {value:g}" if label_text else f"{name} {value:g}")
        return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
