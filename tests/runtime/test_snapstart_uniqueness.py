"""SnapStart uniqueness with plain Node and the real uuid, nanoid and bson packages from npm
(e2e/uniqueness.py explains the model; `python -m e2e.uniqueness` runs the same proof on
LibreChat's own node_modules)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from e2e import uniqueness

pytestmark = pytest.mark.slow  # starts the runtime (tests/conftest.py)

# The majors LibreChat v0.8.7/v0.8.8-rc1 load (uuid 11, nanoid 3, bson 6).
PACKAGES = ("uuid@11.1.0", "nanoid@3.3.11", "bson@6.10.4")


@pytest.fixture(scope="module")
def node_modules(tmp_path_factory: pytest.TempPathFactory) -> Path:
    npm = shutil.which("npm")
    assert npm is not None, "npm is needed to install the packages the proof loads"
    root = tmp_path_factory.mktemp("snapstart-packages")
    subprocess.run(
        [npm, "install", "--prefix", str(root), "--no-audit", "--no-fund", "--loglevel=error",
         *PACKAGES],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    return root / "node_modules"


def test_every_source_is_fresh_after_two_restores_of_one_snapshot(node_modules):
    sources = uniqueness.prove("node", node_modules)
    expected = {"crypto.randomBytes", "crypto.randomFillSync", "crypto.randomFill",
                "crypto.getRandomValues", "webcrypto.getRandomValues", "crypto.randomUUID",
                "webcrypto.randomUUID", "crypto.randomInt", "Math.random", "uuid.v4 uuid",
                "uuid.v4 pool uuid", "nanoid nanoid", "ObjectId process value bson",
                "ObjectId counter bson"}  # fmt: skip
    assert expected <= set(sources)
    for name, source in sources.items():
        assert source["snapshot_shared"], f"{name}: the model did not share the snapshot state"
        assert source["restored_differ"], f"{name}: two restores drew the same value"
        assert source["not_from_snapshot"], f"{name}: a restore drew the snapshot's next value"


def test_openssl_keeps_no_generator_state_under_the_snapstart_config():
    state = uniqueness.openssl_state("node")
    assert state["default"]["drbg_seeded"]  # the check sees a DRBG when there is one
    assert not state["snapstart"]["drbg_seeded"]
