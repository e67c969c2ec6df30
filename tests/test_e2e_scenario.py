"""The end-to-end suite's rule for "follow-ups both ways": a follow-up must both reverse the
previous turn's environments and repeat them (e2e/scenario.py)."""

from __future__ import annotations

import pytest

from e2e.scenario import Journey


@pytest.mark.parametrize(
    ("directions", "expected"),
    [
        ([(1, 2), (2, 1), (2, 1)], True),  # reversed, then repeated
        ([(1, 2), (1, 2), (2, 1)], True),  # repeated, then reversed
        ([(1, 2), (2, 1)], False),  # never repeated
        ([(2, 1), (2, 1), (2, 1)], False),  # never reversed (what one run saw)
        ([(1, 2), (None, 1), (2, 1)], False),  # an unknown environment proves nothing
        ([(1, 1), (1, 1), (1, 1)], False),  # one environment: no direction at all
    ],
)
def test_both_ways_needs_a_reversed_and_a_repeated_follow_up(directions, expected):
    assert Journey._reversed_and_repeated(directions) is expected
