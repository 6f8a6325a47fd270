"""Merge a document's pages, in order, into one document with per-page spans.

Pure core of the `MergeDocuments` stage. Input: every PageResult of one doc_id (from any
number of identical input files). Output: the document, its final page rows (text as it stands
in the document, so spans and page rows agree), and dead letters for what could not be merged.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Iterable

from scicurate.parsers.postprocess import strip_running_lines
from scicurate.records import (
    REASON_ALL_PAGES_FAILED,
    REASON_FALLBACK_RATE,
    REASON_INTERNAL,
    REASON_NO_TEXT,
    ROUTE_HIGH_COST,
    STATUS_FAILED,
    STATUS_OK,
    DeadLetter,
    DocumentResult,
    QUALITY_REMOVED_GARBLED,
    PageResult,
    PageSpan,
)
from scicurate.dedup.pages import REASON_REPEATED_PAGE

STAGE = "merge"
PAGE_SEPARATOR = "\n\n"
DUPLICATE_INPUT = "duplicate_input"


@dataclass(frozen=True, slots=True)
class MergeOutput:
    document: DocumentResult | None
    pages: tuple[PageResult, ...]
    dead_letters: tuple[DeadLetter, ...]


def fallback_verdict(pages: Iterable[PageResult], max_rate: float, min_pages: int) -> str:
    """"" if the document's high-cost results are acceptable, else a message saying why not.

    Rate = pages the high-cost parser was tried on and failed (`is_fallback`) / pages routed
    to it. Only pages it was actually tried on count, so a run without a high-cost parser
    never trips this.
    """
    routed = [p for p in pages if p.route == ROUTE_HIGH_COST and p.status == STATUS_OK]
    fallback = [p for p in routed if p.is_fallback]
    if len(fallback) < min_pages or len(fallback) <= max_rate * len(routed):
        return ""
    reasons = sorted({p.error_reason for p in fallback})
    return (f"the high-cost parser failed on {len(fallback)} of {len(routed)} routed pages "
            f"(> {max_rate:.0%}; {', '.join(reasons)[:300]}); pages kept in the pages dataset")


def removal_guard(pages: list[PageResult], max_removed_share: float) -> list[PageResult]:
    """Pages marked `removed` stay out of the document unless page dedup would take more than
    `max_removed_share` of its parsed pages: then the documents share most of their pages
    (copies or versions of one work, not shared boilerplate) and this one keeps its pages,
    still carrying their `dedup_cluster` for document-level dedup to use. Pages removed as
    garbled never come back: a document that is mostly garbled is filtered whole later."""
    parsed = [p for p in pages if p.status == STATUS_OK]
    removed = [p for p in parsed if p.removed == REASON_REPEATED_PAGE]
    if not removed or len(removed) <= max_removed_share * len(parsed):
        return pages
    return [dataclasses.replace(p, removed="") if p.removed == REASON_REPEATED_PAGE else p for p in pages]


def quality_totals(pages: Iterable[PageResult]) -> dict[str, float | int]:
    """A document's quality figures from its pages: the character-weighted garble score of the
    scored pages, the share of parsed characters on pages removed as garbled, formula and
    scientific-string counts."""
    weighted = chars = garbled = scored_chars = 0.0
    formulas = broken = scistrings = 0
    for page in pages:
        if page.status != STATUS_OK:
            continue
        n = len(page.text)
        chars += n
        q = page.quality
        if q.garble >= 0:
            weighted += q.garble * n
            scored_chars += n
        if page.removed == QUALITY_REMOVED_GARBLED:
            garbled += n
        formulas += max(q.formulas, 0)
        broken += q.formulas_broken
        scistrings += len(q.scistrings)
    return {
        "garble": round(weighted / scored_chars, 6) if scored_chars else -1.0,
        "garbled_share": round(garbled / chars, 6) if chars else 0.0,
        "formulas": formulas, "formulas_broken": broken, "scistrings": scistrings,
    }


def merge_document(doc_id: str, pages: Iterable[PageResult], *, max_fallback_rate: float = 1.0,
                   min_fallback_pages: int = 1, max_removed_share: float = 0.5) -> MergeOutput:
    by_source: dict[str, dict[int, PageResult]] = {}
    for page in pages:
        by_source.setdefault(page.source, {})[page.page_index] = page
    if not by_source:
        raise ValueError(f"no pages for {doc_id}")
    # The same bytes read from several paths are one document; the others are recorded.
    canonical = min(by_source)
    dead: list[DeadLetter] = [
        DeadLetter(doc_id=doc_id, source=other, stage=STAGE, reason=DUPLICATE_INPUT,
                   message=f"byte-identical to {canonical}; kept once under that source")
        for other in sorted(by_source) if other != canonical
    ]
    page_map = by_source[canonical]
    doc_pages = next(iter(page_map.values())).doc_pages
    missing = [i for i in range(doc_pages) if i not in page_map]
    if missing:
        dead.append(DeadLetter(
            doc_id=doc_id, source=canonical, stage=STAGE, reason=REASON_INTERNAL,
            message=f"pages {missing[:10]} of {doc_pages} never reached the merge",
        ))
        return MergeOutput(None, tuple(page_map[i] for i in sorted(page_map)), tuple(dead))

    ordered = removal_guard([page_map[i] for i in range(doc_pages)], max_removed_share)
    texts = [p.text if p.status == STATUS_OK and not p.removed else "" for p in ordered]
    cleaned, removed = strip_running_lines(texts)

    parts: list[str] = []
    spans: list[PageSpan] = []
    final_pages: list[PageResult] = []
    offset = 0
    for page, text in zip(ordered, cleaned):
        text = text.strip()
        if parts and text:
            offset += len(PAGE_SEPARATOR)
            parts.append(PAGE_SEPARATOR)
        start = offset
        if text:
            parts.append(text)
            offset += len(text)
        spans.append(PageSpan(
            page_index=page.page_index, start=start, end=offset, parser=page.parser, tier=page.tier,
            route=page.route, route_reason=page.route_reason, status=page.status,
            is_fallback=page.is_fallback, removed=page.removed,
        ))
        if page.removed:   # the page row keeps the text that left the document
            final_pages.append(page)
        else:
            final_pages.append(dataclasses.replace(page, text=text) if text != page.text else page)
    body = "".join(parts)

    failed = sum(1 for p in ordered if p.status == STATUS_FAILED)
    if failed == len(ordered):
        reasons = sorted({p.error_reason for p in ordered})
        first = ordered[0]
        dead.append(DeadLetter(
            doc_id=doc_id, source=canonical, stage=STAGE, reason=REASON_ALL_PAGES_FAILED,
            message=f"all {len(ordered)} pages failed ({', '.join(reasons)}); page 1: {first.error_message[:300]}",
        ))
        return MergeOutput(None, tuple(final_pages), tuple(dead))
    # A document whose every text page was removed as garbled is still made (empty text,
    # garbled_share 1): the document threshold stage files it under filtered/ with its reason.
    if not body.strip() and not any(p.removed == QUALITY_REMOVED_GARBLED for p in ordered):
        dead.append(DeadLetter(
            doc_id=doc_id, source=canonical, stage=STAGE, reason=REASON_NO_TEXT,
            message=f"{len(ordered)} pages parsed but none produced text (blank or image-only pages without OCR)",
        ))
        return MergeOutput(None, tuple(final_pages), tuple(dead))

    verdict = fallback_verdict(ordered, max_fallback_rate, min_fallback_pages)
    if verdict:
        dead.append(DeadLetter(doc_id=doc_id, source=canonical, stage="high_cost",
                               reason=REASON_FALLBACK_RATE, message=verdict))
        return MergeOutput(None, tuple(final_pages), tuple(dead))

    document = DocumentResult(
        doc_id=doc_id, source=canonical, text=body, num_pages=len(ordered),
        pages_ok=len(ordered) - failed, pages_failed=failed,
        pages_routed=sum(1 for p in ordered if p.route == ROUTE_HIGH_COST),
        spans=tuple(spans), removed_lines=removed,
        pages_fallback=sum(1 for p in ordered if p.is_fallback),
        pages_removed=sum(1 for p in ordered if p.removed),
        **quality_totals(ordered),
    )
    return MergeOutput(document, tuple(final_pages), tuple(dead))
