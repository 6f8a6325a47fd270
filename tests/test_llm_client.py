"""LLMClient against a local OpenAI-compatible server with canned answers: retries, timeouts,
the temperature schedule, structured output, repetition loops, concurrency, accounting."""

import json
import threading

import pytest

from fake_openai import FakeOpenAI, Reply
from scicurate.config import ConfigError, LlmConfig
from scicurate.llm.client import (
    INVALID_OUTPUT,
    REJECTED,
    REPETITION_FLAG,
    UNAVAILABLE,
    ChatRequest,
    LLMClient,
    check_endpoint,
    response_format_kwargs,
)

SCHEMA = {"type": "object", "properties": {"label": {"enum": ["math", "physics"]}},
          "required": ["label"], "additionalProperties": False}


def _request(key="r1", schema=None):
    return ChatRequest(key=key, messages=({"role": "user", "content": "hi"},), prompt="test@1", json_schema=schema)


def _client(server, **kw):
    kw.setdefault("backoff_s", 0.0)
    return LLMClient(LlmConfig(endpoint=server.url, model="fake-vlm", **kw))


def test_ok_answer_carries_usage_prompt_and_model():
    with FakeOpenAI(lambda body, n: Reply("hello there", prompt_tokens=7, completion_tokens=3)) as server:
        result = _client(server).chat(_request())
    assert result.ok and result.text == "hello there" and result.finish_reason == "stop"
    assert (result.prompt, result.model, result.key) == ("test@1", "fake-vlm", "r1")
    assert (result.usage.calls, result.usage.attempts, result.usage.prompt_tokens, result.usage.completion_tokens) == (1, 1, 7, 3)
    assert result.usage.latency_s > 0
    body = server.requests[0]
    assert body["model"] == "fake-vlm" and body["temperature"] == 0.0 and body["seed"] == 0 and body["max_tokens"] == 2048


def test_transient_errors_are_retried_with_backoff():
    sleeps = []
    answers = [Reply(status=503), Reply(status=429), Reply("fine")]
    with FakeOpenAI(lambda body, n: answers[n]) as server:
        client = LLMClient(LlmConfig(endpoint=server.url, model="fake-vlm", backoff_s=0.5), sleep=sleeps.append)
        result = client.chat(_request())
        stats = client.take_stats()
    assert result.ok and result.text == "fine" and result.usage.calls == 3 and result.usage.attempts == 1
    assert len(sleeps) == 2 and 0.5 <= sleeps[0] <= 0.625 and 1.0 <= sleeps[1] <= 1.25
    assert stats["retries"] == 2 and stats["transient_errors"] == 2 and stats["calls"] == 3


def test_a_rejected_request_is_not_retried():
    with FakeOpenAI(lambda body, n: Reply(status=400)) as server:
        result = _client(server).chat(_request())
    assert not result.ok and result.error_reason == REJECTED and "400" in result.error_message
    assert len(server.requests) == 1


def test_server_down_becomes_unavailable_after_the_retries():
    with FakeOpenAI(lambda body, n: Reply(status=500)) as server:
        result = _client(server, max_retries=2).chat(_request())
    assert not result.ok and result.error_reason == UNAVAILABLE and result.usage.calls == 3
    assert "3 tries failed" in result.error_message


def test_timeouts_are_transient_and_bounded():
    with FakeOpenAI(lambda body, n: Reply("late", delay_s=1.5)) as server:
        result = _client(server, timeout_s=0.3, max_retries=1).chat(_request())
    assert not result.ok and result.error_reason == UNAVAILABLE and result.usage.calls == 2
    assert "Timeout" in result.error_message


def test_invalid_json_walks_the_temperature_schedule():
    def answer(body, n):
        return '{"label": "math"}' if body["temperature"] >= 0.2 else '{"label": "poetry"}'

    with FakeOpenAI(answer) as server:
        result = _client(server).chat(_request(schema=SCHEMA))
    assert result.ok and result.data == {"label": "math"} and result.temperature == 0.2
    assert [r["temperature"] for r in server.requests] == [0.0, 0.2]
    assert result.usage.attempts == 2 and "invalid:schema" in result.usage.flags


def test_every_attempt_invalid_is_a_record_failure_with_the_problem():
    with FakeOpenAI(lambda body, n: "not json at all") as server:
        result = _client(server, temperatures=(0.0, 0.7)).chat(_request(schema=SCHEMA))
    assert not result.ok and result.error_reason == INVALID_OUTPUT and result.problems[0].startswith("not_json")
    assert result.usage.attempts == 2 and len(server.requests) == 2


def test_custom_validator_problems_trigger_a_retry():
    answers = ["short", "a long enough answer"]
    with FakeOpenAI(lambda body, n: answers[n]) as server:
        result = _client(server).chat(_request(), validator=lambda raw, finish: ("too_short",) if len(raw) < 10 else ())
    assert result.ok and result.text == "a long enough answer" and result.usage.attempts == 2


def test_repetition_loop_is_truncated_and_flagged():
    looped = "The result follows from Lemma 2. " + "We repeat this sentence forever and ever. " * 30
    with FakeOpenAI(lambda body, n: Reply(looped, finish_reason="length")) as server:
        result = _client(server).chat(_request())
    assert result.ok and REPETITION_FLAG in result.usage.flags
    assert result.text.count("We repeat this sentence") == 1 and result.text.startswith("The result follows")


def test_structured_output_dialects():
    assert response_format_kwargs("json_schema", SCHEMA, "x")["response_format"]["json_schema"]["schema"] == SCHEMA
    assert response_format_kwargs("llama_cpp", SCHEMA, "x") == {"response_format": {"type": "json_object", "schema": SCHEMA}}
    assert response_format_kwargs("guided_json", SCHEMA, "x") == {"extra_body": {"guided_json": SCHEMA}}
    assert response_format_kwargs("none", SCHEMA, "x") == {} and response_format_kwargs("json_schema", None, "x") == {}
    with FakeOpenAI(lambda body, n: '{"label": "physics"}') as server:
        _client(server).chat(_request(schema=SCHEMA))
        _client(server, structured="guided_json").chat(_request(schema=SCHEMA))
    assert server.requests[0]["response_format"]["type"] == "json_schema"
    assert server.requests[1]["guided_json"] == SCHEMA and "response_format" not in server.requests[1]


def test_chat_many_keeps_order_and_bounds_concurrency():
    gate = threading.Event()

    def answer(body, n):
        gate.wait(0.2)
        return Reply(json.dumps({"echo": body["messages"][0]["content"]}), delay_s=0.05)

    requests = [ChatRequest(key=f"k{i}", messages=({"role": "user", "content": f"m{i}"},), prompt="t@1") for i in range(12)]
    with FakeOpenAI(answer) as server:
        client = _client(server, max_concurrency=3)
        results = client.chat_many(requests)
        client.close()
    assert [json.loads(r.text)["echo"] for r in results] == [f"m{i}" for i in range(12)]
    assert [r.key for r in results] == [f"k{i}" for i in range(12)]
    assert server.max_in_flight == 3


def test_check_endpoint_fails_fast_with_what_to_do():
    with pytest.raises(ConfigError, match="does not answer"):
        check_endpoint(LlmConfig(endpoint="http://127.0.0.1:9/v1", model="m"), timeout_s=1)
    with FakeOpenAI(lambda body, n: "x") as server:
        assert check_endpoint(LlmConfig(endpoint=server.url, model="fake-vlm")) == ["fake-vlm"]
        with pytest.raises(ConfigError, match="not --llm-model 'other'"):
            check_endpoint(LlmConfig(endpoint=server.url, model="other"))
        bare = server.url[: -len("/v1")]
        with pytest.raises(ConfigError, match=f"HTTP 404; .*try --llm-endpoint {bare}/v1"):
            check_endpoint(LlmConfig(endpoint=bare, model="fake-vlm"))


def test_config_validation():
    with pytest.raises(ConfigError, match="http"):
        LlmConfig(endpoint="localhost:8000")
    with pytest.raises(ConfigError, match="temperatures"):
        LlmConfig(temperatures=())
    with pytest.raises(ConfigError, match="local model directory"):
        LlmConfig(backend="vllm")
    assert LlmConfig(backend="embedded").structured_mode == "llama_cpp"
    assert LlmConfig().structured_mode == "json_schema"
