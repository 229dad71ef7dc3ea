"""Print the README's settings table from the Settings class (tests/test_readme.py keeps them in step)."""

from __future__ import annotations

from rag.config import Settings


def settings_table() -> str:
    """Markdown table: variable, default, meaning."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        shown = "" if default is None or default == [] else str(default)
        rows.append(f"| `RAG_{name.upper()}` | `{shown}` | {field.description or ''} |".replace("``", "—"))
    return "\n".join(rows)


if __name__ == "__main__":
    print(settings_table())
