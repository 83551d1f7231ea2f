"""The simulated town of the demo: Mường Ảng (thị trấn Mường Ảng, Điện Biên province).

One site, the town People's Committee (UBND thị trấn Mường Ảng), with its one-stop office:
five counters, each with a rating box on one edge node (``mot-cua``) that also checks four
CCTV cameras, ten officers on a duty roster, and twelve loudspeaker nodes, one per hamlet
(bản) or residential group (tổ dân phố). The same description yields the hub's registry
declarations (:func:`registry_declarations`), the simulated nodes (:func:`node_specs`) and
the seeded history (:mod:`thanthien.sim.seed`).

Each counter has a score mix for the October survey round and a better one for the March
round (the office improved in between, some counters more than others), so the reports
have two rounds to compare.

The hub serves the town and a neighbour, xã Ẳng Tở (issue 20: one hub, communes as tenants):
the neighbour has a small one-stop office (one counter, one rating box) and two speaker
nodes, and its own users; a province account reads both.
"""

from __future__ import annotations

from dataclasses import dataclass

from thanthien.sim.citizens import ScoreMix
from thanthien.sim.node import BoxSpec, NodeSpec

COMMUNE = "muong-ang"
COMMUNE_NAME = "Thị trấn Mường Ảng"
SITE_CODE = "tt-muong-ang"
SITE_NAME = "UBND thị trấn Mường Ảng"
NEIGHBOUR = "ang-to"
NEIGHBOUR_NAME = "Xã Ẳng Tở"
NEIGHBOUR_SITE = "ubnd-ang-to"
NEIGHBOUR_SITE_NAME = "UBND xã Ẳng Tở"
NEIGHBOUR_OFFICE = "at-mot-cua"
OFFICE_NODE = "mot-cua"
OFFICE_NODE_NAME = "Bộ phận một cửa UBND thị trấn Mường Ảng"


@dataclass(frozen=True)
class TownCounter:
    code: str
    name: str
    october: ScoreMix
    march: ScoreMix

    @property
    def box(self) -> str:
        return f"hop-{self.code}"

    def mix_at(self, progress: float) -> ScoreMix:
        """The mix ``progress`` (0: October round, 1: March round and after) of the way."""
        p = min(max(progress, 0.0), 1.0)
        a, b = self.october, self.march
        values = [x + (y - x) * p for x, y in ((a.very_satisfied, b.very_satisfied),
                                               (a.satisfied, b.satisfied), (a.neutral, b.neutral),
                                               (a.dissatisfied, b.dissatisfied))]
        total = sum(values)
        return ScoreMix(*(v / total for v in values))


COUNTERS: tuple[TownCounter, ...] = (
    TownCounter("quay-1", "Quầy 1 – Tư pháp, hộ tịch",
                ScoreMix(0.45, 0.33, 0.14, 0.08), ScoreMix(0.62, 0.28, 0.07, 0.03)),
    TownCounter("quay-2", "Quầy 2 – Địa chính, xây dựng, đất đai",
                ScoreMix(0.30, 0.32, 0.20, 0.18), ScoreMix(0.48, 0.32, 0.12, 0.08)),
    TownCounter("quay-3", "Quầy 3 – Lao động, thương binh và xã hội",
                ScoreMix(0.55, 0.30, 0.10, 0.05), ScoreMix(0.60, 0.29, 0.08, 0.03)),
    TownCounter("quay-4", "Quầy 4 – Văn hóa, y tế, giáo dục",
                ScoreMix(0.50, 0.30, 0.12, 0.08), ScoreMix(0.58, 0.30, 0.08, 0.04)),
    TownCounter("quay-5", "Quầy 5 – Tiếp nhận và trả kết quả",
                ScoreMix(0.40, 0.35, 0.15, 0.10), ScoreMix(0.55, 0.32, 0.09, 0.04)),
)


@dataclass(frozen=True)
class TownOfficer:
    code: str
    full_name: str
    title: str
    counter: str  # the counter they staff (two officers per counter, alternating by week)


OFFICERS: tuple[TownOfficer, ...] = (
    TownOfficer("cb-lo-thi-hoa", "Lò Thị Hoa", "Công chức Tư pháp – Hộ tịch", "quay-1"),
    TownOfficer("cb-nguyen-van-duc", "Nguyễn Văn Đức", "Công chức Tư pháp – Hộ tịch", "quay-1"),
    TownOfficer("cb-quang-van-thanh", "Quàng Văn Thành", "Công chức Địa chính – Xây dựng", "quay-2"),
    TownOfficer("cb-tran-thi-lan", "Trần Thị Lan", "Công chức Địa chính – Xây dựng", "quay-2"),
    TownOfficer("cb-luong-thi-mai", "Lường Thị Mai", "Công chức Văn hóa – Xã hội", "quay-3"),
    TownOfficer("cb-ca-van-tuan", "Cà Văn Tuấn", "Công chức Văn hóa – Xã hội", "quay-3"),
    TownOfficer("cb-tong-thi-huong", "Tòng Thị Hương", "Công chức Văn hóa – Xã hội", "quay-4"),
    TownOfficer("cb-pham-minh-quan", "Phạm Minh Quân", "Công chức Văn phòng – Thống kê", "quay-4"),
    TownOfficer("cb-vi-thi-thu", "Vì Thị Thu", "Công chức Văn phòng – Thống kê", "quay-5"),
    TownOfficer("cb-hoang-van-long", "Hoàng Văn Long", "Công chức Văn phòng – Thống kê", "quay-5"),
)

CAMERAS: tuple[tuple[str, str], ...] = (
    ("cam-quay-1-2", "Camera quầy 1–2"),
    ("cam-quay-3-4", "Camera quầy 3–4"),
    ("cam-quay-5", "Camera quầy 5"),
    ("cam-sanh-cho", "Camera sảnh chờ"),
)


@dataclass(frozen=True)
class TownZone:
    code: str
    name: str
    kind: str  # "hamlet" (bản) or "residential_group" (tổ dân phố)
    clock_offset_s: float = 0.0

    @property
    def node(self) -> str:
        return f"loa-{self.code}"


ZONES: tuple[TownZone, ...] = (
    TownZone("to-1", "Tổ dân phố 1", "residential_group"),
    TownZone("to-2", "Tổ dân phố 2", "residential_group"),
    TownZone("to-3", "Tổ dân phố 3", "residential_group"),
    TownZone("to-4", "Tổ dân phố 4", "residential_group"),
    TownZone("to-5", "Tổ dân phố 5", "residential_group"),
    TownZone("to-6", "Tổ dân phố 6", "residential_group"),
    TownZone("ban-hon", "Bản Hón", "hamlet"),
    TownZone("ban-co-liu", "Bản Co Líu", "hamlet", clock_offset_s=1.5),
    TownZone("ban-cu", "Bản Củ", "hamlet"),
    TownZone("ban-giang", "Bản Giáng", "hamlet"),
    TownZone("ban-hua-na", "Bản Hua Nạ", "hamlet", clock_offset_s=-0.8),
    TownZone("ban-xuan-tre", "Bản Xuân Tre", "hamlet"),
)
"""Speaker zones; two nodes have clocks that drifted a little (they lost NTP for a while)."""

NEIGHBOUR_ZONES: tuple[TownZone, ...] = (
    TownZone("at-ban-1", "Bản 1 (Ẳng Tở)", "hamlet"),
    TownZone("at-ban-2", "Bản 2 (Ẳng Tở)", "hamlet"),
)
NEIGHBOUR_COUNTERS: tuple[TownCounter, ...] = (
    TownCounter("at-quay-1", "Quầy tiếp nhận và trả kết quả (Ẳng Tở)",
                ScoreMix(0.42, 0.33, 0.15, 0.10), ScoreMix(0.50, 0.32, 0.12, 0.06)),
)
NEIGHBOUR_OFFICERS: tuple[TownOfficer, ...] = (
    TownOfficer("cb-at-lo-van-binh", "Lò Văn Bình", "Công chức Văn phòng – Thống kê", "at-quay-1"),
)


def registry_declarations() -> dict[str, list[dict[str, object]]]:
    """The ``[registry]`` section of the hub config for the town."""
    office_devices: list[dict[str, object]] = [
        {"code": c.box, "kind": "rating_box", "name": f"Hộp đánh giá {c.name.split(' – ')[0].lower()}",
         "counter": c.code} for c in COUNTERS]
    office_devices += [{"code": code, "kind": "camera", "name": name} for code, name in CAMERAS]
    nodes: list[dict[str, object]] = [{"id": OFFICE_NODE, "name": OFFICE_NODE_NAME, "site": SITE_CODE,
                                       "devices": office_devices}]
    nodes += [{"id": z.node, "name": f"Cụm loa {z.name}", "site": SITE_CODE,
               "devices": [{"code": "loa", "kind": "speaker", "name": f"Cụm loa {z.name}", "zone": z.code}]}
              for z in ZONES]
    for node in nodes:
        node["commune"] = COMMUNE
    neighbour: list[dict[str, object]] = [{
        "id": NEIGHBOUR_OFFICE, "name": f"Bộ phận một cửa {NEIGHBOUR_SITE_NAME}", "site": NEIGHBOUR_SITE,
        "commune": NEIGHBOUR, "devices": [{"code": c.box, "kind": "rating_box", "name": "Hộp đánh giá",
                                           "counter": c.code} for c in NEIGHBOUR_COUNTERS]}]
    neighbour += [{"id": z.node, "name": f"Cụm loa {z.name}", "site": NEIGHBOUR_SITE, "commune": NEIGHBOUR,
                   "devices": [{"code": "loa", "kind": "speaker", "name": f"Cụm loa {z.name}",
                                "zone": z.code}]}
                  for z in NEIGHBOUR_ZONES]
    return {
        "communes": [{"code": COMMUNE, "name": COMMUNE_NAME}, {"code": NEIGHBOUR, "name": NEIGHBOUR_NAME}],
        "sites": [{"code": SITE_CODE, "name": SITE_NAME, "commune": COMMUNE},
                  {"code": NEIGHBOUR_SITE, "name": NEIGHBOUR_SITE_NAME, "commune": NEIGHBOUR}],
        "zones": [{"code": z.code, "name": z.name, "kind": z.kind, "site": SITE_CODE, "commune": COMMUNE}
                  for z in ZONES]
        + [{"code": z.code, "name": z.name, "kind": z.kind, "site": NEIGHBOUR_SITE, "commune": NEIGHBOUR}
           for z in NEIGHBOUR_ZONES],
        "counters": [{"code": c.code, "name": c.name, "site": SITE_CODE, "commune": COMMUNE}
                     for c in COUNTERS]
        + [{"code": c.code, "name": c.name, "site": NEIGHBOUR_SITE, "commune": NEIGHBOUR}
           for c in NEIGHBOUR_COUNTERS],
        "nodes": nodes + neighbour,
    }


def node_ids() -> list[str]:
    return [OFFICE_NODE, *(z.node for z in ZONES), NEIGHBOUR_OFFICE, *(z.node for z in NEIGHBOUR_ZONES)]


def node_specs(passwords: dict[str, str], *, progress: float = 1.0) -> list[NodeSpec]:
    """The town's simulated nodes; live citizens rate with the mixes at ``progress``."""
    office = NodeSpec(OFFICE_NODE, passwords[OFFICE_NODE], site=SITE_CODE,
                      boxes=tuple(BoxSpec(c.box, c.code, c.mix_at(progress)) for c in COUNTERS),
                      cameras=tuple(code for code, _ in CAMERAS))
    speakers = [NodeSpec(z.node, passwords[z.node], site=SITE_CODE, speaker=True,
                         clock_offset_s=z.clock_offset_s) for z in ZONES]
    neighbour = NodeSpec(NEIGHBOUR_OFFICE, passwords[NEIGHBOUR_OFFICE], site=NEIGHBOUR_SITE,
                         boxes=tuple(BoxSpec(c.box, c.code, c.mix_at(progress)) for c in NEIGHBOUR_COUNTERS))
    neighbour_speakers = [NodeSpec(z.node, passwords[z.node], site=NEIGHBOUR_SITE, speaker=True)
                          for z in NEIGHBOUR_ZONES]
    return [office, *speakers, neighbour, *neighbour_speakers]
