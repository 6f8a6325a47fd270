"""bench/run.py: interleaving, medians, ratio and the consistency checks (no real benchmarks)."""

import importlib.util
import json
import sys

import pytest

from conftest import ROOT

spec = importlib.util.spec_from_file_location("bench_run", ROOT / "bench" / "run.py")
bench_run = importlib.util.module_from_spec(spec)
sys.modules["bench_run"] = bench_run  # dataclasses look their module up there
spec.loader.exec_module(bench_run)


def _bench(order, ours_items=10, with_ours=True):
    def side(label, items):
        def run(_state):
            order.append(label)
            return items
        return bench_run.Side(label, run)

    return bench_run.Benchmark(
        "fake", "items", lambda _c: "inputs", lambda _i: side("base", 10),
        (lambda _i: side("ours", ours_items)) if with_ours else None, pending="issue 99")


def test_sides_are_interleaved_and_summarised():
    order = []
    result = bench_run.measure(_bench(order), "inputs", repeat=4)
    assert order == ["base", "ours", "ours", "base", "base", "ours", "ours", "base"]
    assert len(result["baseline"]["runs"]) == 4 and result["baseline"]["items"] == 10
    ratio = result["ours"]["median_seconds"] / result["baseline"]["median_seconds"]
    assert result["time_ratio_ours_over_baseline"] == pytest.approx(ratio)
    json.dumps(result)  # serialisable as written to bench/results


def test_different_inputs_on_the_two_sides_is_an_error():
    with pytest.raises(RuntimeError, match="different inputs"):
        bench_run.measure(_bench([], ours_items=9), "inputs", repeat=1)


def test_pending_stage_reports_baseline_only(tmp_path):
    result = bench_run.measure(_bench([], with_ours=False), "inputs", repeat=2)
    assert result["ours"] is None and result["pending"] == "issue 99"
    text = bench_run.table([result], {"cpus": 2, "platform": "x", "python": "3", "repeat": 2})
    assert "not built yet: issue 99" in text and "| fake | 10 items |" in text
    bench_run.plot(result, tmp_path / "fake.png")
    assert (tmp_path / "fake.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
