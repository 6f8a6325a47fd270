"""Crash and resume: a run killed with SIGKILL and rerun with the same command writes what an
uninterrupted run writes, and skips the work the killed run finished (scicurate.resume)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from scicurate.config import ConfigError
from scicurate.resume import RESUME_DIR, RunOutput, WorkStore, check_apart, count_entries

from conftest import FIXTURE_PDFS

ROOT = Path(__file__).resolve().parents[1]


# -- the store -----------------------------------------------------------------------------------

def test_a_saved_unit_loads_back_and_a_damaged_one_is_redone(tmp_path):
    store = WorkStore.for_stage(str(tmp_path), "parse", {"tier": "flash"})
    assert store.load("ab12") is None
    assert store.save("ab12", [{"page": 1, "text": "é ∑"}])
    assert store.load("ab12") == [{"page": 1, "text": "é ∑"}]
    path = Path(store.path("ab12"))
    assert path.parent.parent.parent.name == RESUME_DIR and not list(path.parent.glob("*.tmp-*"))
    path.write_bytes(path.read_bytes()[:10])            # a half-written file from a killed run
    assert store.load("ab12") is None
    assert count_entries(str(tmp_path)) == 1


def test_other_settings_never_reuse_a_unit(tmp_path):
    flash = WorkStore.for_stage(str(tmp_path), "parse", {"tier": "flash"})
    basic = WorkStore.for_stage(str(tmp_path), "parse", {"tier": "basic"})
    flash.save("cd34", {"x": 1})
    assert basic.load("cd34") is None and flash.load("cd34") == {"x": 1}


@pytest.mark.parametrize("key", ["", "../../etc/passwd", "a/b", "AB"])
def test_keys_cannot_name_a_path_outside_the_store(tmp_path, key):
    with pytest.raises(ValueError):
        WorkStore.for_stage(str(tmp_path), "parse", {}).path(key)


# -- the output folder's life cycle --------------------------------------------------------------

def _earlier_run(out: Path) -> None:
    (out / "documents" / "beam-temp-part-0f3a").mkdir(parents=True)
    (out / "documents" / "beam-temp-part-0f3a" / "0f3a.parquet").write_bytes(b"half")
    (out / "documents" / "part-00000-of-00004.parquet").write_bytes(b"old")
    (out / "recalled" / "physics").mkdir(parents=True)
    (out / "recalled" / "physics" / "part-00000-of-00001.parquet").write_bytes(b"old")
    (out / "summary.json").write_text("{}")
    (out / "notes.txt").write_text("mine")


def test_an_output_folder_is_cleared_of_an_earlier_runs_state_but_not_of_resume_units(tmp_path):
    _earlier_run(tmp_path)
    WorkStore.for_stage(str(tmp_path), "parse", {}).save("ab", 1)
    with RunOutput(str(tmp_path), [str(FIXTURE_PDFS / "paper_a.pdf")]) as run:
        assert run.resumed_units == 1
        assert not (tmp_path / "summary.json").exists()
        assert not list(tmp_path.rglob("part-*.parquet")) and not list(tmp_path.rglob("beam-temp-*"))
        assert (tmp_path / "notes.txt").exists() and (tmp_path / RESUME_DIR).exists()
    assert not (tmp_path / RESUME_DIR).exists()        # a finished run leaves no resume units


def test_a_failed_run_keeps_its_resume_units(tmp_path):
    WorkStore.for_stage(str(tmp_path), "llm", {}).save("ab", 1)
    with pytest.raises(RuntimeError), RunOutput(str(tmp_path), []):
        raise RuntimeError("killed")
    assert count_entries(str(tmp_path)) == 1


def test_no_resume_forgets_an_earlier_runs_units(tmp_path):
    WorkStore.for_stage(str(tmp_path), "llm", {}).save("ab", 1)
    with RunOutput(str(tmp_path), [], resume=False) as run:
        assert run.resumed_units == 0 and not (tmp_path / RESUME_DIR).exists()


def test_a_run_never_reads_from_inside_its_own_output(tmp_path):
    with pytest.raises(ConfigError, match="holds this run's input"):
        check_apart([str(tmp_path / "pages" / "part-00000-of-00001.parquet")], str(tmp_path))
    with pytest.raises(ConfigError):
        check_apart([str(tmp_path)], str(tmp_path) + "/")
    check_apart([str(tmp_path) + "-other/x.pdf"], str(tmp_path))


# -- model answers ---------------------------------------------------------------------------------

class _CountingClient:
    model = "m"

    def __init__(self):
        self.asked: list[str] = []

    def chat_many(self, batch, validator=None):
        from scicurate.llm.client import ChatResult
        from scicurate.records import LlmUsage

        self.asked += [r.key for r in batch]
        return [ChatResult(key=r.key, prompt=r.prompt, model=self.model, ok="bad" not in r.key,
                           text=f"answer to {r.messages[0]['content']}", problems=("p",),
                           usage=LlmUsage(calls=1, prompt_tokens=3)) for r in batch]

    def take_stats(self):
        return {}


def test_model_answers_a_killed_run_received_are_not_asked_again(tmp_path):
    from scicurate.config import LlmConfig
    from scicurate.llm.client import ChatRequest
    from scicurate.llm.handler import _answer

    store = WorkStore.for_stage(str(tmp_path), "web_triage", {"model": "m"})
    config = LlmConfig(endpoint="http://x/v1", model="m")

    def ask(*keys):
        return [ChatRequest(key=k, messages=({"role": "user", "content": k.split(":")[0]},), prompt="p@1") for k in keys]

    first = _CountingClient()
    _answer(ask("a:1", "bad:2"), first, None, "web_triage", config, store)
    again = _CountingClient()
    results = _answer(ask("c:3", "a:4", "bad:5"), again, None, "web_triage", config, store)
    # "a" was answered before (under another record key: the answer is keyed by the request);
    # the failed "bad" answer was not kept, so it is asked again
    assert again.asked == ["c:3", "bad:5"]
    assert [r.key for r in results] == ["c:3", "a:4", "bad:5"]
    assert results[1].text == "answer to a" and results[1].problems == ("p",) and results[1].usage.prompt_tokens == 3


# -- end to end: SIGKILL mid-run, rerun, same rows ----------------------------------------------------

def _long_pdf(path: Path, pages: int) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=11)
    for n in range(pages):
        pdf.add_page()
        pdf.multi_cell(0, 6, f"Section {n + 1}. " + " ".join(
            f"The measured value of sample {n}-{i} was {(n * 37 + i * 11) % 97} units at {20 + i % 9} kelvin."
            for i in range(12)))
    pdf.output(str(path))


def _rows(out: Path) -> dict[str, list[str]]:
    datasets = {}
    for folder in sorted(p for p in out.iterdir() if p.is_dir()):
        files = sorted(folder.glob("part-*.parquet"))
        if files:
            rows = [json.dumps(r, sort_keys=True, default=str) for f in files for r in pq.read_table(f).to_pylist()]
            datasets[folder.name] = sorted(rows)
    return datasets


@pytest.mark.slow
def test_a_run_killed_mid_parse_and_rerun_writes_what_an_uninterrupted_run_writes(tmp_path):
    from scicurate import cli

    inputs = tmp_path / "in"
    inputs.mkdir()
    for pdf in FIXTURE_PDFS.glob("*.pdf"):
        (inputs / pdf.name).write_bytes(pdf.read_bytes())
    _long_pdf(inputs / "long.pdf", 24)
    flags = ["run", "pdf", "--input", str(inputs / "*.pdf"), "--window-pages", "1", "--tokenizer", "words"]

    clean = tmp_path / "clean"
    assert cli.main(flags + ["--output", str(clean)]) == 0

    out = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "scicurate.cli", *flags, "--output", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True, env=env)
    try:
        deadline = time.monotonic() + 240
        while count_entries(str(out)) < 3:
            assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read()[-2000:]!r}"
            assert time.monotonic() < deadline, "no parsed window saved within 240 s"
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)     # the run and its parser processes, as an OOM killer would
        proc.wait(timeout=30)
    saved = count_entries(str(out))
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "summary.json").exists() and 3 <= saved < 33  # killed mid-way: 33 pages to parse

    assert cli.main(flags + ["--output", str(out)]) == 0
    info = json.loads((out / "run_info.json").read_text())
    assert info["resumed_units"] == saved
    print(f"killed after {saved} of 33 page windows were saved; the rerun reused {info['resumed_units']}")
    assert not (out / RESUME_DIR).exists()
    assert _rows(out) == _rows(clean) and set(_rows(clean)) >= {"documents", "pages", "dead_letter"}
    summary, expected = (json.loads((d / "summary.json").read_text()) for d in (out, clean))
    assert summary == expected and summary["accounted"] and summary["inputs"] == 11


def test_a_window_resumed_under_another_path_is_that_paths(tmp_path):
    """A killed run saved a window of a.pdf; the rerun reads the same bytes as b.pdf."""
    from scicurate.config import PdfConfig
    from scicurate.parsers.sandbox import page_to_json
    from scicurate.pipelines.pdf_steps import ParseWindow
    from scicurate.records import PageParse, PageWindow, TextLayerStats

    store = WorkStore.for_stage(str(tmp_path), "parse", {})
    doc = "ab" * 32
    page = PageParse(doc_id=doc, source="/old/a.pdf", page_index=0, doc_pages=1, parser="mineru",
                     parser_version="4", tier="flash", status="ok", blocks=(),
                     text_layer=TextLayerStats(chars=5, math_font_chars=0, image_area_ratio=0.0, text="hello"),
                     error_reason="", error_message="", seconds=0.1)
    store.save(f"{doc}-000000-0001", [page_to_json(page)])
    step = ParseWindow(PdfConfig(), store)
    window = PageWindow(doc_id=doc, source="/new/b.pdf", first_page=0, num_pages=1, doc_pages=1, pdf_bytes=b"%PDF-")
    [resumed] = step._parse(window)
    assert resumed.source == "/new/b.pdf" and resumed.text_layer.text == "hello"
