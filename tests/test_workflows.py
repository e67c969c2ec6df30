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


@pytest.mark.slow  # runs the workflow's shell step
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


def test_the_five_workflows_exist() -> None:
    assert all_workflows() == [
        "base-image-bump.yml",
        "ci.yml",
        "deploy.yml",
        "preview.yml",
        "pulumi-up.yml",
    ]


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
        # Only the bump workflow pushes (its branch) and it holds no cloud credential.
        contents = "write" if name == "base-image-bump.yml" else "read"
        assert set(granted.items()) <= {
            ("contents", contents),
            ("id-token", "write"),
            ("pull-requests", "write"),
        }, f"{name}:{job_name} asks for more than it needs: {granted}"
        if contents == "write":
            assert "id-token" not in granted, f"{name}:{job_name}: pushes, so no cloud tokens"
        uses_oidc = any(s.get("uses", "").startswith(OIDC_ACTION) for s in steps(job))
        calls_workflow = "uses" in job
        if granted.get("id-token") == "write":
            assert uses_oidc or calls_workflow, f"{name}:{job_name}: id-token without OIDC"
        if granted.get("pull-requests") == "write":
            assert name in ("preview.yml", "base-image-bump.yml"), (
                f"{name}:{job_name}: only the preview comments and the bump opens its pull request"
            )


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


@pytest.mark.slow  # runs the workflow's shell step
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


def test_no_workflow_references_a_secret() -> None:
    """The pull request's preview uses no secret at all, and neither do deployments: both get
    AWS and Pulumi Cloud credentials by OIDC."""
    preview = secrets_referenced(workflow_texts(PREVIEW_WORKFLOWS))
    deploy = secrets_referenced(workflow_texts(DEPLOY_WORKFLOWS))
    assert preview == set(), f"the preview runs the pull request's code: no secrets ({preview})"
    assert deploy == set(), f"deployments get their tokens by OIDC ({deploy})"
    assert secrets_referenced(workflow_texts(("ci.yml", "base-image-bump.yml"))) == set()
    workflows = set(PREVIEW_WORKFLOWS + DEPLOY_WORKFLOWS + ("ci.yml", "base-image-bump.yml"))
    assert workflows == set(all_workflows()), "classify every workflow as preview or deploy"


def test_the_secret_check_catches_a_secret() -> None:
    text = (WORKFLOWS / "preview.yml").read_text()
    leaked = (
        text + "        env:\n          PULUMI_ACCESS_TOKEN: ${{ secrets.PULUMI_DEPLOY_TOKEN }}\n"
    )
    assert secrets_referenced([leaked]) == {"PULUMI_DEPLOY_TOKEN"}


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
    env = step_using(job, PULUMI_ACTION).get("env", {})
    assert "PULUMI_ACCESS_TOKEN" not in env, "the token comes from the OIDC step"


def test_deployments_get_a_deploy_team_pulumi_token_by_oidc() -> None:
    """No static Pulumi token: the deploy job exchanges its OIDC token (the pinned `sub`) for a
    token of the stack's deploy team, set per GitHub environment."""
    workflow = load("pulumi-up.yml")
    assert "secrets" not in workflow["on"]["workflow_call"]
    job = workflow["jobs"]["up"]
    assert job["environment"] == "${{ inputs.stack }}"
    auth = step_using(job, PULUMI_AUTH_ACTION)["with"]
    assert auth["scope"] == "${{ vars.PULUMI_DEPLOY_SCOPE }}"
    assert auth["requested-token-type"] == "urn:pulumi:token-type:access_token:team"
    assert "team:?*)" in steps(job)[0]["run"], "the wiring check refuses any other scope"
    order = [s.get("uses", "").split("@")[0] for s in steps(job)]
    assert order.index(PULUMI_AUTH_ACTION) < order.index(PULUMI_ACTION)
    assert "PULUMI_ACCESS_TOKEN" not in step_using(job, PULUMI_ACTION).get("env", {})
    for stack_job in load("deploy.yml")["jobs"].values():
        assert "secrets" not in stack_job


def test_the_deploy_job_logs_docker_in_to_ecr_before_pulumi_up() -> None:
    """The image resource gets no registry credential (components/image.py): Docker's own
    login, made by the job with the deploy role, pushes the image."""
    job = load("pulumi-up.yml")["jobs"]["up"]
    names = [s.get("name", "") for s in steps(job)]
    login = steps(job)[names.index("Docker login to ECR")]
    assert "aws ecr get-login-password" in login["run"]
    assert "--password-stdin" in login["run"]
    order = [s.get("uses", "").split("@")[0] for s in steps(job)]
    assert names.index("Docker login to ECR") < order.index(PULUMI_ACTION)


@pytest.mark.parametrize("name", ["preview.yml", "pulumi-up.yml"])
def test_tool_versions_are_exact_and_uv_syncs_the_lock_as_is(name: str) -> None:
    job = (
        next(iter(load(name)["jobs"].values()))
        if name != "preview.yml"
        else load(name)["jobs"]["preview"]
    )
    pulumi = step_using(job, PULUMI_ACTION)
    assert re.fullmatch(r"\d+\.\d+\.\d+", pulumi["with"]["pulumi-version"])
    assert pulumi["env"]["UV_LOCKED"] == "1"
    assert re.fullmatch(r"\d+\.\d+\.\d+", step_using(job, "astral-sh/setup-uv")["with"]["version"])


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
    assert pulumi["stack-name"] == "${{ vars.PULUMI_ORGANIZATION }}/${{ inputs.stack }}"
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


@pytest.mark.slow  # runs zizmor
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


@pytest.mark.slow  # runs the workflow's script
def test_the_bump_workflow_rewrites_a_moved_digest_and_leaves_tags_alone(tmp_path: Path) -> None:
    """Its resolve step, run under bash with a stand-in `docker` answering a new digest."""
    job = load("base-image-bump.yml")["jobs"]["bump"]
    assert load("base-image-bump.yml")["on"]["schedule"]
    script = next(s for s in steps(job) if s.get("id") == "resolve")["run"]
    old, new = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    repo = "ghcr.io/danny-avila/librechat-api"
    (tmp_path / "Pulumi.dev.yaml").write_text(f"config:\n  x:\n    baseImage: {repo}@{old} # v1\n")
    (tmp_path / "Pulumi.prod.yaml").write_text(f"config:\n  x:\n    baseImage: {repo}:v1\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(f"#!/bin/sh\necho '\"{new}\"'\n")
    (bin_dir / "docker").chmod(0o755)
    output = tmp_path / "output"
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "GITHUB_OUTPUT": str(output)}
    subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, check=True)
    assert (tmp_path / "Pulumi.dev.yaml").read_text().endswith(f"{repo}@{new} # v1\n")
    assert (tmp_path / "Pulumi.prod.yaml").read_text().endswith(f"{repo}:v1\n")
    assert output.read_text() == "changed=1\n"
