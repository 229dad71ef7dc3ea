"""The HTTP API: `rag.api.app.create_app(settings, service)` builds it; `rag serve` runs it.

Kept empty so that importing `rag.api.cli` (every `rag` command does) loads no web framework.
"""
