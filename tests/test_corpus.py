"""Corpus tier: real papers, forms, a scan and broken files from ../shared/corpus (skips when absent).

Each PDF is parsed once per module: the scientific papers with `parse_document` (what
`scicurate parse` runs), and the whole corpus once through the Beam pipeline. Run with `-s` to
see the routing counts and the score's ROC AUC.
"""

import json
import math
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import apache_beam as beam
import pyarrow.parquet as pq
import pypdfium2 as pdfium
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from scicurate.classifiers.metrics import roc_auc
from scicurate.config import PdfConfig
from scicurate.parse_one import ParseFailed, parse_document
from scicurate.pipelines import pdf as pdf_pipeline

pytestmark = [pytest.mark.corpus, pytest.mark.slow]

WORKERS = max(1, min(2, os.cpu_count() or 1))

# A phrase of each paper's title, as the flash tier extracts it from page 1.
SCI_TITLES = {
    "earth_astro-ph.EP_1707.04066v1.pdf": "SIZE DISTRIBUTION OF NEAR EARTH OBJECTS",
    "life_medicine_LDH_surgery_metaanalysis.pdf": "Percutaneous endoscopic lumbar discectomy",
    "math_lecture_notes_de_GeoTopo.pdf": "Geometrie und Topologie",
    "physics_gr-qc_2304.10117.pdf": "first law of black hole mechanics",
    "physics_hep-ph_1508.05632v2.pdf": "ATLAS diboson excess",
    "physics_nucl-th_2301.05883.pdf": "QED corrections to elastic electron-nucleus scattering",
}
# Flash-tier text of the papers runs 1,400 (lecture notes) to 5,000 characters per page.
MIN_CHARS_PER_PAGE = 1000
TITLE_WITHIN_CHARS = 500

# Each malformed file's dead-letter reason and a word its message must contain.
MALFORMED = {
    # Opens fine, but its only content stream fails its Flate checksum.
    "corrupted_zen_of_python.pdf": ("all_pages_failed", "damaged_stream"),
    "encrypted_rc4-128_userpw.pdf": ("encrypted", "password"),
    "invalid_header_eof_only.pdf": ("corrupt", "PDFium"),
}

AUC_MIN = 0.9


def pdfium_pages(path: Path) -> int:
    doc = pdfium.PdfDocument(str(path))
    try:
        return len(doc)
    finally:
        doc.close()


# ---- scicurate parse on the scientific papers -------------------------------------------------

@pytest.fixture(scope="module")
def sci(corpus):
    """file name -> ParsedDocument, each paper parsed once (two papers at a time)."""
    paths = sorted((corpus / "pdf" / "sci").glob("*.pdf"))
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        parsed = list(pool.map(lambda p: parse_document(str(p), PdfConfig()), paths))
    return {p.name: r for p, r in zip(paths, parsed)}


def test_sci_folder_holds_the_papers_this_module_knows(sci):
    assert sorted(sci) == sorted(SCI_TITLES)


@pytest.mark.parametrize("name", sorted(SCI_TITLES))
def test_parse_keeps_every_page_in_order(sci, corpus, name):
    doc = sci[name].document
    n = pdfium_pages(corpus / "pdf" / "sci" / name)
    assert doc.num_pages == n == len(sci[name].pages)
    assert doc.pages_ok == n and doc.pages_failed == 0 and sci[name].dead_letters == ()
    assert [s.page_index for s in doc.spans] == list(range(n))
    assert [p.page_index for p in sci[name].pages] == list(range(n))
    for before, after in zip(doc.spans, doc.spans[1:]):
        assert before.end <= after.start
    for page, span in zip(sci[name].pages, doc.spans):
        assert doc.text[span.start:span.end] == page.text


@pytest.mark.parametrize("name", sorted(SCI_TITLES))
def test_parse_gives_substantial_clean_text_title_first(sci, name):
    doc = sci[name].document
    assert len(doc.text) / doc.num_pages > MIN_CHARS_PER_PAGE
    assert "(cid:" not in doc.text
    title = SCI_TITLES[name]
    first_page = doc.text[doc.spans[0].start:doc.spans[0].end]
    assert title in first_page and doc.text.index(title) < TITLE_WITHIN_CHARS, doc.text[:TITLE_WITHIN_CHARS]


def test_malformed_folder_holds_the_files_this_module_knows(corpus):
    assert sorted(p.name for p in (corpus / "pdf" / "malformed").glob("*.pdf")) == sorted(MALFORMED)


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_parse_malformed_raises_parse_failed_with_reason(corpus, name):
    reason, word = MALFORMED[name]
    with pytest.raises(ParseFailed) as info:
        parse_document(str(corpus / "pdf" / "malformed" / name), PdfConfig())
    assert info.value.reason == reason
    assert word in info.value.message


# ---- the Beam pipeline over the whole corpus -----------------------------------------------------

def read(out: Path, name: str) -> list[dict]:
    return pq.read_table(out / name).to_pylist()


@pytest.fixture(scope="module")
def corpus_run(corpus, tmp_path_factory):
    """(summary, documents, pages, dead_letter, input files) of one pipeline run over pdf/*/*.pdf."""
    out = tmp_path_factory.mktemp("corpus_run")
    pattern = str(corpus / "pdf" / "*" / "*.pdf")
    options = PipelineOptions([
        "--runner=FnApiRunner", f"--direct_num_workers={WORKERS}", "--direct_running_mode=multi_threading",
    ])
    pipeline = beam.Pipeline(options=options)
    pdf_pipeline.build(pipeline, pattern, str(out), PdfConfig())
    pipeline.run().wait_until_finish()
    summary = json.loads((out / "summary.json").read_text())
    inputs = sorted((corpus / "pdf").glob("*/*.pdf"))
    return summary, read(out, "documents"), read(out, "pages"), read(out, "dead_letter"), inputs


def test_every_corpus_file_is_accounted_for(corpus_run):
    summary, docs, _, dead, inputs = corpus_run
    document_dead = [d for d in dead if d["level"] == "document"]
    assert summary["inputs"] == len(inputs) == len(docs) + len(document_dead)
    assert summary["inputs"] == summary["documents"] + summary["dead_letter"] and summary["accounted"]
    names = sorted(Path(d["source"]).name for d in docs + document_dead)
    assert names == sorted(p.name for p in inputs)  # each file exactly once, as a document or a dead letter


def test_only_the_malformed_files_are_dead_lettered(corpus_run):
    summary, _, _, dead, _ = corpus_run
    got = {Path(d["source"]).name: d["reason"] for d in dead if d["level"] == "document"}
    assert got == {name: reason for name, (reason, _) in MALFORMED.items()}
    assert summary["dead_letter_reasons"] == {reason: 1 for reason, _ in MALFORMED.values()}
    pages = [(Path(d["source"]).name, d["page_index"], d["reason"]) for d in dead if d["level"] == "page"]
    assert pages == [("corrupted_zen_of_python.pdf", 0, "damaged_stream")]


def test_documents_have_every_page_pdfium_sees(corpus_run):
    _, docs, pages, _, _ = corpus_run
    for doc in docs:
        n = pdfium_pages(Path(doc["source"]))
        assert doc["num_pages"] == n and [s["page_index"] for s in doc["spans"]] == list(range(n)), doc["source"]
    good = {d["doc_id"] for d in docs}
    assert sum(d["num_pages"] for d in docs) == sum(1 for p in pages if p["doc_id"] in good)


def test_routing_stays_within_budget_and_every_page_says_why(corpus_run):
    summary, _, pages, _, _ = corpus_run
    no_text = [p for p in pages if not p["signals"]["has_text_layer"]]
    routed = [p for p in pages if p["route"] == "high_cost"]
    budget = math.floor(PdfConfig().route_budget * len(pages))
    print(f"\ncorpus run: {len(pages)} pages, {len(routed)} routed (budget {budget}, "
          f"{len(no_text)} without a text layer); route reasons {summary['route_reasons']}")
    assert len(pages) == summary["pages"]
    assert len(routed) == summary["pages_routed"] <= budget + len(no_text)
    assert all(p["route_reason"] for p in pages)
    assert {p["route_reason"].split(":", 1)[0] for p in routed} <= {"top_score", "no_text_layer"}


def test_the_scan_is_ocrd_and_routed_for_having_no_text_layer(corpus_run):
    _, _, pages, _, _ = corpus_run
    scans = [p for p in pages if Path(p["source"]).parent.name == "scanned"]
    assert len(scans) == 1
    scan = scans[0]
    assert not scan["signals"]["has_text_layer"] and scan["parser"] == "rapidocr"
    assert scan["route"] == "high_cost" and scan["route_reason"] == "no_text_layer" and scan["needs_high_cost"]
    assert len(scan["text"]) > 500  # OCR read the page while it waits for the high-cost parser


def test_parse_and_pipeline_give_the_same_document_text(corpus_run, sci):
    _, docs, _, _, _ = corpus_run
    by_name = {Path(d["source"]).name: d for d in docs}
    for name, parsed in sci.items():
        assert by_name[name]["text"] == parsed.document.text, name
        assert by_name[name]["doc_id"] == parsed.document.doc_id


def test_page_score_separates_formula_pages_from_prose(corpus_run):
    _, _, pages, _, _ = corpus_run
    folder = {p["page_id"]: Path(p["source"]).parent.name for p in pages}
    positives = [p["score"] for p in pages if folder[p["page_id"]] == "formula_bench"]
    negatives = [p["score"] for p in pages if folder[p["page_id"]] == "neg"
                 or Path(p["source"]).name == "life_medicine_LDH_surgery_metaanalysis.pdf"]
    assert len(positives) == 15 and len(negatives) == 6 + 12
    auc = roc_auc(positives, negatives)
    print(f"\npage score ROC AUC, formula_bench ({len(positives)}) vs neg + medicine ({len(negatives)}): {auc:.3f}")
    assert auc >= AUC_MIN
