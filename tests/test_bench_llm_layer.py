"""bench/llm_layer.py: both sides send the same requests; a tiny real run gives a sane result."""

import importlib.util
import json
import sys

import pytest

from conftest import ROOT
from fake_openai import FakeOpenAI, Reply

spec = importlib.util.spec_from_file_location("bench_llm_layer", ROOT / "bench" / "llm_layer.py")
llm_layer = importlib.util.module_from_spec(spec)
sys.modules["bench_llm_layer"] = llm_layer  # dataclasses look their module up there
spec.loader.exec_module(llm_layer)


def test_workload_is_deterministic_and_distinct():
    first, again = llm_layer.workload(6), llm_layer.workload(6)
    assert first == again
    assert len({r.messages[0]["content"] for r in first}) == 6
    assert all(r.json_schema is None for r in first)
    assert all(r.json_schema == llm_layer.FIELD_SCHEMA for r in llm_layer.workload(3, schema=True))


@pytest.mark.parametrize("schema", [False, True])
def test_both_sides_send_identical_requests_at_the_same_concurrency(schema):
    answer = '{"field": "biology"}' if schema else "seven"
    work = llm_layer.workload(6, schema=schema)
    bodies = {}
    for cls in (llm_layer.BareOpenAI, llm_layer.OurLayer):
        with FakeOpenAI(lambda body, n: Reply(answer, completion_tokens=3, delay_s=0.05)) as server:
            side = cls(server.url, server.model, 2, 16)
            tally = side.run(side.prepare(work))
            side.close()
        assert tally == llm_layer.Tally(answered=6, http_calls=6, completion_tokens=18, failed=0)
        assert server.max_in_flight == 2
        bodies[cls.__name__] = sorted(json.dumps(b, sort_keys=True) for b in server.requests)
    assert bodies["BareOpenAI"] == bodies["OurLayer"]
    sent = json.loads(bodies["OurLayer"][0])
    assert (sent["max_tokens"], sent["temperature"], sent["seed"]) == (16, 0.0, 0)
    assert ("response_format" in sent) is schema


def test_tiny_run_against_the_embedded_server():
    missing = llm_layer.available()
    if missing:
        pytest.skip(missing)
    from scicurate.llm.embedded import EmbeddedServer

    with EmbeddedServer("smollm2") as server:
        result = llm_layer.measure_layer(server.url, server.model.alias, requests=4, concurrency=2,
                                         repeats=1, max_tokens=8, log=lambda line: None)
    base, ours = result["baseline"], result["ours"]
    assert base["items"] == ours["items"] == 4
    for side in (base, ours):
        assert side["median_items_per_s"] > 0 and side["median_tokens_per_s"] > 0
        assert len(side["runs"]) == 1 and 0 < side["completion_tokens"][0] <= 4 * 8
    assert result["time_ratio_ours_over_baseline"] == pytest.approx(ours["median_seconds"] / base["median_seconds"])
    assert result["overhead_pct"] == pytest.approx(100 * (result["time_ratio_ours_over_baseline"] - 1))
    assert result["equal_work"] == (base["completion_tokens"] == ours["completion_tokens"])
    assert len(result["repeat_time_ratios"]) == 1
    assert "time ratio ours/baseline" in llm_layer.table(result)
    json.dumps(result)  # serialisable as written to bench/results
