"""vLLM for real, on a GPU machine: in-worker vLLM through Beam's VLLMChatModelHandler, and the
VLM page parser against `vllm serve`. Off by default (`-m gpu`); each test skips, with the
reason, unless vLLM is installed (`pip install 'scicurate[gpu]'`), a CUDA device is present, and
SCICURATE_VLLM_MODEL names a local vision-language model directory (nothing is downloaded)."""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request

import apache_beam as beam
import pyarrow.parquet as pq
import pytest
from apache_beam.ml.inference.base import KeyedModelHandler, RunInference
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from scicurate.config import LlmConfig
from scicurate.llm.client import ChatRequest
from scicurate.llm.embedded import free_port
from scicurate.llm.handler import VllmChatHandler

from conftest import FIXTURE_PDFS, ROOT

MODEL = os.environ.get("SCICURATE_VLLM_MODEL", "")


def _why_not() -> str:
    if importlib.util.find_spec("vllm") is None:
        return "vLLM is not installed (pip install 'scicurate[gpu]')"
    if not shutil.which("nvidia-smi") or subprocess.run(["nvidia-smi", "-L"], capture_output=True).returncode:
        return "no CUDA device"
    if not MODEL or not os.path.isdir(MODEL):
        return "SCICURATE_VLLM_MODEL does not name a local model directory"
    return ""


pytestmark = [pytest.mark.gpu, pytest.mark.skipif(bool(_why_not()), reason=_why_not() or "ready")]


def test_in_worker_vllm_through_run_inference():
    config = LlmConfig(backend="vllm", model=MODEL, max_tokens=16, timeout_s=600)
    handler = KeyedModelHandler(VllmChatHandler(config, namespace="gpu_test",
                                                vllm_server_kwargs={"max-model-len": "4096"}))
    requests = [("a", ChatRequest(key="a", messages=({"role": "user", "content": "Say OK."},), prompt="t@1"))]
    with BeamTestPipeline(runner="FnApiRunner") as p:
        out = p | beam.Create(requests) | RunInference(handler) | beam.Map(lambda kv: (kv[0], kv[1].inference.ok))
        assert_that(out, equal_to([("a", True)]))


def test_vlm_pages_through_vllm_serve(tmp_path):
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", MODEL,
                               "--port", str(port), "--max-model-len", "8192", "--served-model-name", "vlm"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2)
                break
            except OSError:
                time.sleep(2)
        proc = subprocess.run([sys.executable, "-m", "scicurate.cli", "run", "pdf", "--input",
                               str(FIXTURE_PDFS / "*.pdf"), "--output", str(tmp_path), "--high-cost", "vlm",
                               "--llm-endpoint", f"http://127.0.0.1:{port}/v1", "--llm-model", "vlm",
                               "--route-budget", "1"], cwd=ROOT, capture_output=True, text=True, timeout=1800)
        assert proc.returncode == 0, proc.stderr[-3000:]
        summary = json.loads(proc.stdout)
        pages = pq.read_table(tmp_path / "pages").to_pylist()
        vlm = [p for p in pages if p["parser"] == "vlm"]
        print(json.dumps({"routed": summary["pages_routed"], "vlm": len(vlm), "fallback": summary["pages_fallback"],
                          "tokens": sum(p["llm"]["completion_tokens"] for p in vlm)}))
        assert len(vlm) >= summary["pages_routed"] // 2
        assert any("$" in p["text"] for p in vlm if "equations" in p["source"])
    finally:
        server.terminate()
        server.wait(60)
