"""The README stays true to the code: every configuration key, every runtime variable, every
make target, stack output and repository path it names exists, and what the code reads is
documented.

The sources of truth are the code itself: the configuration schema (components/config/, from
which the README's key table is generated), the Makefile's targets and `__main__.py`'s exports.
(The runtime's variables are documented in docs/runtime-variables.md, generated from their
declarations; tests/runtime/test_settings.py keeps it current.)
"""

from __future__ import annotations

import re
from pathlib import Path

from components.config.docs import with_table

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
#: Files the README tells the reader to create, so they are not in the repository.
CREATED_BY_THE_READER = {"Pulumi.staging.yaml", "preview-trust.json"}
#: LibreChat's own files, named in the README but not part of this repository.
LIBRECHAT_FILES = {"librechat.yaml"}


def documented(name: str) -> bool:
    return f"`{name}`" in README


def test_the_configuration_table_is_the_one_the_schema_generates() -> None:
    assert with_table(README) == README, "README.md's config table is stale: run make docs"


def test_make_targets_in_the_readme_exist() -> None:
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][a-z0-9-]*):", makefile, flags=re.MULTILINE))
    used = set(re.findall(r"\bmake ([a-z][a-z0-9-]*)", README))
    assert {"test", "local"} <= used, "the two quick-start commands are make test / make local"
    assert used <= targets, f"README.md names make targets that do not exist: {used - targets}"


def test_the_quick_start_url_is_the_one_make_local_prints() -> None:
    url = re.search(r"curl -N (http://127\.0\.0\.1:\d+/\S+)", README)
    assert url, "the quick start must show the curl -N command"
    emulator_source = "".join(p.read_text() for p in (ROOT / "emulator").glob("*.py"))
    path = "/" + url.group(1).split("/", 3)[3]
    assert path in emulator_source, f"make local does not serve {path}"
    assert "--port" in emulator_source and "default=8080" in emulator_source


def test_stack_outputs_in_the_readme_exist() -> None:
    program = (ROOT / "__main__.py").read_text()
    exported = set(re.findall(r"pulumi\.export\(\"([a-z_]+)\"", program))
    used = set(re.findall(r"pulumi stack output ([a-z_]+)", README))
    listed = re.search(r"pulumi stack output\s+# (.+)", README)
    assert listed, "the deploy section lists the outputs"
    used |= {o.strip() for o in listed.group(1).split(",")}
    assert used <= exported, (
        f"README.md names outputs the program does not export: {used - exported}"
    )


def test_repository_paths_in_the_readme_exist() -> None:
    paths = set(
        re.findall(
            r"`((?:\.github|\.ci|ci|runtime|components|emulator|bench|tests)/[^`<> ]*)`", README
        )
    )
    paths |= set(re.findall(r"`([\w.-]+\.(?:py|yml|yaml|txt|toml|lock))`", README))
    paths -= CREATED_BY_THE_READER | LIBRECHAT_FILES
    assert paths, "no path found: has the README's style changed?"
    missing = sorted(p for p in paths if not (ROOT / p.rstrip("/")).exists() and "*" not in p)
    assert not missing, f"README.md names paths that do not exist: {missing}"


def test_the_stacks_table_lists_every_stack_file() -> None:
    for stack_file in ROOT.glob("Pulumi.*.yaml"):
        assert f"`{stack_file.name}`" in README, f"{stack_file.name} is not in the stacks table"
