"""Settings: one class, read from `RAG_*` environment variables (and `.env`), never instantiated at import."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Every knob of the service. The README's settings table is generated from these fields."""

    model_config = SettingsConfigDict(env_prefix="RAG_", env_file=".env", extra="ignore")

    # --- store ---
    data_dir: Path = Field(Path("./data"), description="Local data directory (Chroma files, keyword index, lock).")
    chroma_url: str | None = Field(
        None, description="URL of a Chroma server (e.g. http://127.0.0.1:8001); unset means Chroma on local disk."
    )
    collection: str = Field("news", description="Name prefix of the Chroma collections.")
    index_refresh_seconds: float = Field(
        2.0, description="With a Chroma server: how often a replica checks for writes made by other replicas."
    )

    # --- ingestion ---
    max_file_bytes: int = Field(10_000_000, description="Largest article file accepted (JSON Lines: largest line).")
    chunk_tokens: int = Field(
        200, description="Word pieces of article text per chunk (the header with title and date takes the rest of 256)."
    )
    chunk_overlap_tokens: int = Field(48, description="Word pieces of whole sentences repeated between chunks.")

    # --- embeddings ---
    embedding_provider: Literal["onnx", "openai"] = Field(
        "onnx", description="`onnx`: the packaged all-MiniLM-L6-v2 (offline); `openai`: OpenAI embeddings."
    )
    embedding_model: str = Field("text-embedding-3-small", description="Embedding model name for the openai provider.")
    # 8, not 32: onnxruntime keeps its largest batch's buffers (~960 MB at 32 full-length chunks, ~450 MB at 8),
    # and small batches of length-sorted chunks are no slower here (24 -> 28.6 chunks/s measured).
    embedding_batch_size: int = Field(8, description="Texts per embedding call.")

    # --- retrieval ---
    top_k: int = Field(5, description="Passages returned by search and given to the answerer.")
    max_k: int = Field(20, description="Largest k a request may ask for.")
    candidates: int = Field(40, description="Candidates taken from each of dense and keyword search before fusion.")
    rrf_k: int = Field(60, description="Reciprocal-rank-fusion constant (60 is the value from Cormack et al. 2009).")

    # --- answering ---
    answer_mode: Literal["auto", "extractive", "llm"] = Field(
        "auto", description="`auto` uses the LLM when one is configured, else the offline extractive mode."
    )
    min_relevance: float = Field(
        0.15, description="Cosine similarity below which no passage counts as relevant (abstain)."
    )
    llm_base_url: str | None = Field(None, description="OpenAI-compatible base URL (Ollama, vLLM, llama.cpp, ...).")
    llm_model: str = Field("gpt-4o-mini", description="Chat model name.")
    llm_api_key: SecretStr | None = Field(None, description="API key for the LLM; OPENAI_API_KEY is also honoured.")
    llm_timeout: float = Field(30.0, description="Seconds before an LLM call is abandoned.")
    llm_max_retries: int = Field(2, description="Retries, with backoff, on 429 and 5xx answers.")
    llm_max_tokens: int = Field(512, description="Largest answer the LLM may write.")
    llm_temperature: float = Field(0.0, description="Sampling temperature.")

    # --- API ---
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list, description="Comma-separated API keys; writing articles always needs one."
    )
    public_ask: bool = Field(False, description="Allow asking without a key (the public widget's case).")
    widget_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Comma-separated origins allowed by CORS (no credentials)."
    )
    max_body_bytes: int = Field(12_000_000, description="Largest request body the API accepts (413 above).")
    max_question_chars: int = Field(2000, description="Longest question accepted.")
    max_history_turns: int = Field(20, description="Most chat turns accepted with a question.")
    rate_limit_per_minute: int = Field(60, description="Asks per minute per API key and per client address.")
    max_concurrent_llm: int = Field(8, description="LLM calls in flight at once in one process.")
    # 10 a minute lets a person fix a mistyped key at once; a guesser gets 10 tries a minute instead of thousands.
    auth_failures_per_minute: int = Field(
        10, description="Wrong API keys allowed per client address per minute before 429 (0: no limit)."
    )
    max_header_bytes: int = Field(
        16_384, description="Largest request line plus headers (431 above); Node's default, ample for keys."
    )

    # --- `rag serve` connections ---
    # Below the usual 1,024 file descriptors a process may hold, leaving room for Chroma's files and the LLM client.
    max_connections: int = Field(
        500, description="`rag serve`: open connections at once; past it the longest-idle ones are closed."
    )
    header_timeout: float = Field(
        10.0, description="`rag serve`: seconds a client has to send a request's headers (408 and close after)."
    )
    keep_alive_timeout: int = Field(
        5, description="`rag serve`: seconds an idle kept-alive connection stays open between requests."
    )
    upload_job_articles: int = Field(
        50, description="POST /v1/articles with more articles than this runs as a job (202 and a job URL)."
    )

    @field_validator("api_keys", "widget_origins", mode="before")
    @classmethod
    def _csv(cls, value: object) -> object:
        return _split_csv(value)

    def resolved_llm_key(self) -> str | None:
        """The LLM key: `RAG_LLM_API_KEY`, else `OPENAI_API_KEY`."""
        if self.llm_api_key is not None:
            return self.llm_api_key.get_secret_value()
        return os.environ.get("OPENAI_API_KEY") or None

    def llm_configured(self) -> bool:
        """True when a base URL or a key makes a real LLM reachable."""
        return bool(self.llm_base_url or self.resolved_llm_key())


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once from the environment."""
    return Settings()
