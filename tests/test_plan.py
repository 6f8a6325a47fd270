"""`scicurate plan`: the pure estimate on a small inline rates dict, and the CLI on the shipped
bench/results/stage_rates.json."""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math

import pytest

from scicurate import plan
from scicurate.config import ConfigError

# Two PDF stages per page, one per document (fitted a + b * pages), one per routed page; a
# whole-run figure above their sum; one web stage. Round numbers so the expected hours are exact.
RATES = {
    "schema": 1,
    "measured_on": {"cpu_model": "Test CPU", "cpus": 2, "date": "2026-12-02", "git_commit": "0" * 40},
    "pdf": {
        "corpus": {"source": "inline", "pages": 100, "pages_per_document": 10.0},
        "stages": [
            {"stage": "read_split", "unit": "document", "units": 10, "cpu_s_per_unit": 0.2,
             "fit_cpu_s_per_document": 0.1, "fit_cpu_s_per_page": 0.01},
            {"stage": "parse_lowcost", "unit": "page", "units": 100, "cpu_s_per_unit": 0.3},
            {"stage": "garble", "unit": "page", "units": 100, "cpu_s_per_unit": 0.05},
            {"stage": "render_for_vlm", "unit": "routed_page", "units": 5, "cpu_s_per_unit": 0.08},
        ],
        "pipeline": {"marginal_cpu_s_per_unit": 0.45, "full": {"main_peak_rss_mib": 1000.0}},
        "memory_mib": {"mineru_child_peak_mib": 700.0, "split_child_peak_mib": 50.0, "katex_child_peak_mib": 50.0},
        "vlm_request": {
            "image_tokens": {"mean": 2500.0}, "text_prompt_tokens": {"mean": 500.0},
            "answer_tokens_routed_pages": {"mean": 600.0}, "answer_tokens_all_pages": {"mean": 800.0},
            "answer_tokens_recorded_vlm": {"mean": 700.0}, "max_tokens": 2048, "tokenizer": "test",
        },
    },
    "web": {
        "corpus": {"source": "inline", "pages": 100},
        "stages": [{"stage": "extract", "unit": "page", "units": 100, "cpu_s_per_unit": 0.04}],
        "pipeline": {"marginal_cpu_s_per_unit": 0.06, "full": {"main_peak_rss_mib": 500.0}},
        "memory_mib": {"extract_child_peak_mib": 100.0},
        "llm_agent": {"prompt_tokens": {"mean": 1500.0}, "completion_tokens": 40},
        "llm_calls": {"triage_calls_per_1000_pages_max": 240.0},
    },
}

N2_16 = plan.CATALOGUE["n2-standard-16"]
L4 = plan.CATALOGUE["g2-standard-8"]


def rates(**changes) -> plan.Rates:
    return plan.rates_from_dict(RATES) if not changes else dataclasses.replace(plan.rates_from_dict(RATES), **changes)


def stage(p: plan.Plan, name: str) -> plan.StageEstimate:
    return next(r for r in p.stages if r.stage == name)


def test_rates_from_dict_reads_stages_fits_and_request_sizes():
    r = rates()
    split = next(s for s in r.pdf.stages if s.stage == "read_split")
    assert (split.unit, split.per_unit, split.per_page) == ("document", 0.1, 0.01)
    assert split.per_page_at(10.0) == pytest.approx(0.02)
    assert r.pdf.whole_cpu_s_per_page == 0.45
    assert r.pdf.lane_memory_mib == 800.0 and r.pdf.worker_process_mib == 1000.0
    assert (r.vlm_image_tokens, r.vlm_text_tokens) == (2500.0, 500.0)
    # the largest of the three measured answer means
    assert r.vlm_answer_tokens == 800.0 and "all pages" in r.vlm_answer_basis
    assert (r.llm_prompt_tokens, r.llm_completion_tokens, r.llm_calls_per_1000_pages) == (1500.0, 40.0, 240.0)


def test_pdf_hours_and_cost_follow_the_rates():
    p = plan.estimate(rates(), plan.Corpus(pdf_pages=1_000_000), N2_16, L4, utilisation=0.5, gpu_utilisation=1.0,
                      vlm_attempts=1.0)
    # 100,000 documents of 10 pages (the measured mean): 0.1 s each + 0.01 s per page
    assert stage(p, "read_split").cpu_hours == pytest.approx((100_000 * 0.1 + 1_000_000 * 0.01) / 3600)
    assert stage(p, "parse_lowcost").cpu_hours == pytest.approx(1_000_000 * 0.3 / 3600)
    # Beam's work: whole run 0.45 s/page - stages 0.02 + 0.3 + 0.05 = 0.08 s/page
    assert stage(p, "beam_overhead").cpu_hours == pytest.approx(1_000_000 * 0.08 / 3600)
    # routed pages only for the render: 5% of the pages
    assert stage(p, "render_for_vlm").units == pytest.approx(50_000)
    # lanes: (64 GiB - 1 GiB) / 1,800 MiB = 35 fit, 16 vCPUs -> 16 lanes at utilisation 0.5
    assert p.pdf_lanes_per_machine == 16
    parse = stage(p, "parse_lowcost")
    assert parse.machine_hours == pytest.approx(parse.cpu_hours / (16 * 0.5))
    assert parse.cost_usd == pytest.approx(parse.machine_hours * N2_16.usd_per_hour)
    # VLM: 3,000 prefill tokens at 3,500/s + 800 decode tokens at 400/s per request on an L4
    vlm = stage(p, "vlm_parse")
    per_request_s = 3000 / 3500 + 800 / 400
    assert p.vlm_requests_per_gpu_hour == pytest.approx(3600 / per_request_s)
    assert vlm.gpu_hours == pytest.approx(50_000 * per_request_s / 3600)
    assert vlm.cost_usd == pytest.approx(vlm.gpu_hours * L4.usd_per_hour)
    assert p.cost_usd == pytest.approx(sum(r.cost_usd for r in p.stages))
    assert p.cost_per_million_pdf_pages == pytest.approx(p.pdf_cost_usd)


def test_everything_scales_linearly_in_pages():
    small = plan.estimate(rates(), plan.Corpus(pdf_pages=1_000_000), N2_16, L4)
    large = plan.estimate(rates(), plan.Corpus(pdf_pages=100_000_000), N2_16, L4)
    for a, b in zip(small.stages, large.stages):
        assert a.stage == b.stage
        assert b.cpu_hours == pytest.approx(100 * a.cpu_hours)
        assert b.gpu_hours == pytest.approx(100 * a.gpu_hours)
        assert b.cost_usd == pytest.approx(100 * a.cost_usd)
    assert large.cost_per_million_pdf_pages == pytest.approx(small.cost_per_million_pdf_pages)


def test_route_budget_changes_only_gpu_hours_and_the_render_of_routed_pages():
    low = plan.estimate(rates(), plan.Corpus(pdf_pages=10_000_000, route_budget=0.05), N2_16, L4)
    high = plan.estimate(rates(), plan.Corpus(pdf_pages=10_000_000, route_budget=0.10), N2_16, L4)
    assert high.gpu_hours == pytest.approx(2 * low.gpu_hours)
    for a, b in zip(low.stages, high.stages):
        if a.stage in ("vlm_parse", "render_for_vlm"):
            assert b.units == pytest.approx(2 * a.units)
        else:
            assert (b.cpu_hours, b.cost_usd) == pytest.approx((a.cpu_hours, a.cost_usd))
    # scans beyond the budget are routed too
    scans = plan.estimate(rates(), plan.Corpus(pdf_pages=10_000_000, route_budget=0.05, scanned_share=0.2), N2_16, L4)
    assert stage(scans, "vlm_parse").units == pytest.approx(0.2 * 10_000_000 * 1.1)


def test_documents_change_the_per_document_stage_only():
    few = plan.estimate(rates(), plan.Corpus(pdf_pages=1_000_000, pdf_documents=10_000), N2_16, L4)
    many = plan.estimate(rates(), plan.Corpus(pdf_pages=1_000_000, pages_per_document=1.0), N2_16, L4)
    assert stage(few, "read_split").cpu_hours == pytest.approx((10_000 * 0.1 + 1_000_000 * 0.01) / 3600)
    assert stage(many, "read_split").cpu_hours == pytest.approx((1_000_000 * 0.1 + 1_000_000 * 0.01) / 3600)
    assert stage(few, "parse_lowcost").cpu_hours == stage(many, "parse_lowcost").cpu_hours


def test_memory_bound_machines_run_fewer_lanes():
    fat = rates(pdf=dataclasses.replace(rates().pdf, lane_memory_mib=3000.0))
    p = plan.estimate(fat, plan.Corpus(pdf_pages=1_000_000), plan.CATALOGUE["n2-standard-8"], L4)
    # (32 GiB - 1 GiB) / 4,000 MiB = 7 lanes on 8 vCPUs
    assert p.pdf_lanes_per_machine == 7
    assert any("memory-bound" in a for a in p.assumptions)
    huge = rates(pdf=dataclasses.replace(rates().pdf, lane_memory_mib=40_000.0))
    with pytest.raises(ConfigError, match="cannot hold one lane"):
        plan.estimate(huge, plan.Corpus(pdf_pages=1), plan.CATALOGUE["n2-standard-8"], L4)


def test_overrides_of_throughput_prices_and_spot():
    base = plan.estimate(rates(), plan.Corpus(pdf_pages=1_000_000), N2_16, L4)
    fixed = plan.estimate(rates(), plan.Corpus(pdf_pages=1_000_000), N2_16, L4, vlm_requests_per_gpu_hour=2000.0,
                          gpu_utilisation=1.0)
    assert stage(fixed, "vlm_parse").gpu_hours == pytest.approx(50_000 * 1.1 / 2000)
    spot = plan.estimate(rates(), plan.Corpus(pdf_pages=1_000_000), N2_16, L4, spot=True)
    assert spot.cpu_hours == pytest.approx(base.cpu_hours) and spot.cost_usd < base.cost_usd
    assert stage(spot, "vlm_parse").cost_usd == pytest.approx(stage(base, "vlm_parse").gpu_hours * L4.usd_per_hour_spot)


def test_web_pages_and_the_llm_sample():
    p = plan.estimate(rates(), plan.Corpus(web_pages=1_000_000), N2_16, L4)
    assert stage(p, "extract").cpu_hours == pytest.approx(1_000_000 * 0.04 / 3600)
    assert stage(p, "beam_overhead").cpu_hours == pytest.approx(1_000_000 * 0.02 / 3600)
    # measured calls per 1,000 pages by default
    assert stage(p, "llm_triage").units == pytest.approx(240_000)
    given = plan.estimate(rates(), plan.Corpus(web_pages=1_000_000, llm_sample=5_000), N2_16, L4)
    assert stage(given, "llm_triage").units == 5_000
    per_domain = plan.estimate(rates(), plan.Corpus(web_pages=1_000_000, web_domains=1_000, llm_sample_per_domain=50),
                               N2_16, L4)
    assert stage(per_domain, "llm_triage").units == 50_000
    # run web's rule on equal domains: 1,000 pages each -> 10% = 100 pages per domain
    rule = plan.estimate(rates(), plan.Corpus(web_pages=1_000_000, web_domains=1_000), N2_16, L4)
    assert stage(rule, "llm_triage").units == 100_000
    assert p.pdf_cost_usd == 0 and p.cost_per_million_web_pages == pytest.approx(p.web_cost_usd)


def test_bad_inputs_are_config_errors():
    with pytest.raises(ConfigError, match="nothing to plan"):
        plan.Corpus()
    with pytest.raises(ConfigError, match="route-budget"):
        plan.Corpus(pdf_pages=10, route_budget=1.5)
    with pytest.raises(ConfigError, match="needs --domains"):
        plan.Corpus(web_pages=10, llm_sample_per_domain=3)
    with pytest.raises(ConfigError, match="no GPU"):
        plan.estimate(rates(), plan.Corpus(pdf_pages=10), N2_16, N2_16)
    no_web = {k: v for k, v in RATES.items() if k != "web"}
    with pytest.raises(ConfigError, match="bench/stage_rates.py"):
        plan.estimate(plan.rates_from_dict(no_web), plan.Corpus(web_pages=10), N2_16, L4)
    broken = copy.deepcopy(RATES)
    del broken["pdf"]["vlm_request"]
    with pytest.raises(ConfigError, match="pdf.vlm_request"):
        plan.rates_from_dict(broken)


def test_missing_rates_file_says_how_to_measure(tmp_path):
    with pytest.raises(ConfigError, match=r"no stage rates at .*nothing\.json.*bench/stage_rates\.py"):
        plan.load_rates(tmp_path / "nothing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="cannot read the stage rates"):
        plan.load_rates(bad)


@pytest.mark.parametrize("name", sorted(plan.CATALOGUE))
def test_catalogue_entries_validate(name):
    m = plan.CATALOGUE[name]
    assert m.name == name and m.vcpus >= 1 and m.memory_gib > 0
    assert 0 < m.usd_per_hour_spot < m.usd_per_hour
    if m.gpus:
        assert m.gpu in plan.GPU_THROUGHPUT
    assert dataclasses.replace(m) == m      # __post_init__ accepts it again
    with pytest.raises(ConfigError):
        dataclasses.replace(m, gpus=0 if m.gpus else 1)


def test_machine_and_throughput_validation():
    with pytest.raises(ConfigError, match="unknown GPU"):
        plan.Machine("x", 4, 16, 1.0, gpu="TPU", gpus=1)
    with pytest.raises(ConfigError, match="usd_per_hour"):
        plan.Machine("x", 4, 16, 0.0)
    with pytest.raises(ConfigError, match="positive"):
        plan.GpuThroughput("L4", 0.0, 1.0, "")
    for t in plan.GPU_THROUGHPUT.values():
        assert t.requests_per_hour(3000, 800) > 0


def _args(**changes) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    plan.add_arguments(p)
    args = p.parse_args([])
    for k, v in changes.items():
        setattr(args, k, v)
    return args


def test_json_output_parses(tmp_path, capsys):
    path = tmp_path / "rates.json"
    path.write_text(json.dumps(RATES))
    assert plan.run(_args(rates=str(path), pdf_pages=1_000_000, web_pages=10_000, json=True)) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["machine"] == plan.DEFAULT_MACHINE and out["gpu_machine"] == plan.DEFAULT_GPU_MACHINE
    assert {s["stage"] for s in out["stages"]} >= {"parse_lowcost", "vlm_parse", "extract", "llm_triage"}
    assert out["cost_usd"] == pytest.approx(sum(s["cost_usd"] for s in out["stages"]))
    assert out["assumptions"] and all(isinstance(a, str) for a in out["assumptions"])


def test_cli_on_the_shipped_rates_prints_the_table_and_assumptions(capsys):
    args = _args(pdf_pages=100_000_000, route_budget=0.05)
    assert plan.run(args) == 0
    out = capsys.readouterr().out
    assert "parse_lowcost" in out and "vlm_parse" in out and "per million pages" in out
    assert "Assumptions:" in out and "list prices" in out and "tokens/s" in out
    p = plan.plan_from_args(args)
    assert p.corpus.pdf_pages == 100_000_000 and p.cost_usd > 0 and p.gpu_hours > 0
    assert math.isfinite(p.cost_per_million_pdf_pages)
    # the shipped rates were measured on a whole run as well as stage by stage
    assert any(s.stage == "beam_overhead" for s in p.stages)


def test_cli_price_override_and_stand_alone_entry(capsys, tmp_path):
    args = _args(pdf_pages=1_000_000, cpu_price=1.0, gpu_price=2.0)
    p = plan.plan_from_args(args)
    vlm = stage(p, "vlm_parse")
    assert vlm.cost_usd == pytest.approx(vlm.machine_hours * 2.0)
    parse = stage(p, "parse_lowcost")
    assert parse.cost_usd == pytest.approx(parse.machine_hours * 1.0)
    assert plan.main(["--pdf-pages", "10", "--rates", str(tmp_path / "none.json")]) == 2
    assert "bench/stage_rates.py" in capsys.readouterr().err
