"""`scicurate report`: built from a hand-made run directory, and rendered by headless Chromium."""

import base64
import json
import re
import shutil
import subprocess

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from scicurate import schema
from scicurate.records import DeadLetter, PageResult, PageSignals
from scicurate.report import ReportError, build_report, write_report

HOSTILE = "<script>alert(1)</script>"


def _page(i, score, route="low_cost", reason="below_threshold", source="a.pdf"):
    return schema.page_row(PageResult(
        doc_id="d" * 64, source=source, page_index=i, doc_pages=3, status="ok", text="t", parser="mineru",
        parser_version="4", tier="flash", route=route, route_reason=reason, score=score,
        needs_high_cost=route == "high_cost", signals=PageSignals()))


def make_run(tmp_path, *, accounted=True, dead=True, run_info=True):
    run = tmp_path / "run"
    for name in ("documents", "pages", "dead_letter"):
        (run / name).mkdir(parents=True)
    pages = [_page(0, 0.1), _page(1, 0.95, "high_cost", "top_score:empty_equation_blocks"), _page(2, 0.3)]
    pq.write_table(pa.Table.from_pylist(pages, schema=schema.PAGE_SCHEMA), run / "pages" / "part-00000-of-00001.parquet")
    doc = {"doc_id": "d" * 64, "source": "a.pdf", "text": "t\n\nt\n\nt", "num_pages": 3, "pages_ok": 3,
           "pages_failed": 0, "pages_routed": 1, "removed_lines": 0, "spans": []}
    pq.write_table(pa.Table.from_pylist([doc], schema=schema.DOCUMENT_SCHEMA),
                   run / "documents" / "part-00000-of-00001.parquet")
    rows = [DeadLetter(doc_id="e" * 64, source=f"{HOSTILE}.pdf", stage="split", reason="encrypted",
                       message=f"needs a password {HOSTILE}").to_row()] if dead else []
    pq.write_table(pa.Table.from_pylist(rows, schema=schema.DEAD_LETTER_SCHEMA),
                   run / "dead_letter" / "part-00000-of-00001.parquet")
    summary = {"inputs": 2 if accounted else 5, "documents": 1, "dead_letter": 1 if dead else 0,
               "dead_letter_pages": 0, "pages": 3, "pages_routed": 1, "pages_needs_high_cost": 1,
               "dead_letter_reasons": {"encrypted": 1} if dead else {}, "page_failure_reasons": {},
               "route_reasons": {"below_threshold": 2, "top_score": 1}, "pages_status": {"ok": 3},
               "parsers": {"mineru": 3}, "accounted": accounted, "config": {"tier": "flash"}}
    (run / "summary.json").write_text(json.dumps(summary))
    if run_info:
        (run / "run_info.json").write_text(json.dumps({"wall_seconds": 1.5, "runner": "FnApiRunner",
                                                       "tier": "flash", "inputs": 2, "scicurate_version": "0.1.0"}))
    return run


def _images(html):
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([^"]+)"', html)]


def test_report_shows_counts_reasons_and_plots(tmp_path):
    html = build_report(str(make_run(tmp_path)))
    assert "OK" in html and "inputs 2 = documents 1 + dead letters 1" in html
    assert "encrypted" in html and "top_score:empty_equation_blocks" in html
    assert "2.00 pages/s" in html  # 3 pages in 1.5 s
    images = _images(html)
    assert len(images) >= 4 and all(img[:8] == b"\x89PNG\r\n\x1a\n" and len(img) > 2000 for img in images)
    assert "https://" not in html and "<script" not in html.replace("&lt;script", "")


def test_untrusted_text_is_escaped(tmp_path):
    html = build_report(str(make_run(tmp_path)))
    assert HOSTILE not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_broken_accounting_is_flagged(tmp_path):
    html = build_report(str(make_run(tmp_path, accounted=False)))
    assert "BROKEN" in html and "inputs 5" in html


def test_empty_dead_letters_and_no_run_info_render(tmp_path):
    html = build_report(str(make_run(tmp_path, dead=False, run_info=False)))
    assert "Dead letters (0)" in html and "throughput unknown" in html


def test_missing_summary_is_a_clear_error(tmp_path):
    with pytest.raises(ReportError, match="summary.json"):
        build_report(str(tmp_path))


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no Chromium binary (CI installs Debian's chromium; `apt-get install -y chromium`)")


def test_report_renders_in_headless_chromium(tmp_path):
    from PIL import Image

    browser = _chromium()
    report = write_report(str(make_run(tmp_path)))
    shot = tmp_path / "shot.png"
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run",
             f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,2000"]
    subprocess.run([*flags, f"--screenshot={shot}", f"file://{report}"], check=True, timeout=120,
                   capture_output=True)
    image = Image.open(shot).convert("RGB")
    assert image.size == (1200, 2000)
    colours = image.getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 50  # text and plots, not a blank page
    non_white = sum(count for count, rgb in colours if rgb != (255, 255, 255))
    assert non_white > 0.02 * 1200 * 2000
    dom = subprocess.run([*flags, "--dump-dom", f"file://{report}"], check=True, timeout=120,
                         capture_output=True, text=True).stdout
    assert "scicurate run report" in dom and "accounting identity" in dom and dom.count("<img") >= 4
