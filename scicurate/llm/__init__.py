"""The one LLM/VLM access layer every model-backed stage uses.

Three interchangeable backends, one OpenAI-compatible chat/completions client:
- `endpoint`: any OpenAI-compatible server (`vllm serve` in production) at --llm-endpoint;
- `vllm`: a vLLM server inside each GPU worker, started by Beam's `VLLMChatModelHandler`;
- `embedded`: a GGUF model shipped in a PyPI wheel (SmolLM2-135M-Instruct, Gemma-3-270M),
  served on loopback by `llama-cpp-python[server]`, started and stopped by scicurate.

`client.LLMClient` does the calling (bounded concurrency, timeouts, retry with backoff on
transient errors, a temperature schedule on invalid outputs, JSON-schema structured output
and validation, repetition-loop truncation, token and latency accounting). `handler` wraps it
as Beam `ModelHandler`s for `RunInference`; `embedded` owns the loopback server.
"""

from scicurate.llm.client import ChatRequest, ChatResult, LLMClient

__all__ = ["ChatRequest", "ChatResult", "LLMClient"]
