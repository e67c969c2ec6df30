"""`make check STACK=x` (ops/check.py): a stack file checked offline, and a correct new stack
file keeping every test that lists the stacks green."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ops.check import check, main, provider_keys
from tests.stack_files import ROOT, STACKS


def write_stack(root: Path, stack: str, config: dict[str, object]) -> None:
    (root / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump({"config": config}))


def new_stack_config(stack: str) -> dict[str, object]:
    """A copy of dev with its own name and domain: what "Creating a new stack" tells you to do."""
    config = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())["config"]
    config["librechat-lambda:name"] = f"librechat-lambda-{stack}"
    zone = config["librechat-lambda:domain"]["name"].split(".", 1)[1]
    config["librechat-lambda:domain"] = {"name": f"{stack}.{zone}"}  # beside dev, in its zone
    return config


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """The stack files and workflows the check reads, in a directory of their own."""
    for path in ROOT.glob("Pulumi.*.yaml"):
        shutil.copy(path, tmp_path)
    shutil.copytree(ROOT / ".github", tmp_path / ".github")
    return tmp_path


@pytest.mark.parametrize("stack", STACKS)
def test_the_committed_stacks_are_valid(stack: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--stack", stack]) == 0
    out = capsys.readouterr().out
    assert f"Pulumi.{stack}.yaml is valid." in out
    assert "PROBLEM" not in out


def test_keys_in_a_wrong_namespace_are_named_with_the_key_meant(repo: Path) -> None:
    config = new_stack_config("staging")
    config["librechat_lambda:tags"] = config.pop("librechat-lambda:tags")
    config["aws:regin"] = config.pop("aws:region")
    config["aws:skipCredentialsValidation"] = True  # a real provider key passes
    write_stack(repo, "staging", config)
    problems = check("staging", repo).problems
    assert "aws:regin: not a key of the aws provider; did you mean aws:region?" in problems
    assert (
        "librechat_lambda:tags: namespace 'librechat_lambda' is read by no part of this "
        "program, so Pulumi would ignore this value; did you mean librechat-lambda:tags?"
    ) in problems
    assert any(p.startswith("aws:region is not set") for p in problems)
    assert len(problems) == 3, problems


def test_schema_problems_are_listed_and_the_verdict_is_plain(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = new_stack_config("staging")
    config["librechat-lambda:function"] = {"memoryMb": 64}
    config["librechat-lambda:funtion"] = {"memoryMb": 2048}
    write_stack(repo, "staging", config)
    assert main(["--stack", "staging"], repo) == 1
    out = capsys.readouterr().out
    assert "function.memoryMb" in out
    assert "did you mean function?" in out
    assert out.rstrip().endswith("Pulumi.staging.yaml is NOT valid: 2 problems")


def test_a_name_another_stack_uses_is_a_problem(repo: Path) -> None:
    config = new_stack_config("staging")
    config["librechat-lambda:name"] = "librechat-lambda-dev"
    write_stack(repo, "staging", config)
    (problem,) = check("staging", repo).problems
    assert "'librechat-lambda-dev' is also the name of stack dev" in problem


def test_a_valid_new_stack_says_what_a_person_must_add_for_ci(repo: Path) -> None:
    write_stack(repo, "staging", new_stack_config("staging"))
    report = check("staging", repo)
    assert report.problems == []
    todos = "\n".join(report.todos)
    assert "AWS_PREVIEW_ROLE_ARN_STAGING" in todos
    assert "librechat-lambda-staging-deploy" in todos
    assert "add a `staging:` job to .github/workflows/deploy.yml" in todos
    assert "deploy.yml" not in "\n".join(check("dev", repo).todos), "dev already deploys"


def test_the_aws_provider_keys_come_from_the_installed_provider() -> None:
    keys = provider_keys("pulumi_aws")
    assert {"region", "profile", "assumeRoles", "defaultTags", "skipCredentialsValidation"} <= keys
    assert "regin" not in keys


@pytest.mark.slow
@pytest.mark.timeout(600)  # a copy of the repository and two pytest runs, on a shared machine
def test_a_new_stack_file_keeps_every_test_that_lists_the_stacks_green(tmp_path: Path) -> None:
    """A copy of the repository with one more stack file: the tests that list the stacks (the
    workflows, the ci/ program, the docs, every stack through the program) still pass."""
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for name in files:
        source = ROOT / name
        if source.is_file():
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, tmp_path / name)
    write_stack(tmp_path, "newcomer", new_stack_config("newcomer"))
    checked = subprocess.run(
        [sys.executable, "-m", "ops.check", "--stack", "newcomer"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout
    assert "Pulumi.newcomer.yaml is valid." in checked.stdout

    def pytest(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=False,
        )

    # Whole: the tests that list the stacks. Per stack: only the new stack's cases (the
    # committed stacks' own cases are the rest of the suite's business).
    listing = pytest(
        "tests/test_workflows.py::test_preview_diffs_every_stack_on_pull_requests_as_a_comment",
        "tests/test_workflows.py::test_deploy_runs_pulumi_up_per_stack_on_main_dev_before_prod",
        "tests/ci/test_ci_program.py::test_the_ci_stack_serves_exactly_the_main_programs_stacks",
        "tests/ci/test_ci_program.py::test_admin_creates_githubs_provider_and_two_roles_per_stack",
        "tests/test_readme.py::test_stacks_named_in_the_stacks_table_exist",
        "tests/test_readme.py::test_every_link_between_the_pages_resolves",
    )
    assert listing.returncode == 0, listing.stdout[-3000:]
    assert "6 passed" in listing.stdout
    per_stack = pytest("tests/test_stack_security.py", "tests/test_contract.py", "-k", "newcomer")
    assert per_stack.returncode == 0, per_stack.stdout[-3000:]
    assert " passed" in per_stack.stdout and "deselected" in per_stack.stdout
