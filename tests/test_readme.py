"""The README stays true: its two commands exist, CI runs the same test command, the settings table is current."""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_readme_opens_with_the_run_and_test_commands() -> None:
    block = re.match(r"```bash\n(.*?)```", README, re.S)
    assert block, "the README opens with a bash block"
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]
    assert commands == ["make run", "make test"]
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^run:", makefile, re.M) and re.search(r"^test:", makefile, re.M)
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_settings_table_matches_the_settings_class() -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    from settings_table import settings_table

    assert settings_table() in README, "regenerate with `python scripts/settings_table.py`"


def http_api_blocks() -> list[tuple[str, str]]:
    """(language, code) of the code blocks in the README's "HTTP API" section that run against `make run`."""
    section = README.split("## HTTP API", 1)[1].split("\n## ", 1)[0]
    runnable = section.split("these work as written", 1)[1].split("Writing needs a key", 1)[0]
    return re.findall(r"```(bash|python)\n(.*?)```", runnable, re.S)


def test_the_http_snippets_work_as_written_against_make_run(tmp_path: Path) -> None:
    """`make run` is `RAG_PUBLIC_ASK=true rag serve --ingest-seeds` with no keys; only its port is changed here."""
    import os
    import subprocess

    from servers import start_rag_serve, stop_process

    blocks = http_api_blocks()
    assert [lang for lang, _ in blocks] == ["bash", "python"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_") and k != "OPENAI_API_KEY"}
    env.update(RAG_DATA_DIR=str(tmp_path / "data"), RAG_PUBLIC_ASK="true", PYTHONPATH=str(ROOT))
    proc, base = start_rag_serve(["--ingest-seeds"], env=env, cwd=tmp_path)
    port = base.rsplit(":", 1)[1]
    try:
        for lang, code in blocks:
            code = code.replace("localhost:8000", f"127.0.0.1:{port}").replace("127.0.0.1:8000", f"127.0.0.1:{port}")
            command = ["bash", "-eo", "pipefail", "-c", code] if lang == "bash" else [sys.executable, "-c", code]
            run = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
            assert run.returncode == 0, f"{lang} block failed:\n{code}\n{run.stdout}\n{run.stderr}"
            assert "[1]" in run.stdout, f"the {lang} block printed no cited answer: {run.stdout}"
    finally:
        stop_process(proc)
