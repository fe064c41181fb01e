"""The only network module: chat clients for OpenAI-compatible endpoints and Anthropic,
with retries, timeouts and token/cost accounting.

- ``openai`` SDK for every OpenAI-compatible server (OpenAI, vLLM, Ollama, llama.cpp
  server, LM Studio, OpenRouter: set ``base_url``); ``anthropic`` SDK for Claude.
- Keys come only from environment variables (``api_key_env``), never from config files.
- The SDKs' own retries are off (``max_retries=0``); ``Client.complete`` retries 429, 5xx,
  timeouts and connection errors with exponential backoff and full jitter, honouring
  ``Retry-After``, up to ``max_attempts``. Authentication failures and exhausted quota are
  never retried: they raise ``LLMFatal`` at once with what to do.
- Every call has a timeout (the SDK's, per request).
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence
from urllib.parse import urlparse

from .errors import AutoresearchError, ConfigError

DEFAULT_KEY_ENV = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}
_QUOTA_WORDS = ("insufficient_quota", "quota", "credit balance", "billing", "spend limit", "payment required")


class LLMFatal(AutoresearchError):
    """The model cannot be used (bad key, no quota, unknown model): retrying will not help."""


class LLMUnavailable(AutoresearchError):
    """The service kept failing (rate limits, 5xx, timeouts) through every retry."""


@dataclass(frozen=True)
class Completion:
    text: str
    input_tokens: int
    output_tokens: int
    attempts: int  # HTTP attempts it took
    latency_s: float


@dataclass(frozen=True)
class Failure:
    """An error of one attempt, reduced to what the retry policy needs."""

    kind: str  # "retry" | "auth" | "quota" | "fatal"
    message: str
    retry_after: float | None = None


def retry_delay(attempt: int, retry_after: float | None, *, base: float = 1.0, cap: float = 60.0,
                rng: random.Random | None = None) -> float:
    """Seconds to wait before attempt ``attempt + 1`` (attempt counts from 1).

    Full jitter: uniform in [0, min(cap, base * 2**(attempt-1))]. A server's Retry-After is
    a floor (capped at ``cap``): waiting less than it asked only earns another 429.
    """
    rng = rng or random.Random()
    backoff = rng.uniform(0.0, min(cap, base * 2 ** (attempt - 1)))
    if retry_after is not None and retry_after > 0:
        return max(min(retry_after, cap), backoff)
    return backoff


def classify_status(status: int, body: str) -> str:
    """Retry policy by HTTP status and error text: "retry", "auth", "quota" or "fatal"."""
    low = body.lower()
    if status in (401, 403):
        return "auth"
    if status == 402 or any(w in low for w in _QUOTA_WORDS):
        return "quota"
    if status in (408, 409, 425, 429) or status >= 500:
        return "retry"
    return "fatal"


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    if not headers:
        return None
    for name in ("retry-after-ms", "Retry-After-Ms"):
        if headers.get(name):
            try:
                return float(headers[name]) / 1000.0
            except ValueError:
                pass
    value = headers.get("retry-after") or headers.get("Retry-After")
    if value:
        try:
            return float(value)
        except ValueError:
            return None  # an HTTP date: fall back to backoff
    return None


def _failure(exc: Exception) -> Failure:
    """Map an SDK exception (openai or anthropic; they share the shapes) to a Failure."""
    status = getattr(exc, "status_code", None)
    name = type(exc).__name__
    if status is not None:
        response = getattr(exc, "response", None)
        headers = dict(response.headers) if response is not None else None
        body = str(getattr(exc, "body", "") or "") + " " + str(exc)
        return Failure(classify_status(int(status), body), f"HTTP {status}: {str(exc)[:300]}", _retry_after(headers))
    if "Timeout" in name:
        return Failure("retry", f"the request timed out ({name})")
    if "Connection" in name:
        return Failure("retry", f"cannot connect ({str(exc)[:200]})")
    return Failure("fatal", f"{name}: {str(exc)[:300]}")


def is_loopback(url: str | None) -> bool:
    host = urlparse(url).hostname if url else None
    return host in ("127.0.0.1", "localhost", "::1")


class Client:
    """One model behind one provider. ``complete`` is safe to call from one thread."""

    def __init__(
        self, *, provider: str, model: str, base_url: str | None = None, api_key_env: str | None = None,
        timeout_s: float = 120.0, max_attempts: int = 5, temperature: float = 0.7, max_tokens: int = 2048,
        env: Mapping[str, str] | None = None, sleep: Callable[[float], None] = time.sleep, seed: int | None = None,
        json_format: str = "json_schema",
    ):
        if provider not in DEFAULT_KEY_ENV:
            raise ConfigError(f"unknown LLM provider {provider!r}; choose one of {', '.join(DEFAULT_KEY_ENV)}")
        env = os.environ if env is None else env
        key_env = api_key_env or DEFAULT_KEY_ENV[provider]
        key = env.get(key_env)
        if not key:
            if base_url is not None and is_loopback(base_url):
                key = "not-needed"  # local servers (llama.cpp, Ollama, vLLM) take any key
            else:
                raise ConfigError(
                    f"the {provider} provider needs an API key in the environment variable {key_env} "
                    f"(keys are never read from config files); export it, or set [proposer.llm] base_url "
                    f"to a local server"
                )
        self.provider, self.model = provider, model
        self.max_attempts = max(1, max_attempts)
        self.temperature, self.max_tokens = temperature, max_tokens
        self.sleep = sleep
        self.rng = random.Random(seed)
        self.timeout_s = timeout_s
        self.json_format = json_format
        if provider == "openai":
            import openai

            self._sdk: Any = openai.OpenAI(api_key=key, base_url=base_url, timeout=timeout_s, max_retries=0)
            self._errors: tuple[type[Exception], ...] = (openai.APIError,)
        else:
            import anthropic

            self._sdk = anthropic.Anthropic(api_key=key, base_url=base_url, timeout=timeout_s, max_retries=0)
            self._errors = (anthropic.APIError,)

    def complete(self, system: str, messages: Sequence[Mapping[str, str]], *,
                 json_schema: Mapping[str, Any] | None = None) -> Completion:
        """One reply. ``messages`` alternate user/assistant. With ``json_schema`` the server
        is asked for JSON constrained by the schema (OpenAI-compatible servers)."""
        t0 = time.monotonic()
        last: Failure | None = None
        for attempt in range(1, self.max_attempts + 1):
            try:
                text, tin, tout = self._call(system, messages, json_schema)
                return Completion(text, tin, tout, attempt, time.monotonic() - t0)
            except self._errors as exc:  # the SDK's errors (HTTP, timeouts, connections); others are bugs
                last = _failure(exc)
            if last.kind == "auth":
                raise LLMFatal(f"{self.provider} refused the credentials ({last.message}); check the API key "
                               f"and its permissions for model {self.model!r}")
            if last.kind == "quota":
                raise LLMFatal(f"{self.provider} says the quota or credit is exhausted ({last.message}); top it up "
                               "or set [proposer.llm] on_error = \"knobs\" to go on without the model")
            if last.kind == "fatal":
                raise LLMFatal(f"{self.provider} rejected the request ({last.message})")
            if attempt < self.max_attempts:
                self.sleep(retry_delay(attempt, last.retry_after, rng=self.rng))
        assert last is not None
        raise LLMUnavailable(f"{self.provider} failed {self.max_attempts} times; last: {last.message}")

    def _call(self, system: str, messages: Sequence[Mapping[str, str]],
              json_schema: Mapping[str, Any] | None) -> tuple[str, int, int]:
        if self.provider == "openai":
            kwargs: dict[str, Any] = {}
            if json_schema is not None and self.json_format == "json_object":
                kwargs["response_format"] = {"type": "json_object", "schema": dict(json_schema)}
            elif json_schema is not None:
                kwargs["response_format"] = {
                    "type": "json_schema",
                    # not strict: OpenAI's strict mode refuses minItems/maxItems; the
                    # answer is validated here anyway
                    "json_schema": {"name": "proposal", "schema": dict(json_schema), "strict": False},
                }
            r = self._sdk.chat.completions.create(
                model=self.model, messages=[{"role": "system", "content": system}, *messages],
                temperature=self.temperature, max_tokens=self.max_tokens, **kwargs,
            )
            text = (r.choices[0].message.content or "") if r.choices else ""
            usage = r.usage
            return text, int(getattr(usage, "prompt_tokens", 0) or 0), int(getattr(usage, "completion_tokens", 0) or 0)
        # (the current anthropic SDK takes no temperature for messages: the model's default)
        r = self._sdk.messages.create(model=self.model, system=system, messages=list(messages), max_tokens=self.max_tokens)
        text = "".join(getattr(b, "text", "") for b in r.content)
        return text, int(r.usage.input_tokens or 0), int(r.usage.output_tokens or 0)


def cost_of(input_tokens: int, output_tokens: int, price_in: float, price_out: float) -> float:
    """US dollars, with prices per million tokens."""
    return input_tokens * price_in / 1e6 + output_tokens * price_out / 1e6
