"""`make bench`'s report: figures beside their targets, what a miss means, STRICT=1 fails."""

from __future__ import annotations

import pytest

from bench.bench_runtime import TARGETS, report

MET = {name: (target * 2 if "MB/s" in name else target / 2) for name, target in TARGETS.items()}


def test_every_target_met_passes_even_when_strict(capsys: pytest.CaptureFixture[str]) -> None:
    assert report(dict(MET), strict=True) == 0
    out = capsys.readouterr().out
    assert f"every target met ({len(TARGETS)})" in out
    assert "target: the performance budget (docs/decisions.md)" in out
    verdicts = [line.split()[-1] for line in out.splitlines() if line.endswith((" ok", "MISSED"))]
    assert verdicts == ["ok"] * len(TARGETS)


def test_a_miss_is_named_and_fails_only_when_strict(capsys: pytest.CaptureFixture[str]) -> None:
    figures = {**MET, "throughput (MB/s)": 10.0, "turnaround p99 (ms)": 9.0}
    assert report(figures) == 0
    assert report(figures, strict=True) == 1
    out = capsys.readouterr().out
    assert "2 of 6 targets missed: turnaround p99 (ms), throughput (MB/s)" in out
    assert "MISSED: outside it on this run" in out
