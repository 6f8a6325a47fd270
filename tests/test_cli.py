"""The `scicurate` command line on the committed fixtures: exit codes, stdout, one-line errors.

Most tests run the CLI as a real subprocess (`python -m scicurate.cli`), because what is on
stdout and stderr, and the exit status, are the contract with the user's shell.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from scicurate import cli
from scicurate.records import ROUTES

from conftest import FIXTURE_PDFS, FIXTURES, ROOT

TEXT_ONLY = str(FIXTURE_PDFS / "text_only.pdf")
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())
BAD_FIXTURES = sorted((name, f["reason"]) for name, f in EXPECTED["files"].items() if f["outcome"] == "dead_letter")

# First sentence of each page of text_only.pdf (tests/fixtures/make_fixtures.py).
PAGE_1_START = "Abstract. We report measurements"
PAGE_2_START = "2. Methods. Polystyrene"
PAGE_2_END = "3. Results."


def scicurate(*args: str, timeout: float = 180, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run `python -m scicurate.cli ARGS` from the repository root; never hangs the suite."""
    try:
        return subprocess.run(
            [sys.executable, "-m", "scicurate.cli", *args], cwd=ROOT, env=env,
            capture_output=True, text=True, timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"`scicurate {' '.join(args)}` did not finish within {timeout:.0f} s")


def stderr_lines(proc: subprocess.CompletedProcess) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.strip()]


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    """The single `scicurate: ...` line a failed command must print, and nothing else."""
    lines = stderr_lines(proc)
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{proc.stderr}"
    assert lines[0].startswith("scicurate: "), lines[0]
    return lines[0]


# ---- scicurate parse ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def markdown() -> subprocess.CompletedProcess:
    return scicurate("parse", TEXT_ONLY, "-q")


@pytest.mark.slow
def test_parse_prints_page_ordered_markdown(markdown):
    assert markdown.returncode == 0, markdown.stderr
    assert markdown.stderr == ""  # -q: no progress bar, no log lines
    text = markdown.stdout
    assert 0 <= text.index(PAGE_1_START) < text.index(PAGE_2_START) < text.index(PAGE_2_END)


@pytest.mark.slow
def test_parse_joins_hyphenation_and_drops_page_furniture(markdown):
    text = markdown.stdout
    assert EXPECTED["hyphenated"]["joined"] in text
    assert EXPECTED["hyphenated"]["broken"] not in text and "\ufffe" not in text
    assert EXPECTED["files"]["text_only.pdf"]["running_header"] not in text
    page_numbers = set(EXPECTED["files"]["text_only.pdf"]["page_numbers"])
    assert not page_numbers & {line.strip() for line in text.splitlines()}


@pytest.fixture(scope="module")
def to_file(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    out = tmp_path_factory.mktemp("parse") / "OUT.md"
    return scicurate("parse", TEXT_ONLY, "-o", str(out)), out


@pytest.mark.slow
def test_parse_output_flag_writes_the_markdown_to_a_file(to_file, markdown):
    proc, out = to_file
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    assert out.read_text(encoding="utf-8") == markdown.stdout


@pytest.mark.slow
def test_parse_without_quiet_shows_a_progress_bar_on_stderr(to_file):
    proc, _ = to_file
    # tqdm's bar for the document's 2 pages (cleared at the end: leave=False).
    assert "page" in proc.stderr and "/2 [" in proc.stderr, proc.stderr


@pytest.mark.slow
def test_parse_json_has_document_pages_and_dead_letter(capsys, markdown):
    assert cli.main(["parse", TEXT_ONLY, "--json", "-q"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"document", "pages", "dead_letter"}
    doc, pages = out["document"], out["pages"]
    assert doc["num_pages"] == 2 == len(pages) and doc["pages_ok"] == 2 and doc["pages_failed"] == 0
    assert out["dead_letter"] == []
    assert [p["page_index"] for p in pages] == [0, 1] == [s["page_index"] for s in doc["spans"]]
    for page, span in zip(pages, doc["spans"]):
        assert page["route"] in ROUTES and page["route_reason"] and page["route_reason"] == span["route_reason"]
        assert isinstance(page["score"], float) and page["score"] >= 0
        assert page["signals"]["has_text_layer"] and page["signals"]["text_layer_chars"] > 500
        # The Markdown output is the document text: each page's text is its span of it.
        assert markdown.stdout[span["start"]:span["end"]] == page["text"]


@pytest.mark.parametrize("name,reason", BAD_FIXTURES)
def test_parse_bad_file_exits_1_with_one_line_reason(name, reason):
    proc = scicurate("parse", str(FIXTURE_PDFS / name), "-q")
    assert proc.returncode == 1
    assert proc.stdout == ""
    line = one_error_line(proc)
    assert f"{name}: {reason}: " in line


def test_parse_missing_file_exits_nonzero_with_one_line_reason(tmp_path):
    missing = tmp_path / "no_such.pdf"
    proc = scicurate("parse", str(missing), "-q")
    assert proc.returncode != 0
    line = one_error_line(proc)
    assert str(missing) in line and "unreadable" in line and "No such file" in line


def test_parse_rejects_beam_flags():
    proc = scicurate("parse", TEXT_ONLY, "-q", "--direct_num_workers=1")
    assert proc.returncode == 2
    assert "unrecognised arguments: --direct_num_workers=1" in proc.stderr


# ---- bad configuration and missing models: fatal, before any input is read -------------------

@pytest.mark.parametrize("command", [
    ("run", "pdf", "--input", str(FIXTURE_PDFS / "t*.pdf"), "--output", "{out}"),
    ("parse", TEXT_ONLY, "-q"),
], ids=["run", "parse"])
def test_bad_config_exits_2_naming_the_field(command, tmp_path):
    out = tmp_path / "out"
    proc = scicurate(*(a.format(out=out) for a in command), "--route-budget", "2")
    assert proc.returncode == 2
    line = one_error_line(proc)
    assert "route_budget" in line and "2.0" in line
    assert not out.exists()


def _no_models_env(tmp_path: Path) -> dict:
    """A MinerU home with no models in it, whatever this machine has installed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINERU_")}
    env["MINERU_HOME"] = str(tmp_path / "mineru-home")
    return env


@pytest.mark.slow
@pytest.mark.parametrize("command", [
    ("run", "pdf", "--input", str(FIXTURE_PDFS / "t*.pdf"), "--output", "{out}"),
    ("parse", TEXT_ONLY, "-q"),
], ids=["run", "parse"])
def test_basic_tier_without_models_fails_fast_and_says_what_to_do(command, tmp_path):
    out = tmp_path / "out"
    env = _no_models_env(tmp_path)
    proc = scicurate(*(a.format(out=out) for a in command), "--tier", "basic", timeout=120, env=env)
    assert proc.returncode == 2, proc.stderr
    line = one_error_line(proc)
    assert "models" in line and "mineru-models-download" in line and "--tier flash" in line
    assert not out.exists()  # failed before the pipeline touched the output
    downloaded = [p for p in Path(env["MINERU_HOME"]).rglob("*") if p.is_file() and p.stat().st_size > 1 << 20]
    assert downloaded == []  # nothing fetched without --allow-model-download


# ---- scicurate run pdf ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def run_pdf(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    out = tmp_path_factory.mktemp("run") / "out"
    return scicurate("run", "pdf", "--input", "tests/fixtures/pdf/t*.pdf", "--output", str(out)), out


@pytest.mark.slow
def test_run_pdf_prints_the_summary_json(run_pdf):
    proc, _ = run_pdf
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert {"documents", "inputs", "dead_letter", "pages", "pages_routed"} <= set(summary)
    assert "config" not in summary
    names = [n for n in EXPECTED["files"] if n.startswith("t")]  # table.pdf, text_only.pdf
    assert summary["inputs"] == summary["documents"] == len(names) == 2
    assert summary["dead_letter"] == 0 and summary["accounted"] is True
    assert summary["pages"] == sum(EXPECTED["files"][n]["pages"] for n in names) == 3
    assert summary["pages_routed"] == 0


@pytest.mark.slow
def test_run_pdf_writes_four_datasets_and_the_summary(run_pdf):
    proc, out = run_pdf
    assert sorted(p.name for p in out.iterdir()) == [
        "dead_letter", "documents", "filtered", "pages", "run_info.json", "summary.json"]
    info = json.loads((out / "run_info.json").read_text())
    assert info["inputs"] == 2 and info["tier"] == "flash" and info["wall_seconds"] > 0
    assert info["runner"] == "FnApiRunner"
    for name in ("dead_letter", "documents", "filtered", "pages"):
        assert [p.name for p in (out / name).iterdir()] == ["part-00000-of-00001.parquet"]
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk.pop("config")["input"] == "tests/fixtures/pdf/t*.pdf"
    assert on_disk == json.loads(proc.stdout)


def test_run_pdf_with_no_matching_input_exits_2(tmp_path):
    out = tmp_path / "out"
    proc = scicurate("run", "pdf", "--input", "nomatch/*.pdf", "--output", str(out))
    assert proc.returncode == 2
    line = one_error_line(proc)
    assert "no files match" in line and "nomatch/*.pdf" in line
    assert not out.exists()


@pytest.mark.slow
def test_run_pdf_passes_unknown_flags_to_beam(tmp_path):
    out = tmp_path / "out"
    proc = scicurate("run", "pdf", "--input", TEXT_ONLY, "--output", str(out), "--direct_num_workers=1")
    assert proc.returncode == 0, proc.stderr
    assert "Unparseable argument" not in proc.stderr  # Beam knew the flag: it was passed, not dropped
    assert json.loads(proc.stdout)["pages"] == 2
