"""bench/cost_modes.py: the arithmetic behind docs/compute-modes.md's cost table, and the table
and figures on that page and in docs/decisions.md are the ones the script prints."""

from __future__ import annotations

import pytest

from bench import cost_modes
from bench.cost_modes import (
    Load,
    managed_fleet,
    managed_monthly,
    provisioned_monthly,
    snapstart_monthly,
    standard_monthly,
)
from ops.prune_versions import DEFAULT_KEEP
from tests.test_readme import ROOT

PAGE = (ROOT / "docs" / "compute-modes.md").read_text()
DECISIONS = (ROOT / "docs" / "decisions.md").read_text()
MONTH_SECONDS = 730 * 3600

QUIET = Load("quiet", answers_per_month=1_000, answer_seconds=10, peak_streams=1,
             other_requests_per_month=0)  # fmt: skip


def test_standard_bills_two_environments_for_every_answer_second():
    # 1,000 answers x 2 environments x 10 s x 2 GB at the arm64 rate, plus 2,000 requests.
    expected = 1_000 * 2 * 10 * 2 * 0.0000133334 + 2_000 * 0.20 / 1e6
    assert standard_monthly(QUIET) == pytest.approx(expected)


def test_managed_never_runs_fewer_than_three_instances_and_pays_the_fee():
    instance, count, fleet = managed_fleet(QUIET)
    assert (instance, count) == ("c7g.large", 3)
    assert fleet == pytest.approx(3 * 0.0725 * 1.15 * 730)
    assert managed_monthly(QUIET) == pytest.approx(fleet + 1_000 * 0.20 / 1e6)


def test_managed_grows_with_the_peak_not_with_the_answers():
    busy = Load("busy", 1_000, 10, peak_streams=320, other_requests_per_month=0)
    # 10 environments of 1 vCPU / 2 GiB: 3 fit a c7g.xlarge after Lambda's 1 vCPU / 1 GiB.
    assert managed_fleet(busy)[:2] == ("c7g.xlarge", 4)
    longer = Load("longer", 1_000, 100, peak_streams=320, other_requests_per_month=0)
    assert managed_monthly(longer) == managed_monthly(busy)
    assert standard_monthly(longer) > standard_monthly(busy)


def test_snapstart_bills_x86_duration_the_kept_versions_cache_and_a_restore_per_5_answers():
    # 3 versions x 2 GB x a month of cache, and 1,000 / 5 restores of 2 GB.
    cache = DEFAULT_KEEP * 2 * MONTH_SECONDS * 0.0000015046
    restores = 1_000 / 5 * 2 * 0.0001398
    assert DEFAULT_KEEP == 3
    x86 = 1_000 * 2 * 10 * 2 * 0.0000166667 + 2_000 * 0.20 / 1e6  # SnapStart needs x86_64
    assert snapstart_monthly(QUIET) == pytest.approx(x86 + cache + restores)
    assert cache == pytest.approx(23.72, abs=0.01)  # the figure docs/compute-modes.md states


def test_provisioned_keeps_two_environments_per_peak_stream_all_month():
    # 2 environments x 2 GB all month, 1,000 x 2 x 10 s x 2 GB at the discounted rate, requests.
    expected = (
        2 * 2 * MONTH_SECONDS * 0.0000033334
        + 1_000 * 2 * 10 * 2 * 0.0000077778
        + 2_000 * 0.20 / 1e6
    )
    assert provisioned_monthly(QUIET) == pytest.approx(expected)


def test_every_price_names_its_source():
    for key, price in cost_modes.PRICES.items():
        assert price.source.startswith("https://aws.amazon.com/"), key
    assert set(cost_modes.INSTANCE_SIZES) <= set(cost_modes.PRICES)


def test_the_page_shows_the_table_the_script_prints():
    assert cost_modes.table() in PAGE


def test_the_page_states_the_break_even_the_script_prints():
    assert cost_modes.breakeven() in PAGE.replace("\n", " ")


def test_the_page_and_the_decision_state_the_snapstart_figures_the_script_prints():
    assert cost_modes.snapstart() in PAGE.replace("\n", " ")
    assert cost_modes.snapstart() in DECISIONS.replace("\n", " ")
