"""The two lanes: make test-fast leaves out what tests/conftest.py marks slow or program, and
refuses a test that starts a process or runs a whole program without saying so."""

from __future__ import annotations

import runpy
import subprocess
import sys
from pathlib import Path

import pytest


def write_main(folder: Path) -> Path:
    main = folder / "__main__.py"
    main.write_text("RAN = True\n")
    return main


def test_an_unmarked_test_may_not_run_a_whole_program(tmp_path: Path):
    with pytest.raises(pytest.fail.Exception, match=r"runs a whole program .* not marked program"):
        runpy.run_path(str(write_main(tmp_path)), run_name="__main__")


@pytest.mark.program
def test_a_test_marked_program_runs_it(tmp_path: Path):
    assert runpy.run_path(str(write_main(tmp_path)), run_name="__main__")["RAN"] is True


def test_a_module_that_is_not_a_program_runs_in_the_fast_lane(tmp_path: Path):
    module = tmp_path / "helper.py"
    module.write_text("VALUE = 3\n")
    assert runpy.run_path(str(module))["VALUE"] == 3


def test_an_unmarked_test_may_not_start_a_process():
    with pytest.raises(pytest.fail.Exception, match="starts a process or moto but is not marked"):
        subprocess.run([sys.executable, "-c", "pass"], check=True)


def test_the_fast_lane_leaves_out_both_marks():
    makefile = (Path(__file__).parent.parent / "Makefile").read_text()
    assert '-m "not slow and not program"' in makefile
