"""The simulated clock every schedule and timestamp in a service runs on."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from serviceline.runtime.settings import ClockMode, ServiceSettings


class ClockError(ValueError):
    pass


class SimulatedClock:
    """`manual` moves only when told; `realtime` runs at `speed` simulated seconds per second."""

    def __init__(
        self,
        mode: ClockMode,
        start: datetime,
        speed: float = 1.0,
        anchor: float | None = None,
    ) -> None:
        self.mode = mode
        self.speed = speed
        self._now = start.astimezone(UTC)
        self._anchor = time.time() if anchor is None else anchor

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> SimulatedClock:
        return cls(
            settings.clock_mode, settings.clock_start, settings.clock_speed, settings.clock_anchor
        )

    def now(self) -> datetime:
        if self.mode is ClockMode.REALTIME:
            elapsed = (time.time() - self._anchor) * self.speed
            return max(self._now, self._now + timedelta(seconds=elapsed))
        return self._now

    def set(self, moment: datetime) -> None:
        """Move a manual clock forward to `moment`; time never runs backwards."""
        if self.mode is ClockMode.REALTIME:
            raise ClockError("the clock runs in realtime mode; it cannot be set")
        moment = moment.astimezone(UTC)
        if moment < self._now:
            raise ClockError(f"cannot move the clock back from {self._now.isoformat()}")
        self._now = moment

    def resume_from(self, moment: datetime | None) -> None:
        """After a restart, carry on from the time last recorded."""
        if moment is not None and moment.astimezone(UTC) > self._now:
            self._now = moment.astimezone(UTC)
            self._anchor = time.time()


def parse_duration(text: str) -> timedelta:
    """`90s`, `10m`, `6h`, `2d`, `1w` or a combination such as `1d6h`."""
    units = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
    total = timedelta(0)
    number = ""
    for char in text.strip():
        if char.isdigit():
            number += char
        elif char in units and number:
            try:
                total += timedelta(**{units[char]: int(number)})
            except OverflowError as error:
                raise ClockError(f"duration {text!r}: too long for the clock") from error
            number = ""
        else:
            raise ClockError(f"duration {text!r}: use numbers with s, m, h, d or w, e.g. 1d6h")
    if number or total <= timedelta(0):
        raise ClockError(f"duration {text!r}: use numbers with s, m, h, d or w, e.g. 1d6h")
    return total
