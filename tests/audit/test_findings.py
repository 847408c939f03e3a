"""Values compare as their normal spellings do, however quickly that is found."""

import itertools
from typing import Any

from serviceline.audit.findings import alike, normal

VALUES: list[Any] = [
    None,
    "",
    "11",
    11,
    11.0,
    11.5,
    True,
    1,
    "true",
    "2026-10-01T09:00:00+01:00",
    "2026-10-01T08:00:00+00:00",
    [True],
    [1],
    ["1"],
    {"a": 1},
    {"a": "1"},
]


def test_alike_is_whether_the_normal_spellings_are_equal() -> None:
    for one, other in itertools.product(VALUES, repeat=2):
        assert alike(one, other) == (normal(one) == normal(other)), (one, other)
