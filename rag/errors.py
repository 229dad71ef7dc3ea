"""The error tree. Raised with a message a person can act on; translated once, at the edge.

    RagError
    ├── ConfigError        a setting is missing or contradicts another
    ├── StoreError         the article store cannot be opened or written
    │   └── StoreLockedError   another process holds the local data directory
    ├── IngestError        one article or file cannot be read (reported per file)
    ├── NotFoundError      an article id that is not in the store
    ├── InvalidRequestError  a question, filter or parameter that cannot be served
    └── UpstreamError      the LLM or embedding service failed (down, 401, 429, timeout, bad output)

The CLI maps these to exit codes and the API to HTTP statuses; nothing else catches them broadly.
"""

from __future__ import annotations


class RagError(Exception):
    """Base of every error this package raises on purpose."""

    code = "internal_error"


class ConfigError(RagError):
    """A setting is missing, malformed or inconsistent."""

    code = "config_error"


class StoreError(RagError):
    """The article store cannot be opened, read or written."""

    code = "store_error"


class StoreLockedError(StoreError):
    """A second process tried to open a local data directory already in use."""

    code = "store_locked"


class IngestError(RagError):
    """An article or file that cannot be ingested; the message says why and what to do."""

    code = "invalid_article"


class NotFoundError(RagError):
    """An id that names nothing in the store."""

    code = "not_found"


class InvalidRequestError(RagError):
    """A request that cannot be served as asked (bad filter, empty question, ...)."""

    code = "invalid_request"


class UpstreamError(RagError):
    """A remote model service failed; `status` is its HTTP status where there was one."""

    code = "upstream_error"

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
