"""The high-cost page parser interface, and how its output replaces a routed page's text.

The router sends the most questionable pages (a few percent) here. The pipeline groups a
document's routed pages, re-reads the source PDF (its sha256 must still equal the doc_id),
and hands the page indices to a `HighCostParser`. Its pages replace the low-cost ones at merge.
A page the high-cost parser fails on keeps its low-cost text, and stays `needs_high_cost`, so
nothing is lost.

Implementations:
- `vlm` (`parsers.vlm`): a Qwen-VL / InternVL class model behind the LLM/VLM access layer
  reads the rendered page and writes Markdown with LaTeX, post-processed by its own rules;
- `mineru-vlm` (`parsers.mineru_vlm`): MinerU 4's own two-step VLM client against a server
  running a MinerU2.5 model;
- `rapidocr`: full-page OCR of the rendered page, in the sandbox; useful for scans and broken
  text layers, no help with formulas.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from typing import Sequence

from scicurate.config import HIGH_COST_PARSERS, ConfigError, PdfConfig
from scicurate.records import STATUS_OK, PageParse, PageResult, PdfInput

REASON_SOURCE_CHANGED = "source_changed"
REASON_HIGH_COST_FAILED = "high_cost_failed"


class HighCostParser(ABC):
    """Parses chosen pages of one document. Load once per worker; never raises for bad input."""

    name: str = ""

    def __init__(self, config: PdfConfig) -> None:
        self.config = config

    @abstractmethod
    def setup(self) -> None:
        """Load models / start processes. Raise ConfigError if the parser cannot run here."""

    @abstractmethod
    def parse_pages(self, pdf: PdfInput, pages: Sequence[int], doc_pages: int) -> dict[int, PageParse]:
        """Parse the 0-based `pages` of `pdf`; every requested index gets a PageParse (ok or failed)."""

    def teardown(self) -> None:
        """Release what `setup` took."""

    def reparse(self, pdf: PdfInput, routed: Sequence[PageResult]) -> list[PageResult]:
        """Routed pages of `pdf` -> their rows after this parser (one per input, same order).
        Block-producing parsers render their blocks with the low-cost rules; the VLM overrides."""
        from scicurate.parsers.postprocess import render_page

        results = self.parse_pages(pdf, [p.page_index for p in routed], routed[0].doc_pages)
        out = []
        for page in routed:
            high = results.get(page.page_index)
            if high is not None and high.status == STATUS_OK:
                rendered = render_page(high.blocks)
                out.append(apply_high_cost(page, high, rendered.markdown, ",".join(rendered.rules)))
            else:
                out.append(apply_high_cost(page, high, "", ""))
        return out


class RapidOcrHighCostParser(HighCostParser):
    """Full-page OCR with RapidOCR on PDFium renders, run in the sandboxed child process."""

    name = "rapidocr"

    def setup(self) -> None:
        from scicurate.parsers.sandbox import SandboxedParser

        self._sandbox = SandboxedParser(self.config)
        self._sandbox.start()

    def parse_pages(self, pdf: PdfInput, pages: Sequence[int], doc_pages: int) -> dict[int, PageParse]:
        return self._sandbox.ocr_pages(pdf, list(pages), doc_pages)

    def teardown(self) -> None:
        sandbox = getattr(self, "_sandbox", None)
        if sandbox is not None:
            sandbox.close()


# name -> "module:Class", imported on use (the VLM parsers import this module).
_REGISTRY: dict[str, str] = {
    "rapidocr": "scicurate.parsers.high_cost:RapidOcrHighCostParser",
    "vlm": "scicurate.parsers.vlm:VlmHighCostParser",
    "mineru-vlm": "scicurate.parsers.mineru_vlm:MineruVlmHighCostParser",
}
assert set(_REGISTRY) == set(HIGH_COST_PARSERS), "config.HIGH_COST_PARSERS lists the registry"


def create(config: PdfConfig) -> HighCostParser:
    import importlib

    try:
        module, cls = _REGISTRY[config.high_cost_parser].split(":")
    except KeyError:
        raise ConfigError(f"unknown high-cost parser {config.high_cost_parser!r}") from None
    return getattr(importlib.import_module(module), cls)(config)


def apply_high_cost(low: PageResult, high: PageParse | None, markdown: str, rules: str,
                    failure: tuple[str, str] | None = None) -> PageResult:
    """The page row after the high-cost parser: its text if it succeeded, else the low-cost row.

    Routing facts (route, reason, score, signals) stay: they say why the page was sent here.
    """
    if high is not None and high.status == STATUS_OK and failure is None:
        return dataclasses.replace(
            low, text=markdown, parser=high.parser, parser_version=high.parser_version, tier=high.tier,
            needs_high_cost=False, postprocess=rules, error_reason="", error_message="",
        )
    if failure is not None:
        reason, message = failure
    elif high is not None:
        reason, message = high.error_reason, high.error_message
    else:
        reason, message = "no_result", "the high-cost parser returned nothing for this page"
    return dataclasses.replace(
        low, needs_high_cost=True, is_fallback=True, error_reason=f"{REASON_HIGH_COST_FAILED}:{reason}",
        error_message=message[:2000],
    )


def reread_source(page: PageResult, source_bytes: bytes | None,
                  read_error: str = "") -> tuple[PdfInput | None, tuple[str, str] | None]:
    """The source re-read from storage for a document's routed pages: (PdfInput, None) when it
    is still the file that was split, else (None, (reason, message)) for the fallback rows."""
    if source_bytes is None:
        return None, ("unreadable", read_error or "source not readable")
    pdf = PdfInput.from_bytes(page.source, source_bytes)
    if pdf.doc_id != page.doc_id:
        return None, (REASON_SOURCE_CHANGED, f"{page.source} changed since it was split "
                                             f"(sha256 {pdf.doc_id[:12]}… != {page.doc_id[:12]}…)")
    return pdf, None


def reparse_routed(parser: HighCostParser, source_bytes: bytes | None, routed: Sequence[PageResult],
                   read_error: str = "") -> list[PageResult]:
    """Re-parse one document's routed pages; returns one PageResult per input page. Pure but for
    the parser call. `source_bytes` is the source re-read from storage (None if that failed)."""
    if not routed:
        return []
    pdf, failure = reread_source(routed[0], source_bytes, read_error)
    if pdf is None:
        return [apply_high_cost(p, None, "", "", failure) for p in routed]
    return parser.reparse(pdf, routed)
