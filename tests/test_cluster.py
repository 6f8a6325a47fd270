"""Cluster wiring that needs no cluster: the GPU resource hint lands on the model stages only."""

from __future__ import annotations

import apache_beam as beam
import pytest

from scicurate.config import ConfigError, LlmConfig, PdfConfig
from scicurate.web_config import WebConfig

HINT = "type:nvidia-l4;count:1;install-nvidia-driver"
ACCELERATOR_URN = "beam:resources:accelerator:v1"


def _hinted_transforms(build) -> tuple[set[str], set[str]]:
    """(top-level stage labels whose transforms run in a hinted environment, all top-level labels)."""
    pipeline = beam.Pipeline()
    build(pipeline)
    proto = pipeline.to_runner_api()
    hinted_envs = {eid for eid, env in proto.components.environments.items()
                   if env.resource_hints.get(ACCELERATOR_URN) == HINT.encode()}
    hinted, labels = set(), set()
    for t in proto.components.transforms.values():
        if not t.unique_name:
            continue
        top = t.unique_name.split("/", 1)[0]
        labels.add(top)
        if t.environment_id in hinted_envs:
            hinted.add(top)
    return hinted, labels


def test_only_the_in_worker_vlm_stage_asks_for_a_gpu():
    from scicurate.pipelines import pdf

    config = PdfConfig(high_cost_parser="vlm", gpu_accelerator=HINT,
                       llm=LlmConfig(backend="vllm", model="/models/qwen2.5-vl-7b"))
    hinted, labels = _hinted_transforms(lambda p: pdf.build(p, "/nonexistent/*.pdf", "/tmp/out", config))
    assert hinted == {"AskVlm"} and {"ParseLowCost", "ScoreGarble", "RenderRouted"} <= labels


def test_only_the_in_worker_agent_and_rewriter_ask_for_a_gpu():
    from scicurate.pipelines import web

    llm = LlmConfig(backend="vllm", model="/models/qwen2.5-7b")
    config = WebConfig(gpu_accelerator=HINT, llm=llm, rewrite_llm=llm)
    hinted, labels = _hinted_transforms(lambda p: web.build(p, "/nonexistent/*.jsonl", "/tmp/out", config))
    assert hinted == {"AskTriageAgent", "AskRewriter"} and "ExtractText" in labels


def test_without_a_hint_nothing_asks_for_a_gpu():
    from scicurate.pipelines import pdf

    config = PdfConfig(high_cost_parser="vlm", llm=LlmConfig(backend="vllm", model="/m"))
    assert _hinted_transforms(lambda p: pdf.build(p, "/x/*.pdf", "/tmp/out", config))[0] == set()


def test_a_gpu_hint_without_an_in_worker_model_is_refused():
    with pytest.raises(ConfigError, match="needs --llm-backend vllm"):
        PdfConfig(high_cost_parser="vlm", gpu_accelerator=HINT,
                  llm=LlmConfig(backend="endpoint", endpoint="http://gpu:8000/v1", model="m"))
    with pytest.raises(ConfigError, match="accelerator hint"):
        PdfConfig(high_cost_parser="vlm", gpu_accelerator="nvidia-l4",
                  llm=LlmConfig(backend="vllm", model="/m"))
    with pytest.raises(ConfigError):
        WebConfig(gpu_accelerator=HINT, agent=False)
