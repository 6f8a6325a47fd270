"""The OpenAI-compatible chat client behind every backend, with the failure handling built in.

One `chat(request)` is a small state machine:

    for temperature in config.temperatures:          # the schedule on invalid outputs
        send, retrying transient errors with backoff  # timeouts, connection errors, 429, 5xx
        truncate a repetition loop (flagged)
        validate: JSON schema when the request has one, then the stage's own validator
        valid -> ok result; invalid -> next temperature
    all invalid -> ChatResult(ok=False, error_reason="invalid_output", problems=…)

It never raises for one bad request: transient errors that outlast the retries come back as
`error_reason="unavailable"`, a request the server refuses (400: context too long, bad
image) as `"rejected"`. The caller turns those into fallback rows or dead letters. Every
result carries its token and latency accounting (`LlmUsage`) and the prompt id@version and
model that produced it.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from scicurate.config import ConfigError, LlmConfig
from scicurate.llm.repetition import truncate_loop
from scicurate.records import LlmUsage

# error_reason codes of a failed ChatResult. Stable: they end up in rows and counters.
INVALID_OUTPUT = "invalid_output"   # every temperature gave an output that failed validation
UNAVAILABLE = "unavailable"         # transient errors outlasted the retries (server down, overloaded)
REJECTED = "rejected"               # the server refused the request (4xx other than 408/409/429)
REPETITION_FLAG = "repetition_truncated"

# A validator looks at (raw text, finish_reason) and returns the problems it finds; () = valid.
Validator = Callable[[str, str], Sequence[str]]


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """One chat/completions call: OpenAI messages plus what the answer must satisfy."""

    key: str                                 # the record it is for (page_id, url, …)
    messages: tuple[Mapping[str, Any], ...]  # OpenAI chat messages (text or image_url parts)
    prompt: str                              # prompt id@version, copied into every output row
    json_schema: Mapping[str, Any] | None = None  # structured output: the answer must validate
    max_tokens: int | None = None            # None: the client's configured max_tokens

    def __post_init__(self) -> None:
        if not self.key or not self.messages or "@" not in self.prompt:
            raise ValueError("a ChatRequest needs a key, messages and a prompt id@version")


@dataclass(frozen=True, slots=True)
class ChatResult:
    key: str
    prompt: str
    model: str
    ok: bool
    text: str = ""                      # the answer, repetition loop cut off
    data: Any = None                    # the parsed JSON when the request had a schema
    finish_reason: str = ""
    temperature: float = 0.0            # the temperature of the answer kept (or last tried)
    problems: tuple[str, ...] = ()      # validation problems of the last attempt
    error_reason: str = ""
    error_message: str = ""
    usage: LlmUsage = field(default_factory=LlmUsage)


class _Transient(Exception):
    pass


class _Rejected(Exception):
    pass


def _classify(exc: Exception) -> type[Exception]:
    import openai

    if isinstance(exc, (openai.APITimeoutError, openai.APIConnectionError, openai.RateLimitError,
                        openai.InternalServerError)):
        return _Transient
    if isinstance(exc, openai.APIStatusError):
        return _Transient if exc.status_code in (408, 409) or exc.status_code >= 500 else _Rejected
    return _Rejected


def schema_problems(text: str, schema: Mapping[str, Any]) -> tuple[Any, tuple[str, ...]]:
    """(parsed JSON or None, problems) of an answer that must satisfy `schema`."""
    import jsonschema

    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        return None, (f"not_json:{exc.msg if hasattr(exc, 'msg') else type(exc).__name__}",)
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(data), key=lambda e: list(e.path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.path) or "$"
        return data, (f"schema:{where}:{first.message[:160]}",)
    return data, ()


def response_format_kwargs(mode: str, schema: Mapping[str, Any] | None, name: str) -> dict[str, Any]:
    """How the schema travels to the server, per backend dialect."""
    if schema is None or mode == "none":
        return {}
    if mode == "json_schema":     # OpenAI and vLLM >= 0.6
        return {"response_format": {"type": "json_schema",
                                    "json_schema": {"name": name, "schema": dict(schema), "strict": True}}}
    if mode == "llama_cpp":       # llama-cpp-python's server compiles the schema to a grammar
        return {"response_format": {"type": "json_object", "schema": dict(schema)}}
    if mode == "guided_json":     # older vLLM
        return {"extra_body": {"guided_json": dict(schema)}}
    raise ConfigError(f"unknown structured output mode {mode!r}")


class LLMClient:
    """Calls one OpenAI-compatible server. Thread-safe; `chat_many` runs up to
    `config.max_concurrency` requests at once and keeps their order."""

    def __init__(self, config: LlmConfig, *, base_url: str | None = None, model: str | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        import openai

        self.config = config
        self.base_url = (base_url or config.endpoint).rstrip("/")
        self.model = model or config.model
        if not self.base_url:
            raise ConfigError("the LLM client needs an endpoint URL")
        if not self.model:
            raise ConfigError("the LLM client needs a model name (--llm-model)")
        self._sleep = sleep
        self._client = openai.OpenAI(
            base_url=self.base_url, api_key=os.environ.get(config.api_key_env) or "EMPTY",
            timeout=config.timeout_s, max_retries=0,
        )
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self.stats: dict[str, float] = {}

    # ---- accounting -------------------------------------------------------------------
    def _count(self, name: str, value: float = 1) -> None:
        with self._lock:
            self.stats[name] = self.stats.get(name, 0) + value

    def take_stats(self) -> dict[str, float]:
        """Counts since the last call (the handler turns them into Beam counters)."""
        with self._lock:
            out, self.stats = self.stats, {}
        return out

    # ---- one HTTP call, transient errors retried ---------------------------------------
    def _send(self, request: ChatRequest, temperature: float, usage: list[float]) -> tuple[str, str]:
        kwargs: dict[str, Any] = dict(
            model=self.model, messages=[dict(m) for m in request.messages], temperature=temperature,
            max_tokens=request.max_tokens or self.config.max_tokens, seed=self.config.seed,
        )
        kwargs.update(response_format_kwargs(self.config.structured_mode, request.json_schema,
                                              request.prompt.split("@", 1)[0]))
        jitter = random.Random(f"{request.key}:{temperature}")
        last: Exception | None = None
        for attempt in range(self.config.max_retries + 1):
            if attempt:
                delay = self.config.backoff_s * (2 ** (attempt - 1)) * (1 + 0.25 * jitter.random())
                self._count("retries")
                self._sleep(delay)
            started = time.perf_counter()
            usage[0] += 1
            self._count("calls")
            try:
                response = self._client.chat.completions.create(**kwargs)
            except Exception as exc:  # noqa: BLE001 - classified below; never escapes a request
                usage[3] += time.perf_counter() - started
                kind = _classify(exc)
                self._count("transient_errors" if kind is _Transient else "rejected")
                if kind is _Rejected:
                    raise _Rejected(f"{type(exc).__name__}: {exc}") from exc
                last = exc
                continue
            usage[3] += time.perf_counter() - started
            if response.usage is not None:
                usage[1] += response.usage.prompt_tokens or 0
                usage[2] += response.usage.completion_tokens or 0
                self._count("prompt_tokens", response.usage.prompt_tokens or 0)
                self._count("completion_tokens", response.usage.completion_tokens or 0)
            if not response.choices:
                raise _Rejected("the server answered with no choices")
            choice = response.choices[0]
            return choice.message.content or "", choice.finish_reason or ""
        raise _Transient(f"{self.config.max_retries + 1} tries failed; last: {type(last).__name__}: {last}")

    # ---- one validated request ---------------------------------------------------------
    def chat(self, request: ChatRequest, validator: Validator | None = None) -> ChatResult:
        usage = [0, 0, 0, 0.0]   # calls, prompt tokens, completion tokens, latency
        flags: list[str] = []
        problems: tuple[str, ...] = ()
        text, finish, temperature, attempts = "", "", 0.0, 0

        def result(ok: bool, **kw: Any) -> ChatResult:
            self._count("ok" if ok else f"failed_{kw.get('error_reason', '')}")
            return ChatResult(
                key=request.key, prompt=request.prompt, model=self.model, ok=ok, text=text,
                finish_reason=finish, temperature=temperature, problems=problems,
                usage=LlmUsage(int(usage[0]), attempts, int(usage[1]), int(usage[2]), float(usage[3]),
                               ",".join(dict.fromkeys(flags))),
                **kw,
            )

        for temperature in self.config.temperatures:
            attempts += 1
            try:
                raw, finish = self._send(request, temperature, usage)
            except _Transient as exc:
                return result(False, error_reason=UNAVAILABLE, error_message=str(exc)[:2000])
            except _Rejected as exc:
                return result(False, error_reason=REJECTED, error_message=str(exc)[:2000])
            text, loop = truncate_loop(raw)
            if loop is not None:
                flags.append(REPETITION_FLAG)
                self._count("repetition_truncated")
            data = None
            found: list[str] = []
            if request.json_schema is not None:
                data, schema_found = schema_problems(text, request.json_schema)
                found.extend(schema_found)
            if validator is not None and not found:
                found.extend(validator(raw, finish))
            problems = tuple(found)
            if not problems:
                return result(True, data=data)
            self._count("invalid")
            flags.append("invalid:" + problems[0].split(":", 1)[0])
        return result(False, error_reason=INVALID_OUTPUT,
                      error_message=f"{attempts} attempts at temperatures {list(self.config.temperatures)} "
                                    f"all invalid; last: {'; '.join(problems)[:1500]}")

    def chat_many(self, requests: Sequence[ChatRequest], validator: Validator | None = None) -> list[ChatResult]:
        """Results in request order, at most `max_concurrency` requests in flight."""
        if len(requests) <= 1 or self.config.max_concurrency == 1:
            return [self.chat(r, validator) for r in requests]
        if self._pool is None:
            with self._lock:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(self.config.max_concurrency, thread_name_prefix="llm")
        return list(self._pool.map(lambda r: self.chat(r, validator), requests))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self._client.close()

    def __enter__(self) -> "LLMClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def check_endpoint(config: LlmConfig, timeout_s: float = 10.0) -> list[str]:
    """Start-up check: the server answers /models and serves `config.model`. Returns the
    served model ids; raises ConfigError saying what is wrong (a fatal error, before any input)."""
    import urllib.error
    import urllib.request

    url = config.endpoint.rstrip("/") + "/models"
    request = urllib.request.Request(url)
    key = os.environ.get(config.api_key_env)
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as reply:
            ids = [m.get("id", "") for m in json.loads(reply.read()).get("data", [])]
    except urllib.error.HTTPError as exc:
        hint = (f"; OpenAI-compatible servers answer under /v1: try --llm-endpoint {config.endpoint.rstrip('/')}/v1"
                if exc.code == 404 and not config.endpoint.rstrip("/").endswith("/v1") else "")
        raise ConfigError(f"the LLM endpoint {config.endpoint} answered {url} with HTTP {exc.code}{hint}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise ConfigError(f"the LLM endpoint {config.endpoint} does not answer ({url}: {exc}); start the "
                          "server (`vllm serve MODEL`, or `scicurate llm serve` for the embedded one)") from None
    if config.model and ids and config.model not in ids:
        raise ConfigError(f"the LLM endpoint {config.endpoint} serves {ids}, not --llm-model {config.model!r}")
    return ids
