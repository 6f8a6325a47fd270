"""The high-cost parser interface: replacement rules, failure handling, pipeline wiring."""

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from scicurate.config import ConfigError, LlmConfig, PdfConfig
from scicurate.parsers.high_cost import (
    REASON_SOURCE_CHANGED,
    HighCostParser,
    create,
    reparse_routed,
)
from scicurate.records import Block, PageParse, PageResult, PageSignals, sha256_hex

from conftest import FIXTURE_PDFS
from test_pipeline_pdf import run_pipeline


class _Recorder(HighCostParser):
    """A test double of the interface: returns fixed blocks, or fails chosen pages."""

    name = "recorder"

    def __init__(self, fail=()):
        super().__init__(PdfConfig())
        self.fail = set(fail)
        self.calls = []

    def setup(self):
        pass

    def parse_pages(self, pdf, pages, doc_pages):
        self.calls.append(list(pages))
        out = {}
        for i in pages:
            if i in self.fail:
                out[i] = PageParse(doc_id=pdf.doc_id, source=pdf.source, page_index=i, doc_pages=doc_pages,
                                   parser="recorder", parser_version="1", tier="x", status="failed",
                                   error_reason="page_timeout", error_message="too slow")
            else:
                out[i] = PageParse(doc_id=pdf.doc_id, source=pdf.source, page_index=i, doc_pages=doc_pages,
                                   parser="recorder", parser_version="1", tier="x", status="ok",
                                   blocks=(Block("text", f"better text of page {i}"),))
        return out


DATA = b"%PDF-1.4 pretend bytes"


def _routed(i, doc_id=sha256_hex(DATA)):
    return PageResult(doc_id=doc_id, source="s.pdf", page_index=i, doc_pages=3, status="ok", text=f"cheap {i}",
                      parser="mineru", parser_version="4", tier="flash", route="high_cost",
                      route_reason="top_score:empty_equation_blocks", score=0.9, needs_high_cost=False,
                      signals=PageSignals(equation_blocks=2))


def test_high_cost_text_replaces_low_cost_and_keeps_routing_facts():
    parser = _Recorder()
    (page,) = reparse_routed(parser, DATA, [_routed(1)])
    assert page.text == "better text of page 1" and page.parser == "recorder" and not page.needs_high_cost
    assert page.route_reason == "top_score:empty_equation_blocks" and page.score == 0.9
    assert page.signals.equation_blocks == 2
    assert parser.calls == [[1]]


def test_failed_high_cost_page_keeps_low_cost_text_and_stays_marked():
    pages = reparse_routed(_Recorder(fail={2}), DATA, [_routed(0), _routed(2)])
    assert [p.text for p in pages] == ["better text of page 0", "cheap 2"]
    assert pages[1].needs_high_cost and pages[1].error_reason == "high_cost_failed:page_timeout"


def test_changed_source_is_not_parsed():
    parser = _Recorder()
    pages = reparse_routed(parser, DATA + b"edited", [_routed(0)])
    assert parser.calls == [] and pages[0].text == "cheap 0" and pages[0].needs_high_cost
    assert pages[0].error_reason == f"high_cost_failed:{REASON_SOURCE_CHANGED}"


def test_unreadable_source_keeps_pages():
    pages = reparse_routed(_Recorder(), None, [_routed(0)], "FileNotFoundError: gone")
    assert pages[0].text == "cheap 0" and "gone" in pages[0].error_message


def test_unknown_parser_is_a_config_error():
    with pytest.raises(ConfigError, match="available: rapidocr, vlm, mineru-vlm"):
        PdfConfig(high_cost_parser="qwen")
    assert create(PdfConfig(high_cost_parser="rapidocr")).name == "rapidocr"


def test_vlm_parser_needs_a_vision_server():
    with pytest.raises(ConfigError, match="--llm-endpoint URL --llm-model NAME"):
        PdfConfig(high_cost_parser="vlm")
    with pytest.raises(ConfigError, match="read text only"):
        PdfConfig(high_cost_parser="vlm", llm=LlmConfig(backend="embedded"))
    config = PdfConfig(high_cost_parser="vlm", llm=LlmConfig(endpoint="http://127.0.0.1:9/v1", model="m"))
    assert create(config).name == "vlm"
    assert create(config.replace(high_cost_parser="mineru-vlm")).name == "mineru-vlm"


@pytest.mark.slow
def test_pipeline_reparses_routed_pages(tmp_path, expected):
    counters = run_pipeline(tmp_path, PdfConfig(high_cost_parser="rapidocr", route_budget=0.25))
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["accounted"] and summary["documents"] == 6
    assert summary["pages_needs_high_cost"] == 0
    pages = pq.read_table(tmp_path / "pages").to_pylist()
    routed = [p for p in pages if p["route"] == "high_cost"]
    assert 1 <= len(routed) <= int(0.25 * len(pages)) + 1
    assert all(p["parser"] == "rapidocr" and not p["needs_high_cost"] for p in routed)
    assert all(p["parser"] != "rapidocr" for p in pages if p["route"] == "low_cost")
    # With a high-cost parser configured the scan is not OCR'd at low cost, only routed.
    assert counters.get(("pdf_parse", "pages_ocr"), 0) == 0
    assert counters[("pdf_high_cost", "pages_ok")] == len(routed)
    scan = next(p for p in pages if Path(p["source"]).name == "image_only.pdf")
    assert scan["route_reason"] == "no_text_layer" and scan["parser"] == "rapidocr"
    docs = {Path(d["source"]).name: d for d in pq.read_table(tmp_path / "documents").to_pylist()}
    for word in expected["ocr_words"]:
        assert word.lower() in docs["image_only.pdf"]["text"].lower()
