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
