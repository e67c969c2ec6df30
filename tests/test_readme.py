"""The README and the pages in docs/ stay true to the code: every link resolves, every
configuration key, runtime variable, make target, stack output and repository path they name
exists, the generated pages are what their generators write, and the README stays a landing
page.

The sources of truth are the code itself: the configuration schema (components/config/, from
which docs/configuration.md's key table is generated), the Makefile's targets and
`__main__.py`'s exports. (The runtime's variables are documented in docs/runtime-variables.md,
generated from their declarations; tests/runtime/test_settings.py keeps it current.)
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from components.config import docs
from components.config.docs import CONFIGURATION_PAGE, with_table

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
TEXT = {page: page.read_text() for page in PAGES}
ALL_TEXT = "\n".join(TEXT.values())
#: Files the pages tell the reader to create, so they are not in the repository.
CREATED_BY_THE_READER = {"Pulumi.staging.yaml", "preview-trust.json"}
#: LibreChat's own files, named in the pages but not part of this repository.
LIBRECHAT_FILES = {"librechat.yaml"}
LINK = re.compile(r"\]\(([^)\s]+)\)")


def anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#{1,6} (.+)$", markdown, flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_every_link_between_the_pages_resolves() -> None:
    broken = []
    for page, text in TEXT.items():
        for target in LINK.findall(text):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            if not linked.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and linked.suffix == ".md" and anchor not in anchors(linked.read_text()):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_every_page_in_docs_is_reachable_from_the_readme() -> None:
    linked = {(README.parent / t.partition("#")[0]).resolve() for t in LINK.findall(TEXT[README])}
    missing = [p.name for p in PAGES[1:] if p.resolve() not in linked]
    assert not missing, f"README.md links to no page {missing}"


def test_the_readme_is_a_landing_page() -> None:
    lines = TEXT[README].splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines: move the detail into docs/"
    first_screen = "\n".join(lines[:40])
    assert "make test" in first_screen and "make local" in first_screen
    assert "`make help`" in TEXT[README]


def test_the_configuration_table_is_the_one_the_schema_generates() -> None:
    page = CONFIGURATION_PAGE.read_text()
    assert with_table(page) == page, "docs/configuration.md's table is stale: run make docs"


def test_make_targets_named_exist() -> None:
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][a-z0-9-]*):", makefile, flags=re.MULTILINE))
    used = set(re.findall(r"\bmake ([a-z][a-z0-9-]*)", ALL_TEXT))
    assert {"test", "local", "check", "help"} <= used
    assert used <= targets, f"the pages name make targets that do not exist: {used - targets}"


def test_the_quick_start_url_is_the_one_make_local_prints() -> None:
    url = re.search(r"curl -N (http://127\.0\.0\.1:\d+/\S+)", TEXT[README])
    assert url, "the quick start must show the curl -N command"
    emulator_source = "".join(p.read_text() for p in (ROOT / "emulator").glob("*.py"))
    path = "/" + url.group(1).split("/", 3)[3]
    assert path in emulator_source, f"make local does not serve {path}"
    assert "--port" in emulator_source and "default=8080" in emulator_source


def test_stack_outputs_named_exist() -> None:
    program = (ROOT / "__main__.py").read_text()
    exported = set(re.findall(r"pulumi\.export\(\"([a-z_]+)\"", program))
    used = set(re.findall(r"pulumi stack output ([a-z_]+)", ALL_TEXT))
    listed = re.search(r"pulumi stack output\s+# (.+)", ALL_TEXT)
    assert listed, "the deploy page lists the outputs"
    used |= {o.strip() for o in listed.group(1).split(",")}
    assert used <= exported, (
        f"the pages name outputs the program does not export: {used - exported}"
    )


def test_repository_paths_named_exist() -> None:
    paths = set(
        re.findall(
            r"`((?:\.github|\.ci|ci|runtime|components|emulator|bench|tests|ops|e2e|docs)/"
            r"[^`<> ]*)`",
            ALL_TEXT,
        )
    )
    paths |= set(re.findall(r"`([\w.-]+\.(?:py|yml|yaml|txt|toml|lock))`", ALL_TEXT))
    paths -= CREATED_BY_THE_READER | LIBRECHAT_FILES
    assert paths, "no path found: has the pages' style changed?"
    missing = sorted(p for p in paths if not (ROOT / p.rstrip("/")).exists() and "*" not in p)
    assert not missing, f"the pages name paths that do not exist: {missing}"


def test_stacks_named_in_the_stacks_table_exist() -> None:
    """The table describes committed stacks; a new stack needs no row to keep the tests green."""
    named = set(re.findall(r"^\| `[\w-]+` \| `(Pulumi\.[\w-]+\.yaml)` \|", ALL_TEXT, re.MULTILINE))
    assert named, "docs/deploying.md's stacks table is gone"
    assert all((ROOT / name).exists() for name in named), named


def test_make_docs_says_what_it_did(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "docs" / "configuration.md"
    page.parent.mkdir()
    stale = "intro\n" + docs.BEGIN + "\n| old |\n" + docs.END + "\nafter\n"
    page.write_text(stale)
    monkeypatch.setattr(docs, "ROOT", tmp_path)
    monkeypatch.setattr(docs, "CONFIGURATION_PAGE", page)
    docs.main()
    docs.main()
    first, second = capsys.readouterr().out.splitlines()
    keys = len(list(docs.rows()))
    assert first == f"docs/configuration.md: rewrote the configuration table ({keys} keys)"
    assert second == f"docs/configuration.md: the configuration table is up to date ({keys} keys)"
    assert page.read_text() == docs.with_table(stale)
