"""The chat model adapter (langchain-openai's ChatOpenAI over the `openai` package) and prompt files.

The only module that imports langchain_openai's chat model or the openai SDK. Any OpenAI-compatible server
(Ollama, vLLM, llama.cpp) is the same client with another base URL.
"""

from __future__ import annotations

import string
from functools import lru_cache
from importlib import resources
from pathlib import Path

from langchain_core.language_models import BaseChatModel
from langchain_core.prompts import ChatPromptTemplate

from rag.config import Settings
from rag.errors import ConfigError, UpstreamError

# Package data (rag/prompts links to the repository's prompts/, and the wheel carries copies), so a non-editable
# install finds them as well as a checkout does.
PROMPTS = resources.files("rag") / "prompts"
PROMPTS_DIR = Path(str(PROMPTS))  # for callers that list the files
_USER_SPLIT = "=== user ==="


def prompt_variables(name: str) -> set[str]:
    """The `{variables}` a prompt file uses."""
    text = prompt_text(name)
    return {field for _, field, _, _ in string.Formatter().parse(text) if field}


def prompt_text(name: str) -> str:
    """The raw text of `prompts/<name>.md`."""
    file = PROMPTS / f"{name}.md"
    if not file.is_file():
        raise ConfigError(f"prompt file missing: {file} (is the package installed with its data files?)")
    return file.read_text(encoding="utf-8")


@lru_cache(maxsize=16)
def load_prompt(name: str) -> ChatPromptTemplate:
    """A prompt file as a chat template: system text, then `=== user ===`, then the user message."""
    text = prompt_text(name)
    system, sep, user = text.partition(_USER_SPLIT)
    if not sep:
        return ChatPromptTemplate.from_messages([("user", text.strip())])
    return ChatPromptTemplate.from_messages([("system", system.strip()), ("user", user.strip())])


def make_chat_model(settings: Settings) -> BaseChatModel:
    """ChatOpenAI for the configured model, base URL, key, timeout and retries (with the SDK's backoff)."""
    from langchain_openai import ChatOpenAI

    if not settings.llm_configured():
        raise ConfigError("LLM mode needs RAG_LLM_BASE_URL or an API key (RAG_LLM_API_KEY / OPENAI_API_KEY)")
    return ChatOpenAI(
        model=settings.llm_model,
        base_url=settings.llm_base_url,
        api_key=settings.resolved_llm_key() or "not-needed",
        timeout=settings.llm_timeout,
        max_retries=settings.llm_max_retries,
        max_completion_tokens=settings.llm_max_tokens,
        temperature=settings.llm_temperature,
        streaming=True,  # without it, LangChain's astream quietly falls back to one blocking call
        # ChatOpenAI sends only `max_completion_tokens`; llama.cpp and older compatible servers read `max_tokens`
        # and would otherwise generate until their context is full.
        extra_body={"max_tokens": settings.llm_max_tokens} if settings.llm_base_url else None,
    )


def upstream_error(exc: BaseException) -> UpstreamError:
    """Translate an openai SDK exception into our error, with a message that says what to check."""
    import openai

    if isinstance(exc, openai.AuthenticationError):
        return UpstreamError("the LLM refused the API key (401): check RAG_LLM_API_KEY / OPENAI_API_KEY", status=401)
    if isinstance(exc, openai.PermissionDeniedError):
        return UpstreamError("the LLM denied access (403) to this model or key", status=403)
    if isinstance(exc, openai.RateLimitError):
        retry = exc.response.headers.get("retry-after") if exc.response is not None else None
        return UpstreamError(
            "the LLM is rate limiting requests (429); try again shortly",
            status=429,
            retry_after=float(retry) if retry and retry.replace(".", "", 1).isdigit() else None,
        )
    if isinstance(exc, openai.NotFoundError):
        return UpstreamError("the LLM does not know this model (404): check RAG_LLM_MODEL", status=404)
    if isinstance(exc, openai.APITimeoutError):
        return UpstreamError("the LLM did not answer in time: raise RAG_LLM_TIMEOUT or check the server", status=504)
    if isinstance(exc, openai.APIConnectionError):
        return UpstreamError("cannot reach the LLM: check RAG_LLM_BASE_URL and that the server is up", status=503)
    if isinstance(exc, openai.APIStatusError):
        return UpstreamError(f"the LLM failed with HTTP {exc.status_code}", status=exc.status_code)
    return UpstreamError(f"the LLM call failed: {exc.__class__.__name__}: {exc}")


def is_upstream_exception(exc: BaseException) -> bool:
    """True for exceptions raised by the openai SDK (and httpx beneath it)."""
    import httpx
    import openai

    return isinstance(exc, openai.OpenAIError | httpx.HTTPError)
