"""The GitHub Actions workflows keep their promises: tests on every change, a preview per stack
on pull requests, serialized deployments on main, pinned actions and least privilege, and no
credential shared between a pull request's preview and a deployment.

The workflows cannot run here, so these tests read them as data and check the stacks they name
against the repository's `Pulumi.<stack>.yaml` files. `make lint` validates them against
GitHub's schema and audits them with zizmor; the guard here proves that audit catches a
regression.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
VERSION_COMMENT = re.compile(r"@[0-9a-f]{40} # v\d+(\.\d+)*\s*$")
OIDC_ACTION = "aws-actions/configure-aws-credentials"
PULUMI_ACTION = "pulumi/actions"
PULUMI_AUTH_ACTION = "pulumi/auth-actions"
SECRET_REFERENCE = re.compile(r"\bsecrets\.([A-Za-z_][A-Za-z0-9_]*)")
PREVIEW_WORKFLOWS = ("preview.yml",)
DEPLOY_WORKFLOWS = ("deploy.yml", "pulumi-up.yml")


def load(name: str) -> dict[str, Any]:
    workflow = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the key `on` as the boolean True.
    workflow["on"] = workflow.pop(True, workflow.get("on"))
    return workflow


def all_workflows() -> list[str]:
    return sorted(p.name for p in WORKFLOWS.glob("*.yml"))


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return job.get("steps", [])


def step_using(job: dict[str, Any], action: str) -> dict[str, Any]:
    found = [s for s in steps(job) if s.get("uses", "").split("@")[0] == action]
    assert len(found) == 1, f"expected one {action} step, found {len(found)}"
    return found[0]


def named_step(job: dict[str, Any], name: str) -> dict[str, Any]:
    found = [s for s in steps(job) if s.get("name") == name]
    assert len(found) == 1, f"expected one step named {name!r}"
    return found[0]


def run_step(step: dict[str, Any], env: dict[str, str]) -> dict[str, str]:
    """Run a `run:` step with bash in the repository, as a runner would; its $GITHUB_OUTPUT."""
    with tempfile.TemporaryDirectory() as tmp:
        output = Path(tmp) / "output"
        output.touch()
        result = subprocess.run(
            ["bash", "-e", "-c", step["run"]],
            cwd=ROOT,
            env={"PATH": os.environ["PATH"], "GITHUB_OUTPUT": str(output), **env},
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return dict(line.split("=", 1) for line in output.read_text().splitlines())


def test_the_preview_wiring_picks_each_stacks_own_role_and_region() -> None:
    """A stack's own variable wins (AWS_PREVIEW_ROLE_ARN_<STACK>), the repository's serves the rest."""
    wiring = named_step(load("preview.yml")["jobs"]["preview"], "Check the repository wiring")
    variables = {
        "AWS_PREVIEW_ROLE_ARN": "arn:aws:iam::1:role/any",
        "AWS_PREVIEW_ROLE_ARN_NEW_ONE": "arn:aws:iam::1:role/new-one",
        "AWS_REGION": "eu-west-1",
        "AWS_REGION_PROD": "us-east-1",
    }
    env = {"VARIABLES": json.dumps(variables), "ORGANIZATION": "org", "SCOPE": "team:preview"}
    new_one = run_step(wiring, {**env, "STACK": "new-one"})
    assert new_one == {"role": "arn:aws:iam::1:role/new-one", "region": "eu-west-1"}
    prod = run_step(wiring, {**env, "STACK": "prod"})
    assert prod == {"role": "arn:aws:iam::1:role/any", "region": "us-east-1"}


def stacks_in_repository() -> set[str]:
    return {p.name.split(".")[1] for p in ROOT.glob("Pulumi.*.yaml")}


def tool(name: str) -> str:
    beside_python = Path(sys.executable).parent / name
    found = str(beside_python) if beside_python.exists() else shutil.which(name)
    assert found, f"{name} not found: it comes from the dev dependency group (uv sync)"
    return found


def test_the_four_workflows_exist() -> None:
    assert all_workflows() == ["ci.yml", "deploy.yml", "preview.yml", "pulumi-up.yml"]


@pytest.mark.parametrize("name", all_workflows())
def test_every_action_is_pinned_by_commit_sha_with_its_version(name: str) -> None:
    text = (WORKFLOWS / name).read_text()
    for line in text.splitlines():
        match = re.match(r"\s*(?:- )?uses: (\S+)", line)
        if not match or match.group(1).startswith("./"):
            continue
        assert PINNED.match(match.group(1)), f"{name}: not pinned by full SHA: {line.strip()}"
        assert VERSION_COMMENT.search(line), f"{name}: say which version the SHA is: {line}"


@pytest.mark.parametrize("name", all_workflows())
def test_permissions_are_empty_by_default_and_granted_per_job(name: str) -> None:
    workflow = load(name)
    assert workflow["permissions"] == {}, f"{name}: top-level permissions must be {{}}"
    for job_name, job in workflow["jobs"].items():
        granted = job.get("permissions")
        assert granted is not None, f"{name}:{job_name} must declare its permissions"
        assert set(granted.items()) <= {
            ("contents", "read"),
            ("id-token", "write"),
            ("pull-requests", "write"),
        }, f"{name}:{job_name} asks for more than it needs: {granted}"
        uses_oidc = any(s.get("uses", "").startswith(OIDC_ACTION) for s in steps(job))
        calls_workflow = "uses" in job
        if granted.get("id-token") == "write":
            assert uses_oidc or calls_workflow, f"{name}:{job_name}: id-token without OIDC"
        if granted.get("pull-requests") == "write":
            assert name == "preview.yml", f"{name}:{job_name}: only the preview comments"


@pytest.mark.parametrize("name", all_workflows())
def test_checkouts_do_not_persist_the_token(name: str) -> None:
    for job in load(name)["jobs"].values():
        for step in steps(job):
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False


def test_ci_runs_the_readme_test_command_on_every_pull_request_and_push() -> None:
    workflow = load("ci.yml")
    assert "pull_request" in workflow["on"]
    assert "push" in workflow["on"]
    runs = [s["run"] for job in workflow["jobs"].values() for s in steps(job) if "run" in s]
    assert runs == ["bash .ci/run"]
    ci_run = (ROOT / ".ci" / "run").read_text().strip().splitlines()
    assert ci_run[-1] == "exec make test", ".ci/run must run exactly the README's `make test`"
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^test: .*\blint\b.*\bpytest\b", makefile, flags=re.MULTILINE)
    lint = makefile.split("\nlint:", 1)[1].split("\n\n", 1)[0]
    for linter in ("ruff check", "ruff format --check", "hadolint", "check-jsonschema", "zizmor"):
        assert linter in lint, f"make lint must run {linter}"


def test_preview_diffs_every_stack_on_pull_requests_as_a_comment() -> None:
    workflow = load("preview.yml")
    assert list(workflow["on"]) == ["pull_request"]
    job = workflow["jobs"]["preview"]
    listed = run_step(named_step(workflow["jobs"]["stacks"], "List Pulumi.<stack>.yaml"), {})
    assert set(json.loads(listed["stacks"])) == stacks_in_repository(), "preview every stack"
    assert job["needs"] == "stacks"
    assert job["strategy"]["matrix"] == {"stack": "${{ fromJSON(needs.stacks.outputs.stacks) }}"}
    pulumi = step_using(job, PULUMI_ACTION)["with"]
    assert pulumi["command"] == "preview"
    assert pulumi["diff"] is True
    assert pulumi["comment-on-pr"] is True
    assert pulumi["stack-name"] == "${{ vars.PULUMI_ORGANIZATION }}/${{ matrix.stack }}"
    credentials = step_using(job, OIDC_ACTION)["with"]
    assert credentials["role-to-assume"] == "${{ steps.wiring.outputs.role }}"
    assert credentials["aws-region"] == "${{ steps.wiring.outputs.region }}"
    assert "aws-access-key-id" not in credentials, "OIDC only, no long-lived keys"
    assert not [s for s in steps(job) if "docker" in s.get("uses", "")], "preview needs no Docker"


def secrets_referenced(texts: list[str]) -> set[str]:
    """Every `secrets.NAME` the workflow texts mention (GITHUB_TOKEN included)."""
    return {name for text in texts for name in SECRET_REFERENCE.findall(text)}


def workflow_texts(names: tuple[str, ...]) -> list[str]:
    return [(WORKFLOWS / name).read_text() for name in names]


def test_previews_and_deployments_reference_disjoint_secrets() -> None:
    """The pull request's preview uses no secret at all; deployments use their own."""
    preview = secrets_referenced(workflow_texts(PREVIEW_WORKFLOWS))
    deploy = secrets_referenced(workflow_texts(DEPLOY_WORKFLOWS))
    assert preview == set(), f"the preview runs the pull request's code: no secrets ({preview})"
    assert deploy == {"PULUMI_DEPLOY_TOKEN"}
    assert not preview & deploy
    assert secrets_referenced(workflow_texts(("ci.yml",))) == set()
    workflows = set(PREVIEW_WORKFLOWS + DEPLOY_WORKFLOWS + ("ci.yml",))
    assert workflows == set(all_workflows()), "classify every workflow as preview or deploy"


def test_the_disjointness_check_catches_a_shared_secret() -> None:
    text = (WORKFLOWS / "preview.yml").read_text()
    leaked = (
        text + "        env:\n          PULUMI_ACCESS_TOKEN: ${{ secrets.PULUMI_DEPLOY_TOKEN }}\n"
    )
    assert secrets_referenced([leaked]) & secrets_referenced(workflow_texts(DEPLOY_WORKFLOWS))


def test_preview_gets_a_preview_scoped_pulumi_token_by_oidc() -> None:
    job = load("preview.yml")["jobs"]["preview"]
    auth = step_using(job, PULUMI_AUTH_ACTION)["with"]
    assert auth["organization"] == "${{ vars.PULUMI_ORGANIZATION }}"
    assert auth["scope"] == "${{ vars.PULUMI_PREVIEW_SCOPE }}"
    token_type = auth["requested-token-type"]
    assert token_type.startswith("urn:pulumi:token-type:access_token:")
    assert "organization" not in token_type, "an organization token may update every stack"
    assert {"team", "personal"} <= set(re.findall(r"'(\w+)'", token_type))
    check = steps(job)[0]
    assert "team:?* | user:?*)" in check["run"], "the wiring check refuses any other scope"
    order = [s.get("uses", "").split("@")[0] for s in steps(job)]
    assert order.index(PULUMI_AUTH_ACTION) < order.index(PULUMI_ACTION)
    assert "env" not in step_using(job, PULUMI_ACTION), "the token comes from the OIDC step"


def test_deployments_take_the_pulumi_token_from_the_stacks_environment() -> None:
    workflow = load("pulumi-up.yml")
    assert set(workflow["on"]["workflow_call"]["secrets"]) == {"PULUMI_DEPLOY_TOKEN"}
    job = workflow["jobs"]["up"]
    assert job["environment"] == "${{ inputs.stack }}"
    pulumi = step_using(job, PULUMI_ACTION)
    assert pulumi["env"] == {"PULUMI_ACCESS_TOKEN": "${{ secrets.PULUMI_DEPLOY_TOKEN }}"}
    for stack_job in load("deploy.yml")["jobs"].values():
        assert stack_job["secrets"] == {"PULUMI_DEPLOY_TOKEN": "${{ secrets.PULUMI_DEPLOY_TOKEN }}"}


def test_deploy_runs_pulumi_up_per_stack_on_main_dev_before_prod() -> None:
    workflow = load("deploy.yml")
    assert workflow["on"] == {"push": {"branches": ["main"]}}
    jobs = workflow["jobs"]
    # A stack deploys from main once a person gave it a GitHub environment and a job here
    # (`make check STACK=x` says what to add); until then it is previewed only.
    assert set(jobs) <= stacks_in_repository()
    assert jobs["prod"]["needs"] == "dev", "prod deploys only after dev succeeded"
    for stack, job in jobs.items():
        assert job["uses"] == "./.github/workflows/pulumi-up.yml"
        assert job["with"] == {"stack": stack}
        assert "inherit" not in str(job.get("secrets")), "pass secrets by name"


def test_each_deployment_is_serialized_behind_its_environment() -> None:
    workflow = load("pulumi-up.yml")
    assert list(workflow["on"]) == ["workflow_call"]
    job = workflow["jobs"]["up"]
    assert job["environment"] == "${{ inputs.stack }}"
    assert job["concurrency"] == {
        "group": "pulumi-up-${{ inputs.stack }}",
        "cancel-in-progress": False,
    }
    pulumi = step_using(job, PULUMI_ACTION)["with"]
    assert pulumi["command"] == "up"
    assert pulumi["stack-name"] == "${{ inputs.stack }}"
    step_using(job, "docker/setup-buildx-action")
    step_using(job, "docker/setup-qemu-action")  # arm64 stacks build on x86_64 runners
    order = [s.get("uses", "").split("@")[0] for s in steps(job)]
    assert order.index(OIDC_ACTION) < order.index(PULUMI_ACTION)


def run_zizmor(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("zizmor"), "--offline", "--min-severity", "medium", "--no-progress", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("name", "good", "bad", "audit"),
    [
        (
            "ci.yml",
            "        with:\n          persist-credentials: false\n",
            "",
            "artipacked",
        ),
        (
            "preview.yml",
            "pulumi/actions@8e5e406f4007fca908480587cb9893c07090f58d",
            "pulumi/actions@v7",
            "unpinned-uses",
        ),
    ],
)
def test_zizmor_would_catch_a_regression(
    tmp_path: Path, name: str, good: str, bad: str, audit: str
) -> None:
    """Guards the guard: the same zizmor run fails on a token kept by checkout or a tag pin."""
    text = (WORKFLOWS / name).read_text()
    assert good in text
    mutated = tmp_path / name
    mutated.write_text(text.replace(good, bad))
    result = run_zizmor(mutated)
    assert result.returncode != 0
    assert f"[{audit}]" in result.stdout


def test_every_pulumi_up_is_followed_by_the_smoke_test() -> None:
    job = load("pulumi-up.yml")["jobs"]["up"]
    names = [s.get("uses", "").split("@")[0] or s.get("run", "") for s in steps(job)]
    up = names.index(PULUMI_ACTION)
    assert any("make smoke" in n for n in names[up + 1 :]), "no smoke test after pulumi up"
    smoke = next(s for s in steps(job) if "make smoke" in s.get("run", ""))
    assert "${{" not in smoke["run"], "inputs reach the shell through env, never inline"
