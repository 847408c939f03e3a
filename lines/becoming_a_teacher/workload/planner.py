"""When each event of a workload falls: drawn a day at a time, the same for the same seed."""

from __future__ import annotations

import calendar
import random
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from itertools import accumulate
from typing import Any, NamedTuple

from lines.becoming_a_teacher.workload.spec import MONTHS, Seeded, Workload

MINUTES = 24 * 60


class Planned(NamedTuple):
    """One event due at `at`; `seq`, unique, orders events of one moment as they were drawn."""

    at: datetime
    seq: int
    kind: str
    # what a follow-up acts on (an application's id); rate-drawn events choose on firing
    target: Any = None


@dataclass(frozen=True)
class DailyShape:
    """One kind's rate: events a day by month and weekday, and the minute of day they fall."""

    per_day: tuple[tuple[float, ...], ...]  # [month of year 1-12][weekday]
    minutes: tuple[float, ...]  # cumulative weights of the day's 1,440 minutes


def daily_shape(workload: Workload, kind: str, volume: float, year: int) -> DailyShape:
    months = workload.shape(kind, "months")
    weekdays = workload.shape(kind, "weekdays")
    hours = workload.shape(kind, "hours")
    month_total, week_total = sum(months), sum(weekdays)
    per_day = [tuple(0.0 for _ in range(7))]
    for number in range(1, 13):
        share = months[MONTHS.index(calendar.month_abbr[number].lower())] / month_total
        days = calendar.monthrange(year, number)[1]
        # a weekday's weight against the week's mean keeps the month's total
        per_day.append(tuple(volume * share / days * w * 7 / week_total for w in weekdays))
    minutes = tuple(accumulate(hours[minute // 60] for minute in range(MINUTES)))
    return DailyShape(tuple(per_day), minutes)


def plan(
    workload: Workload,
    seeded: dict[Seeded, int],
    kinds: list[str],
    rng: random.Random,
    start: datetime,
    end: datetime,
) -> list[Planned]:
    """Every rate-drawn event in [start, end), sorted: each day's count rounded at random."""
    shapes = {
        kind: daily_shape(workload, kind, workload.volume(kind, seeded), start.year)
        for kind in kinds
    }
    planned: list[Planned] = []
    day = datetime.combine(start.date(), time(), tzinfo=start.tzinfo or UTC)
    while day < end:
        for kind in kinds:
            expected = shapes[kind].per_day[day.month][day.weekday()]
            count = int(expected) + (rng.random() < expected % 1)
            if not count:
                continue
            drawn = rng.choices(range(MINUTES), cum_weights=shapes[kind].minutes, k=count)
            for minute in drawn:
                at = day + timedelta(minutes=minute)
                if start <= at < end:
                    planned.append(Planned(at, len(planned), kind))
        day += timedelta(days=1)
    planned.sort()
    return planned
