"""The pre-commit hooks run what `make lint` runs, so a commit meets the same checks as CI."""

from __future__ import annotations

import re
import shlex

import yaml

from tests.stack_files import ROOT


def make_recipe(target: str) -> list[str]:
    """The commands of a Makefile target, `$(UV)` spelled `uv`."""
    makefile = (ROOT / "Makefile").read_text()
    body = re.search(rf"^{target}:.*\n((?:\t.*\n)+)", makefile, flags=re.MULTILINE)
    assert body, f"no {target} target"
    return [line.strip().replace("$(UV)", "uv") for line in body.group(1).splitlines()]


def hooks() -> list[dict[str, object]]:
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    return [hook for repo in config["repos"] for hook in repo["hooks"]]


def runs(hook: dict[str, object], command: str) -> bool:
    """The hook runs `command`, or its program and options on the files pre-commit passes."""
    entry = str(hook["entry"])
    if entry == command:
        return True
    words = shlex.split(command)
    while words and (words[-1] == "." or any(ROOT.glob(words[-1]))):  # pre-commit passes files
        words.pop()
    return hook.get("pass_filenames", True) is not False and shlex.split(entry) == words


def test_every_lint_command_has_a_pre_commit_hook() -> None:
    commands = [*make_recipe("lint"), "make typecheck"]
    assert any("mypy" in c for c in make_recipe("typecheck"))
    missing = [c for c in commands if not any(runs(h, c) for h in hooks())]
    assert not missing, f".pre-commit-config.yaml lacks hooks for: {missing}"


def test_every_pre_commit_hook_is_a_lint_command() -> None:
    commands = [*make_recipe("lint"), "make typecheck", "make test-fast"]  # and the fast tests
    extra = [h["id"] for h in hooks() if not any(runs(h, c) for c in commands)]
    assert not extra, f"hooks that make lint does not run: {extra}"
