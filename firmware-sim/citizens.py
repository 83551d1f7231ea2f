"""A scripted citizen model for the simulated one-stop office.

Citizens arrive at each counter as a Poisson process whose rate follows office hours
(Vietnamese public offices: mornings 07:30–11:30, afternoons 13:30–17:00, Monday to
Friday, closed on public holidays from the ``holidays`` package), with a mid-morning peak.
Each visit ends with a rating drawn from the counter's score mix; some citizens press twice
(the box ignores the repeat) and some contacts bounce. The same model seeds the demo's
history, so reports show what the live simulation would have produced.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays

LOCAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")

OFFICE_PERIODS: tuple[tuple[time, time], ...] = ((time(7, 30), time(11, 30)),
                                                 (time(13, 30), time(17, 0)))


@dataclass(frozen=True)
class ScoreMix:
    """Probabilities of scores 4 (Rất hài lòng) .. 1 (Không hài lòng)."""

    very_satisfied: float = 0.55
    satisfied: float = 0.30
    neutral: float = 0.10
    dissatisfied: float = 0.05

    def __post_init__(self) -> None:
        total = self.very_satisfied + self.satisfied + self.neutral + self.dissatisfied
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            raise ValueError(f"score mix must sum to 1 (got {total})")

    def draw(self, rng: random.Random) -> int:
        return rng.choices((4, 3, 2, 1), weights=(self.very_satisfied, self.satisfied,
                                                  self.neutral, self.dissatisfied))[0]


@dataclass(frozen=True)
class Visit:
    """One citizen's rating at one counter."""

    at: datetime  # UTC
    counter: str
    score: int
    repeat_after_s: float | None  # a second press this long after the first, or None
    bouncy: bool  # the contact bounces on press and release


@dataclass
class CitizenModel:
    counters: dict[str, ScoreMix]
    visits_per_hour: float = 6.0
    """Mean visits per counter per open hour (the peak is higher, the edges lower)."""
    repeat_probability: float = 0.08
    bounce_probability: float = 0.3
    seed: int = 1
    tz: ZoneInfo = LOCAL_TZ
    _holidays: holidays.HolidayBase = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._holidays = holidays.country_holidays("VN")

    def is_open(self, local_day: date) -> bool:
        return local_day.weekday() < 5 and local_day not in self._holidays

    def rate_factor(self, local: datetime) -> float:
        """Relative arrival intensity: 0 when closed, peaking around 09:00 and 14:30."""
        if not self.is_open(local.date()):
            return 0.0
        t = local.time()
        for start, end in OFFICE_PERIODS:
            if start <= t < end:
                peak = 9.0 if start.hour < 12 else 14.5
                hours = local.hour + local.minute / 60
                return 0.5 + 1.0 * math.exp(-((hours - peak) ** 2) / 2.0)
        return 0.0

    def visits(self, start: datetime, end: datetime) -> Iterator[Visit]:
        """Every visit in [start, end) in time order; the same seed gives the same visits."""
        rng = random.Random(self.seed)
        peak_rate = self.visits_per_hour * 1.5 / 3600  # per second, upper bound for thinning
        ordered: list[Visit] = []
        for counter in sorted(self.counters):
            mix = self.counters[counter]
            t = start
            while True:
                t += timedelta(seconds=rng.expovariate(peak_rate))
                if t >= end:
                    break
                factor = self.rate_factor(t.astimezone(self.tz))
                if rng.random() * 1.5 >= factor:
                    continue  # thinned: closed or a quiet moment
                repeat = rng.uniform(0.5, 3.0) if rng.random() < self.repeat_probability else None
                ordered.append(Visit(t.astimezone(UTC), counter, mix.draw(rng), repeat,
                                     rng.random() < self.bounce_probability))
        ordered.sort(key=lambda v: v.at)
        yield from ordered


def press_pattern(rng: random.Random, *, bouncy: bool, hold_s: float = 0.15) -> list[tuple[bool, float]]:
    """Pin levels for one press as (pressed, seconds to hold that level): a clean press is
    down-hold-up; a bouncy contact chatters for a few milliseconds on both edges."""
    steps: list[tuple[bool, float]] = []
    if bouncy:
        for _ in range(rng.randint(2, 5)):
            steps += [(True, rng.uniform(0.0005, 0.003)), (False, rng.uniform(0.0005, 0.003))]
    steps.append((True, hold_s))
    if bouncy:
        for _ in range(rng.randint(1, 3)):
            steps += [(False, rng.uniform(0.0005, 0.002)), (True, rng.uniform(0.0005, 0.002))]
    steps.append((False, 0.0))
    return steps
