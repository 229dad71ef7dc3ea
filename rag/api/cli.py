"""`rag serve`: open the service once, optionally ingest the seed articles, run the API with uvicorn."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

# The repository's seeds/ (an editable install runs from the checkout), else ./seeds.
_REPO_SEEDS = Path(__file__).resolve().parent.parent.parent / "seeds"
DEFAULT_SEEDS = _REPO_SEEDS if _REPO_SEEDS.is_dir() else Path("seeds")


def register(app: typer.Typer) -> None:
    """Add the `serve` command to the `rag` CLI."""

    @app.command()
    def serve(
        host: Annotated[
            str, typer.Option(help="Address to listen on (0.0.0.0 exposes it to the network).")
        ] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
        ingest_seeds: Annotated[
            bool, typer.Option("--ingest-seeds", help="Ingest the seed articles first (unchanged ones are skipped).")
        ] = False,
        seeds: Annotated[Path, typer.Option(help="Folder of seed articles for --ingest-seeds.")] = DEFAULT_SEEDS,
    ) -> None:
        """Serve the HTTP API, the demo page (/) and the widget (/widget.js); API docs at /docs."""
        from rag.api.app import create_app
        from rag.api.server import check_file_limit, run
        from rag.cli import _service, err, out
        from rag.config import get_settings

        settings = get_settings()
        with _service(settings) as service:
            if ingest_seeds:
                if not seeds.is_dir():
                    err.print(f"[red]error:[/red] no seeds folder at {seeds}; pass --seeds PATH")
                    raise typer.Exit(2)
                report = service.ingest_paths([seeds])
                counts = ", ".join(f"{name} {n}" for name, n in report.summary().items())
                out.print(f"seeds: {counts}")
                for r in report.results:
                    if r.status == "failed":
                        err.print(f"[red]failed[/red] {r.origin}: {r.reason}")
            if not settings.api_keys:
                err.print("[yellow]note:[/yellow] RAG_API_KEYS is not set: writing articles over HTTP is refused")
            out.print(f"serving on http://{host}:{port}/  (API docs: http://{host}:{port}/docs)")
            warning = check_file_limit(settings)
            if warning:
                err.print(f"[yellow]note:[/yellow] {warning}")
            run(create_app(settings, service), settings, host, port)
