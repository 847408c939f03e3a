"""The story's variables: what its requests saved, and the line's time as of the last entry."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import httpx

from serviceline.scenarios.errors import StepError
from serviceline.scenarios.spec import lookup, substitute


class Variables:
    """The names a step's `${...}` may use: what earlier requests saved, and now and today."""

    def __init__(self) -> None:
        self.saved: dict[str, Any] = {}
        self.built_ins: dict[str, Any] = {}

    def fill(self, value: Any) -> Any:
        """`value` with the variables saved so far filled in."""
        try:
            return substitute(value, {**self.saved, **self.built_ins})
        except KeyError as error:
            raise StepError(
                f"${{{error.args[0]}}} has no value: the step that saves it did not succeed"
            ) from error

    def save(self, wanted: Mapping[str, str], answer: httpx.Response) -> None:
        """Each wanted name, from where in the answer it says (variables filled in there too)."""
        for name, where in wanted.items():
            try:
                self.saved[name] = lookup(answer.json(), self.fill(where))
            except (LookupError, ValueError) as error:
                raise StepError(f"save {name}: {error}") from error

    def clock(self, at: datetime) -> None:
        """`${now}` and `${today}`: the line's time when the last entry was taken."""
        self.built_ins = {"now": at.isoformat(), "today": at.date().isoformat()}
