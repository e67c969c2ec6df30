"""The end-to-end suite's rule for "follow-ups both ways" (e2e/scenario.py): in one
conversation an environment that held a turn's POST serves a later turn's GET, and one that
served a GET holds a later POST."""

from __future__ import annotations

import pytest

from e2e.scenario import Journey


@pytest.mark.parametrize(
    ("directions", "expected"),
    [
        ([(1, 2), (2, 1)], True),  # a straight reversal swaps both
        ([(1, 3), (2, 1), (2, 3), (3, 1)], True),  # 1 held then read; 3 read then held
        ([(2, 1), (2, 1), (2, 1)], False),  # the same way every time
        ([(1, 2), (3, 1)], False),  # 1 held then read, but no reader ever held
        ([(1, 2), (None, 1), (2, None)], False),  # an unknown environment proves nothing
        ([(1, 1), (1, 1)], False),  # one environment: no direction at all
    ],
)
def test_both_ways_needs_each_role_swap_in_one_conversation(directions, expected):
    assert Journey._roles_swapped(directions) is expected
