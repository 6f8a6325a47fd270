"""scicurate.report: the HTML report of a run directory.

Unit tests build a tiny run directory by hand (Parquet written with the schemas of
`scicurate.schema`, a summary.json, optionally run_info.json). The render test opens the
report in headless Chromium (Debian: `apt-get install -y chromium`) and skips when no
Chromium or Chrome binary is on PATH.
"""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from scicurate import schema
from scicurate.records import DeadLetter, PageResult
from scicurate.report import (
    COLOURS, MAX_DEAD_LETTER_ROWS, ReportError, accounting, build_report, load_run, write_report,
)

HOSTILE = "<script>alert(1)</script>"
HOSTILE_SOURCE = 'papers/"><img src=x onerror=alert(2)>.pdf'


def _page(doc: str, source: str, index: int, pages: int, score: float, route: str = "low_cost",
          reason: str = "below_threshold", parser: str = "mineru", status: str = "ok",
          error_reason: str = "") -> dict:
    return schema.page_row(PageResult(
        doc_id=doc, source=source, page_index=index, doc_pages=pages, status=status, text="text",
        parser=parser, parser_version="1", tier="flash" if parser == "mineru" else "ocr", route=route,
        route_reason=reason, score=score, needs_high_cost=route == "high_cost", error_reason=error_reason,
        error_message=error_reason))


def _document(doc: str, source: str, pages: int) -> dict:
    return {"doc_id": doc, "source": source, "text": "t", "num_pages": pages, "pages_ok": pages,
            "pages_failed": 0, "pages_routed": 0, "removed_lines": 0, "pages_fallback": 0, "pages_removed": 0, "duplicate_of": "", "garble": 0.0, "garbled_share": 0.0,
            "formulas": 0, "formulas_broken": 0, "scistrings": 0, "edu_score": -1.0, "edu_model": "", "spans": []}


def _dead(doc: str, source: str, reason: str, message: str, page_index: int | None = None,
          stage: str = "split") -> dict:
    return DeadLetter(doc_id=doc, source=source, stage=stage, reason=reason, message=message,
                      page_index=page_index).to_row()


def _write(run: Path, name: str, table_schema: pa.Schema, rows: list[dict], parts: int = 1) -> None:
    shutil.rmtree(run / name, ignore_errors=True)
    (run / name).mkdir(parents=True)
    for i in range(parts):
        chunk = rows[i::parts]
        pq.write_table(pa.Table.from_pylist(chunk, schema=table_schema),
                       run / name / f"part-{i:05d}-of-{parts:05d}.parquet")


def make_run(run: Path, *, accounted: bool = True, run_info: dict | None = None, empty: bool = False) -> Path:
    """4 inputs: 2 documents (3 pages, one of them failed, one routed) and 2 dead-lettered files."""
    if empty:
        documents, pages, dead = [], [], []
    else:
        documents = [_document("d1", "papers/a.pdf", 2), _document("d2", HOSTILE_SOURCE, 1)]
        pages = [
            _page("d1", "papers/a.pdf", 0, 2, 0.91, "high_cost", "top_score:math_font_ratio+cid_ratio"),
            _page("d1", "papers/a.pdf", 1, 2, 0.0, status="failed", reason="failed", error_reason="page_timeout"),
            _page("d2", HOSTILE_SOURCE, 0, 1, 2.0, "high_cost", "no_text_layer", parser="rapidocr"),
        ]
        dead = [
            _dead("d3", "papers/enc.pdf", "encrypted", HOSTILE),
            _dead("d4", "papers/junk.pdf", "not_pdf", "no %PDF- header & <b>bold</b>"),
            _dead("d1", "papers/a.pdf", "page_timeout", "ran past 60 s", page_index=1, stage="parse"),
        ]
    _write(run, "documents", schema.DOCUMENT_SCHEMA, documents)
    _write(run, "pages", schema.PAGE_SCHEMA, pages, parts=1 if empty else 2)
    _write(run, "dead_letter", schema.DEAD_LETTER_SCHEMA, dead)
    summary = {
        "inputs": 0 if empty else 4, "documents": len(documents),
        "dead_letter": sum(d["level"] == "document" for d in dead),
        "dead_letter_pages": sum(d["level"] == "page" for d in dead), "pages": len(pages),
        "pages_routed": sum(p["route"] == "high_cost" for p in pages),
        "pages_needs_high_cost": sum(p["needs_high_cost"] for p in pages),
        "dead_letter_reasons": {} if empty else {"encrypted": 1, "not_pdf": 1},
        "page_failure_reasons": {} if empty else {"page_timeout": 1},
        "route_reasons": {}, "pages_status": {}, "parsers": {},
        "accounted": accounted, "config": {"tier": "flash", "route_budget": 0.05},
    }
    if not accounted:
        summary["inputs"] += 1
    (run / "summary.json").write_text(json.dumps(summary))
    if run_info is not None:
        (run / "run_info.json").write_text(json.dumps(run_info))
    return run


RUN_INFO = {"wall_seconds": 1.5, "runner": "FnApiRunner", "tier": "flash", "inputs": 4,
            "scicurate_version": "0.1.0"}


def _pngs(page: str) -> list[bytes]:
    return [base64.b64decode(b) for b in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)]


@pytest.fixture(scope="module")
def timed_run(tmp_path_factory) -> Path:
    return make_run(tmp_path_factory.mktemp("timed"), run_info=RUN_INFO)


@pytest.fixture(scope="module")
def timed_page(timed_run) -> str:
    return build_report(str(timed_run))


@pytest.fixture(scope="module")
def untimed_page(tmp_path_factory) -> str:
    return build_report(str(make_run(tmp_path_factory.mktemp("untimed"))))


# ---- unit tests ------------------------------------------------------------------------------

def test_report_shows_counts_reasons_and_ok(timed_page):
    page = timed_page
    assert page.startswith("<!DOCTYPE html>")
    assert re.search(r'id="accounting"><b>OK</b>accounting identity: inputs 4 = documents 2 \+ filtered 0 \+ dead letters 2', page)
    assert "BROKEN" not in page
    for label, value in (("inputs", 4), ("documents", 2), ("dead letters", 2), ("dead-letter pages", 1),
                         ("pages", 3), ("pages routed", 2)):
        assert f'<div class="label">{label}</div><div class="value">{value}</div>' in page, label
    assert "2.00 pages/s" in page  # 3 pages / 1.5 s
    assert "runner FnApiRunner" in page and "scicurate 0.1.0" in page
    for reason in ("encrypted", "not_pdf", "page_timeout", "no_text_layer", "top_score:math_font_ratio+cid_ratio"):
        assert f">{reason}<" in page, reason
    assert page.count("— match") == 4 and "MISMATCH" not in page


def test_plots_are_embedded_pngs(timed_page):
    from PIL import Image

    page = timed_page
    images = _pngs(page)
    # route, route reason, top_score signals, score histogram, parser, dead-letter reasons, pages/doc
    assert len(images) == page.count("<img ") == 7
    for data in images:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            assert img.width > 300 and img.height > 100
            assert len(img.convert("RGB").getcolors(1 << 20)) > 10
    for external in ("http://", "https://", "<script", "<link", "@import", "url("):
        assert external not in page.lower(), external


def test_report_is_deterministic(timed_run, timed_page):
    assert build_report(str(timed_run)) == timed_page


def test_untrusted_text_is_escaped(untimed_page):
    page = untimed_page
    assert HOSTILE not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img src=x" not in page and "onerror=alert" not in page.replace("onerror=alert(2)&gt;", "")
    assert "papers/&quot;&gt;&lt;img src=x onerror=alert(2)&gt;.pdf" in page
    assert "&lt;b&gt;bold&lt;/b&gt;" in page and "<b>bold</b>" not in page
    assert "<script" not in page.lower()
    assert "default-src 'none'; img-src data:" in page  # CSP: nothing loads even if escaping failed


def test_zero_row_datasets_render_none(tmp_path):
    page = build_report(str(make_run(tmp_path, empty=True)))
    assert "<b>OK</b>" in page and "inputs 0 = documents 0 + filtered 0 + dead letters 0" in page
    assert '<p class="none">dead letters: none</p>' in page
    assert '<p class="none">pages: none</p>' in page
    assert '<p class="none">documents: none</p>' in page
    assert "<img " not in page


def test_missing_dataset_directory_is_reported_not_fatal(tmp_path):
    run = make_run(tmp_path)
    shutil.rmtree(run / "dead_letter")
    page = build_report(str(run))
    assert "dead_letter/ is missing" in page
    assert "dead letters (document): summary 2, Parquet rows 0 — MISMATCH" in page


def test_missing_run_info_means_throughput_unknown(untimed_page):
    page = untimed_page
    assert "throughput unknown: no run_info.json" in page
    assert "pages/s" not in page


def test_bad_run_info_means_throughput_unknown(tmp_path):
    run = make_run(tmp_path)
    (run / "run_info.json").write_text("{not json")
    assert "run_info.json is not valid JSON" in build_report(str(run))
    (run / "run_info.json").write_text(json.dumps({"wall_seconds": 0, "runner": "x"}))
    assert "no positive wall_seconds" in build_report(str(run))


def test_unaccounted_run_is_broken(tmp_path):
    page = build_report(str(make_run(tmp_path, accounted=False)))
    assert re.search(r'class="identity broken" id="accounting"><b>BROKEN</b>', page)
    assert "inputs 5 ≠ documents 2 + filtered 0 + dead letters 2" in page
    assert "accounted = false" in page


@pytest.mark.parametrize("summary, ok", [
    ({"inputs": 3, "documents": 2, "dead_letter": 1, "accounted": True}, True),
    ({"inputs": 3, "documents": 2, "dead_letter": 1, "accounted": False}, False),  # flag wins
    ({"inputs": 3, "documents": 1, "dead_letter": 1, "accounted": True}, False),   # numbers win
    ({"documents": 2, "dead_letter": 1, "accounted": True}, False),                # cannot check
    ({"inputs": 4, "documents": 2, "filtered": 1, "dead_letter": 1, "accounted": True}, True),
    ({"inputs": 3, "documents": 2, "filtered": 1, "dead_letter": 1, "accounted": True}, False),
])
def test_accounting_needs_flag_and_arithmetic(summary, ok):
    assert accounting(summary).ok is ok


def test_top_pages_sorted_by_score_and_capped(tmp_path):
    run = make_run(tmp_path)
    pages = [_page(f"x{i:02d}", f"p{i:02d}.pdf", 0, 1, i / 100) for i in range(30)]
    _write(run, "pages", schema.PAGE_SCHEMA, pages, parts=3)
    page = build_report(str(run))
    top = page.split("Top 20 pages")[1].split("<h2>")[0]
    sources = re.findall(r'<td class="src">(p\d\d\.pdf)</td>', top)
    assert sources == [f"p{i:02d}.pdf" for i in range(29, 9, -1)]


def test_dead_letter_table_is_capped(tmp_path, monkeypatch):
    import scicurate.report as report

    monkeypatch.setattr(report, "MAX_DEAD_LETTER_ROWS", 2)
    assert MAX_DEAD_LETTER_ROWS > 1000  # the default keeps every row of an ordinary run
    page = build_report(str(make_run(tmp_path)))
    assert "1 more dead-letter rows not shown" in page


def test_write_report_default_and_explicit_path(tmp_path):
    run = make_run(tmp_path / "run")
    assert write_report(str(run)) == str(run / "report.html")
    assert (run / "report.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    out = tmp_path / "elsewhere.html"
    assert write_report(str(run), str(out)) == str(out)
    assert out.read_bytes() == (run / "report.html").read_bytes()


def test_not_a_run_directory(tmp_path):
    with pytest.raises(ReportError, match="no summary.json"):
        build_report(str(tmp_path))


def test_unsupported_file_system_says_so():
    with pytest.raises(ReportError, match=r"nosuchfs:// paths are unsupported"):
        build_report("nosuchfs://bucket/run")


def test_load_run_reads_part_files(tmp_path):
    run = load_run(str(make_run(tmp_path)))
    assert run.pages.num_rows == 3 and run.documents.num_rows == 2 and run.dead_letter.num_rows == 3
    assert run.run_info is None and run.problems == ()


# ---- headless browser render -----------------------------------------------------------------

def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no chromium/chromium-browser/google-chrome on PATH (Debian: apt-get install -y chromium)")


def _headless(browser: str, tmp: Path, *args: str) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--no-first-run", "--hide-scrollbars", f"--user-data-dir={tmp / 'profile'}"]
    return subprocess.run([browser, *flags, *args], capture_output=True, text=True, timeout=120, check=False)


def _near(rgb: tuple[int, int, int], hex_colour: str, tol: int = 6) -> bool:
    target = tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return all(abs(a - b) <= tol for a, b in zip(rgb, target))


def test_report_renders_in_headless_chromium(tmp_path):
    from PIL import Image

    browser = _chromium()
    report = Path(write_report(str(make_run(tmp_path / "run", run_info=RUN_INFO))))
    url = report.resolve().as_uri()

    shot = tmp_path / "shot.png"
    proc = _headless(browser, tmp_path, f"--screenshot={shot}", "--window-size=1200,2000", url)
    assert shot.exists(), f"no screenshot; chromium said:\n{proc.stderr[-2000:]}"
    with Image.open(shot) as img:
        rgb = img.convert("RGB")
        assert rgb.size == (1200, 2000)
        colours = rgb.getcolors(1 << 24)
    assert len(colours) > 200, "screenshot is (nearly) blank"
    non_white = sum(n for n, c in colours if c != (255, 255, 255))
    assert non_white / (1200 * 2000) > 0.05
    # The plots' bar colours reach the screen only if the browser decoded the embedded PNGs.
    for name in ("low_cost", "high_cost", "document"):
        painted = sum(n for n, c in colours if _near(c, COLOURS[name]))
        assert painted > 500, f"{name} bars ({COLOURS[name]}) not on screen: images not rendered?"

    proc = _headless(browser, tmp_path, "--dump-dom", url)
    dom = proc.stdout
    assert "scicurate run report" in dom, proc.stderr[-2000:]
    assert re.search(r"<b>OK</b>\s*accounting identity: inputs 4 = documents 2 \+ filtered 0 \+ dead letters 2", dom)
    assert len(re.findall(r'<img src="data:image/png;base64,', dom)) == 7
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom and HOSTILE not in dom


def test_vlm_runs_show_fallbacks_and_llm_calls(tmp_path):
    run = make_run(tmp_path / "run", run_info=RUN_INFO)
    summary = json.loads((run / "summary.json").read_text())
    plain = Path(write_report(str(run))).read_text()
    assert "VLM fallbacks" not in plain        # a run without a VLM shows no VLM cards
    summary.update(pages_fallback=2, llm_calls=7, llm_exceptions=1)
    (run / "summary.json").write_text(json.dumps(summary))
    html = Path(write_report(str(run))).read_text()
    assert re.search(r"VLM fallbacks.*?>2<", html, re.S) and re.search(r"LLM calls.*?>7<", html, re.S)
    assert "1 batch exceptions" in html
