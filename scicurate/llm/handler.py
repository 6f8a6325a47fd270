"""Beam `ModelHandler`s over `LLMClient`, for `RunInference`.

    requests | RunInference(chat_handler(config, validator=…)).with_exception_handling()
    -> PredictionResult(example=request key, inference=ChatResult, model_id=model)

- `EndpointChatHandler` is a Beam `RemoteModelHandler` for an OpenAI-compatible server: Beam
  adds client-side throttling and retries the batch on exceptions; our client already retries
  each request on transient errors and returns record-level failures as results, so only a
  bug reaches Beam's retry and then `with_exception_handling`'s failed output.
- `VllmChatHandler` starts vLLM inside the GPU worker through Beam's `VLLMChatModelHandler`
  (one server per machine, shared across SDK processes) and talks to it with the same client.

Both batch up to 2 x max_concurrency requests so the server always has the next ones queued,
and turn the client's per-call accounting into Beam counters under the stage's namespace.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable, Optional, Sequence

from apache_beam.metrics import Metrics
from apache_beam.ml.inference.base import ModelHandler, PredictionResult, RemoteModelHandler

from scicurate.config import ConfigError, LlmConfig
from scicurate.llm.client import ChatRequest, ChatResult, LLMClient, Validator

_STAT_COUNTERS = ("calls", "retries", "transient_errors", "rejected", "invalid", "ok",
                  "repetition_truncated", "prompt_tokens", "completion_tokens")


def _report(namespace: str, client: LLMClient, results: Sequence[ChatResult]) -> None:
    stats = client.take_stats()
    for name, value in stats.items():
        if name in _STAT_COUNTERS or name.startswith("failed_"):
            Metrics.counter(namespace, name).inc(int(value))
    latency = Metrics.distribution(namespace, "latency_ms")
    for result in results:
        if result.usage.calls:
            latency.update(int(1000 * result.usage.latency_s / result.usage.calls))


def _result_to_json(result: ChatResult) -> dict[str, Any]:
    return dataclasses.asdict(result)


def _result_from_json(d: dict[str, Any], key: str) -> ChatResult:
    from scicurate.records import LlmUsage

    return ChatResult(**{**d, "key": key, "problems": tuple(d.get("problems") or ()),
                         "usage": LlmUsage(**d.get("usage") or {})})


def _request_key(config: LlmConfig, model: str, req: ChatRequest) -> str:
    """What decides the answer: model, sampling, prompt, messages, schema (not the record key
    or the endpoint URL, which an embedded server changes on every start)."""
    from scicurate.resume import request_key

    return request_key({"model": model, "temperatures": config.temperatures, "seed": config.seed,
                        "max_tokens": req.max_tokens or config.max_tokens, "structured": config.structured,
                        "prompt": req.prompt, "messages": req.messages, "schema": req.json_schema})


def _answer(batch: Sequence[ChatRequest], client: LLMClient, validator: Validator | None, namespace: str,
            config: LlmConfig, store: Any) -> list[ChatResult]:
    """The batch's answers: those a killed run already received come from the resume store
    (`scicurate.resume.WorkStore`); the rest are asked, and good answers saved."""
    if store is None:
        results = client.chat_many(list(batch), validator)
        _report(namespace, client, results)
        return results
    keys = [_request_key(config, client.model, req) for req in batch]
    answers: list[ChatResult | None] = []
    for req, key in zip(batch, keys):
        saved = store.load(key)
        answers.append(None if saved is None else _result_from_json(saved, req.key))
    todo = [i for i, a in enumerate(answers) if a is None]
    if len(todo) < len(batch):
        Metrics.counter(namespace, "resumed").inc(len(batch) - len(todo))
    if todo:
        fresh = client.chat_many([batch[i] for i in todo], validator)
        _report(namespace, client, fresh)
        for i, result in zip(todo, fresh):
            answers[i] = result
            if result.ok:
                store.save(keys[i], _result_to_json(result))
    return answers  # type: ignore[return-value]


def _batch_kwargs(config: LlmConfig) -> dict[str, int]:
    return {"min_batch_size": 1, "max_batch_size": max(1, 2 * config.max_concurrency)}


class EndpointChatHandler(RemoteModelHandler[ChatRequest, PredictionResult, LLMClient]):
    """ChatRequest -> PredictionResult(request, ChatResult) against --llm-endpoint."""

    def __init__(self, config: LlmConfig, *, validator: Validator | None = None, namespace: str = "llm",
                 store: Any = None) -> None:
        if config.backend != "endpoint" or not config.endpoint:
            raise ConfigError("EndpointChatHandler needs an endpoint config (embedded servers are "
                              "started by the driver and passed on as endpoints)")
        # Beam retries a failed batch; the client has already retried each call, so twice is enough.
        super().__init__(namespace=namespace, num_retries=2, throttle_delay_secs=1)
        ModelHandler.__init__(self, **_batch_kwargs(config))   # RemoteModelHandler skips the base init
        self.config = config
        self.validator = validator
        self.namespace = namespace
        self.store = store

    def create_client(self) -> LLMClient:
        return LLMClient(self.config)

    def request(self, batch: Sequence[ChatRequest], model: LLMClient,
                inference_args: Optional[dict[str, Any]] = None) -> Iterable[PredictionResult]:
        results = _answer(batch, model, self.validator, self.namespace, self.config, self.store)
        return [PredictionResult(req.key, res, model.model) for req, res in zip(batch, results)]

    def get_metrics_namespace(self) -> str:
        return f"RunInference_{self.namespace}"


class VllmChatHandler(ModelHandler[ChatRequest, PredictionResult, Any]):
    """In-worker vLLM (the `gpu` extra): Beam starts `vllm.entrypoints.openai.api_server` on
    the worker from a local model directory; requests go through the same `LLMClient`."""

    def __init__(self, config: LlmConfig, *, validator: Validator | None = None, namespace: str = "llm",
                 vllm_server_kwargs: dict[str, str] | None = None, store: Any = None) -> None:
        super().__init__(**_batch_kwargs(config))
        if config.backend != "vllm":
            raise ConfigError("VllmChatHandler needs --llm-backend vllm")
        self.config = config
        self.validator = validator
        self.namespace = namespace
        self.vllm_server_kwargs = dict(vllm_server_kwargs or {})
        self.store = store
        self._clients: dict[int, LLMClient] = {}

    def load_model(self) -> Any:
        try:
            from apache_beam.ml.inference.vllm_inference import VLLMChatModelHandler
        except ImportError as exc:
            raise ConfigError(f"in-worker vLLM needs the gpu extra (pip install 'scicurate[gpu]'): {exc}") from None
        return VLLMChatModelHandler(self.config.model, vllm_server_kwargs=self.vllm_server_kwargs).load_model()

    def _client(self, server: Any) -> LLMClient:
        port = server.get_server_port()
        if port not in self._clients:
            self._clients[port] = LLMClient(self.config, base_url=f"http://localhost:{port}/v1",
                                            model=self.config.model)
        return self._clients[port]

    def run_inference(self, batch: Sequence[ChatRequest], model: Any,
                      inference_args: Optional[dict[str, Any]] = None) -> Iterable[PredictionResult]:
        client = self._client(model)
        results = _answer(batch, client, self.validator, self.namespace, self.config, self.store)
        return [PredictionResult(req.key, res, client.model) for req, res in zip(batch, results)]

    def share_model_across_processes(self) -> bool:
        return True

    def get_metrics_namespace(self) -> str:
        return f"RunInference_{self.namespace}"


def chat_handler(config: LlmConfig, *, validator: Validator | None = None, namespace: str = "llm",
                 resume_dir: str = "") -> ModelHandler:
    """The handler for a worker-side config (`endpoint` or `vllm`; see `embedded.serving`).
    With `resume_dir` (the run's output folder), answers are kept under its `_resume/` until
    the run finishes, so rerunning a killed run asks only what it had not received."""
    store = None
    if resume_dir:
        from scicurate.resume import WorkStore

        store = WorkStore.for_stage(resume_dir, namespace, {"model": config.model})
    if config.backend == "vllm":
        return VllmChatHandler(config, validator=validator, namespace=namespace, store=store)
    return EndpointChatHandler(config, validator=validator, namespace=namespace, store=store)
