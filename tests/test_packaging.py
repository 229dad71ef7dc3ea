"""The package as a user installs it: `pip install .` (a wheel, not editable) in a fresh venv, answering in LLM mode
against the llama.cpp test server. Prompts and web files must travel inside the wheel."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sysconfig
import venv
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO, SEED_ID
from servers import LlamaServer


@pytest.fixture(scope="module")
def llama_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = LlamaServer(tmp_path_factory.mktemp("llama")).start()
    yield server.url
    server.stop()


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with `pip install .` of a copy of the source tree; returns its bin directory.

    The dependencies come from this interpreter's site-packages through a .pth file (the pinned set, already
    installed) so the test needs no download beyond the build backend; `rag` itself comes only from the wheel.
    """
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    for name in ("rag", "prompts"):
        shutil.copytree(REPO / name, src / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    env_dir = root / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    (Path(site) / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [python, "-m", "pip", "install", "-q", "--no-deps", str(src)], check=True, env=clean_env(), timeout=600
    )
    return env_dir / "bin"


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("RAG_")}
    return {**env, **extra}


def test_a_wheel_install_answers_in_llm_mode(installed: Path, llama_url: str, tmp_path: Path) -> None:
    where = subprocess.run(
        [installed / "python", "-c", "import rag.llm; print(rag.llm.__file__)"],
        capture_output=True, text=True, check=True, env=clean_env(), cwd=tmp_path,
    ).stdout  # fmt: skip
    assert "site-packages" in where and str(REPO) not in where, "rag is imported from the wheel"

    env = clean_env(
        RAG_DATA_DIR=str(tmp_path / "data"), RAG_LLM_BASE_URL=llama_url, RAG_LLM_MODEL="smollm2",
        RAG_LLM_MAX_TOKENS="48", RAG_LLM_TIMEOUT="60",
    )  # fmt: skip
    ingest = subprocess.run(
        [installed / "rag", "ingest", str(REPO / "seeds")], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert ingest.returncode == 0, ingest.stdout + ingest.stderr
    ask = subprocess.run(
        [installed / "rag", "ask", "What did Babushkin say about sanctions?", "--mode", "llm", "--json"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert ask.returncode == 0, ask.stdout + ask.stderr
    answer = json.loads(ask.stdout)
    assert answer["mode"] == "llm" and answer["sources"][0]["article_id"] == SEED_ID
    assert answer["timings"]["generate_ms"] > 0, "the model was called"


def test_the_wheel_carries_the_prompts_and_the_widget(installed: Path) -> None:
    listing = subprocess.run(
        [installed / "python", "-c",
         "from importlib import resources; r = resources.files('rag'); "
         "print(sorted(p.name for p in (r / 'prompts').iterdir())); print((r / 'web' / 'widget.js').is_file())"],
        capture_output=True, text=True, check=True, env=clean_env(),
    ).stdout  # fmt: skip
    assert "['answer.md', 'condense.md', 'judge.md']" in listing and "True" in listing
