"""End to end: the Beam PDF pipeline over the committed fixtures, on the offline FnApiRunner."""

import json
from pathlib import Path

import apache_beam as beam
import pyarrow.parquet as pq
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions

from scicurate import schema
from scicurate.config import PdfConfig
from scicurate.pipelines import pdf as pdf_pipeline

from conftest import FIXTURE_PDFS

pytestmark = pytest.mark.slow


def run_pipeline(out: Path, config: PdfConfig, pattern: str = str(FIXTURE_PDFS / "*.pdf")):
    pipeline = beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"]))
    pdf_pipeline.build(pipeline, pattern, str(out), config)
    result = pipeline.run()
    result.wait_until_finish()
    counters = {
        (r.key.metric.namespace, r.key.metric.name): r.committed
        for r in result.metrics().query(MetricsFilter())["counters"]
    }
    return counters


def read(out: Path, name: str) -> list[dict]:
    table = pq.read_table(out / name)
    return sorted(table.to_pylist(), key=lambda r: json.dumps(r, sort_keys=True, default=str))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run1")
    counters = run_pipeline(out, PdfConfig())
    return out, counters


def test_every_input_is_accounted_for(run, expected):
    out, _ = run
    summary = json.loads((out / "summary.json").read_text())
    files = expected["files"]
    n_docs = sum(1 for f in files.values() if f["outcome"] == "document")
    n_dead = sum(1 for f in files.values() if f["outcome"] == "dead_letter")
    assert summary["inputs"] == len(files) == 10
    assert summary["documents"] == n_docs == 6
    assert summary["dead_letter"] == n_dead == 4
    assert summary["inputs"] == summary["documents"] + summary["dead_letter"] and summary["accounted"]
    assert summary["dead_letter_reasons"] == {"corrupt": 1, "encrypted": 1, "empty": 1, "not_pdf": 1}
    assert summary["pages"] == sum(f.get("pages", 0) for f in files.values()) == 9
    # 5% of 9 pages rounds to 0 budget places; the scan is routed by the hard rule.
    assert summary["pages_routed"] == 1 and summary["route_reasons"] == {"below_threshold": 8, "no_text_layer": 1}


def test_dead_letter_rows_name_file_stage_reason(run, expected):
    out, _ = run
    rows = read(out, "dead_letter")
    got = {Path(r["source"]).name: (r["level"], r["stage"], r["reason"]) for r in rows}
    want = {name: ("document", "split", f["reason"]) for name, f in expected["files"].items()
            if f["outcome"] == "dead_letter"}
    assert got == want
    assert all(r["message"] for r in rows)


def test_counters_match_outputs(run):
    _, c = run
    assert c[("pdf_read", "read")] == 10
    assert c[("pdf_split", "documents")] == 6
    assert c[("pdf_split", "failed")] == 4
    assert c[("pdf_parse", "pages_ok")] == 9
    assert c[("pdf_parse", "pages_ocr")] == 1
    assert c.get(("pdf_parse", "pages_failed"), 0) == 0
    assert c[("pdf_route", "high_cost")] == 1 and c[("pdf_route", "low_cost")] == 8
    assert c[("pdf_merge", "documents")] == 6


def test_documents_are_page_ordered_markdown_with_spans(run, expected):
    out, _ = run
    docs = {Path(r["source"]).name: r for r in read(out, "documents")}
    text_only = docs["text_only.pdf"]
    assert text_only["num_pages"] == 2 and [s["page_index"] for s in text_only["spans"]] == [0, 1]
    assert expected["hyphenated"]["joined"] in text_only["text"]
    assert expected["hyphenated"]["broken"] not in text_only["text"]
    assert expected["files"]["text_only.pdf"]["running_header"] not in text_only["text"]
    for doc in docs.values():
        for span in doc["spans"]:
            assert 0 <= span["start"] <= span["end"] <= len(doc["text"])
            assert span["route_reason"]
    scan = docs["image_only.pdf"]
    assert scan["spans"][0]["parser"] == "rapidocr" and scan["spans"][0]["route"] == "high_cost"
    for word in expected["ocr_words"]:
        assert word.lower() in scan["text"].lower()


def test_pages_dataset_has_every_page_with_route_and_signals(run):
    out, _ = run
    pages = read(out, "pages")
    assert len(pages) == 9 and len({p["page_id"] for p in pages}) == 9
    by_name = {(Path(p["source"]).name, p["page_index"]): p for p in pages}
    eq = by_name[("equations.pdf", 0)]
    prose = by_name[("text_only.pdf", 1)]
    assert eq["score"] > prose["score"]
    assert eq["signals"]["math_font_ratio"] >= 0 and eq["signals"]["math_unicode_ratio"] > 0.02
    scan = by_name[("image_only.pdf", 0)]
    assert scan["needs_high_cost"] and scan["route_reason"] == "no_text_layer" and scan["score"] == 2.0
    assert not scan["signals"]["has_text_layer"]
    for p in pages:
        assert p["route_reason"] and p["route"] in ("low_cost", "high_cost")
    # Pages and documents agree: a page's text is its span of the document, but for pages left
    # out of it (their span is empty, their row keeps the text that left).
    docs = {r["doc_id"]: r for r in read(out, "documents")}
    for p in pages:
        doc = docs[p["doc_id"]]
        span = doc["spans"][p["page_index"]]
        assert span["removed"] == p["removed"]
        if p["removed"]:
            assert span["start"] == span["end"] and p["text"]
        else:
            assert doc["text"][span["start"]:span["end"]] == p["text"]


def test_copyright_page_repeated_across_papers_is_left_out(run, expected):
    out, _ = run
    pages = read(out, "pages")
    removed = sorted((Path(p["source"]).name, p["page_index"]) for p in pages if p["removed"])
    repeated = sorted((name, i) for name, f in expected["files"].items() for i in f.get("repeated_pages", []))
    assert removed == repeated == [("paper_a.pdf", 1), ("paper_b.pdf", 1)]
    clusters = {p["dedup_cluster"] for p in pages if p["removed"]}
    assert len(clusters) == 1 and all(p["removed"] == "repeated_page" for p in pages if p["removed"])
    assert all(not p["dedup_cluster"] for p in pages if not p["removed"])
    docs = {Path(d["source"]).name: d for d in read(out, "documents")}
    for name in ("paper_a.pdf", "paper_b.pdf"):
        assert docs[name]["pages_removed"] == 1 and "Copyright and Licence" not in docs[name]["text"]
        assert docs[name]["text"].strip()
    summary = json.loads((out / "summary.json").read_text())
    words = sum(len(p["text"].split()) for p in pages if p["status"] == "ok")
    removed_words = sum(len(p["text"].split()) for p in pages if p["removed"])
    assert summary["page_dedup"]["pages_removed"] == 2 and summary["removed_reasons"] == {"repeated_page": 2}
    assert summary["page_dedup"]["words_removed"] == removed_words and summary["page_dedup"]["words"] == words
    assert summary["page_dedup"]["share_pages_removed"] == round(2 / 9, 6)


def test_near_duplicate_documents_are_marked_not_dropped(tmp_path):
    """A second file of paper_a with other bytes (a new Title in its metadata) has another
    doc_id but the same text: the one with the larger doc_id keeps its row with duplicate_of
    naming the other; paper_b, which shares only the licence page, is not marked. Both copies
    keep their pages (all of them repeat across the two, which is copying, not boilerplate)."""
    import shutil

    import pikepdf

    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in ("paper_a.pdf", "paper_b.pdf"):
        shutil.copy(FIXTURE_PDFS / name, inputs / name)
    with pikepdf.open(FIXTURE_PDFS / "paper_a.pdf") as pdf:
        pdf.docinfo["/Title"] = "paper a, second version"
        pdf.save(inputs / "paper_a_v2.pdf")
    out = tmp_path / "out"
    counters = run_pipeline(out, PdfConfig(), str(inputs / "*.pdf"))
    docs = {Path(d["source"]).name: d for d in read(out, "documents")}
    a, a2, b = docs["paper_a.pdf"], docs["paper_a_v2.pdf"], docs["paper_b.pdf"]
    assert a["doc_id"] != a2["doc_id"] and a["text"] == a2["text"] and a["pages_removed"] == 0
    first, second = sorted((a, a2), key=lambda d: d["doc_id"])
    assert first["duplicate_of"] == "" and second["duplicate_of"] == first["doc_id"]
    assert b["duplicate_of"] == "" and b["pages_removed"] == 1
    summary = json.loads((out / "summary.json").read_text())
    assert summary["documents"] == 3 and summary["documents_near_duplicate"] == 1
    # the copy's tokens are written (marked, not removed) and counted as such
    assert 0 < summary["quality"]["tokens_near_duplicate"] < summary["quality"]["tokens_written"]
    assert counters[("dedup_documents", "near_duplicates")] == 1


def test_output_files_have_deterministic_names_and_schemas(run):
    out, _ = run
    for name, sch in (("documents", schema.DOCUMENT_SCHEMA), ("pages", schema.PAGE_SCHEMA),
                      ("dead_letter", schema.DEAD_LETTER_SCHEMA)):
        files = sorted(p.name for p in (out / name).iterdir())
        assert files == ["part-00000-of-00001.parquet"]
        assert pq.read_schema(out / name / files[0]).remove_metadata().equals(sch.remove_metadata())


def test_rerun_gives_the_same_rows(run, tmp_path):
    out, _ = run
    run_pipeline(tmp_path, PdfConfig())
    for name in ("documents", "pages", "dead_letter"):
        assert read(out, name) == read(tmp_path, name), name


def test_budget_is_a_hard_cap(tmp_path):
    run_pipeline(tmp_path, PdfConfig(route_budget=0.25))
    pages = read(tmp_path, "pages")
    top = [p for p in pages if p["route_reason"].startswith("top_score")]
    hard = [p for p in pages if p["route_reason"] == "no_text_layer"]
    assert len(hard) == 1
    assert len(top) + len(hard) <= int(0.25 * len(pages))
    assert all(p["score"] >= max(q["score"] for q in pages if q["route"] == "low_cost") for p in top)


def test_byte_identical_inputs_are_one_document_and_a_dead_letter_each(tmp_path):
    """Three paths, the same bytes (found by fuzzing: the resume store, keyed by content, gave
    the second copy the first's pages, and one input vanished): the smallest path is parsed
    once and the others are dead-lettered."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in ("b.pdf", "a.pdf", "c.pdf"):
        (inputs / name).write_bytes((FIXTURE_PDFS / "paper_a.pdf").read_bytes())
    (inputs / "d.pdf").write_bytes((FIXTURE_PDFS / "table.pdf").read_bytes())
    out = tmp_path / "out"
    run_pipeline(out, PdfConfig(), str(inputs / "*.pdf"))
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["inputs"], summary["documents"], summary["dead_letter"]) == (4, 2, 2) and summary["accounted"]
    docs = read(out, "documents")
    assert sorted(Path(d["source"]).name for d in docs) == ["a.pdf", "d.pdf"]
    dead = read(out, "dead_letter")
    assert sorted((Path(d["source"]).name, d["reason"]) for d in dead) == [
        ("b.pdf", "duplicate_input"), ("c.pdf", "duplicate_input")]
    assert all(str(inputs / "a.pdf") in d["message"] for d in dead)
    assert len(read(out, "pages")) == sum(d["num_pages"] for d in docs)
