"""Thin Beam shells around the PDF pipeline's pure cores. Wiring lives in `pipelines.pdf`."""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any, Iterable, Iterator

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.pvalue import TaggedOutput

from scicurate.classifiers import router
from scicurate.classifiers.page_signals import detect, reasons as signal_reasons, score
from scicurate.config import PdfConfig
from scicurate.merge import DUPLICATE_INPUT, merge_document
from scicurate.parsers.postprocess import render_page
from scicurate.pipelines.quality_steps import quality_summary
from scicurate.pipelines.summary import CountSummary
from scicurate.records import (
    REASON_INTERNAL,
    REASON_PAGE_TIMEOUT,
    REASON_PARSER_CRASH,
    REASON_TOO_LARGE,
    REASON_UNREADABLE,
    STATUS_FAILED,
    STATUS_OK,
    DeadLetter,
    DocumentResult,
    PageParse,
    PageResult,
    PageSignals,
    PageWindow,
    PdfInput,
    sha256_hex,
)

FAILED = "failed"
_LOG = logging.getLogger("scicurate.pdf")


class ReadPdf(beam.DoFn):
    """ReadableFile -> PdfInput (id = sha256 of the bytes); unreadable/oversized -> failed."""

    def __init__(self, config: PdfConfig) -> None:
        self.config = config
        self.read = Metrics.counter("pdf_read", "read")
        self.failed = Metrics.counter("pdf_read", "failed")

    def process(self, readable) -> Iterator[Any]:
        path = readable.metadata.path
        size = readable.metadata.size_in_bytes
        if size is not None and size > self.config.max_bytes:
            self.failed.inc()
            yield TaggedOutput(FAILED, DeadLetter(
                doc_id=sha256_hex(path.encode("utf-8")), source=path, stage="read", reason=REASON_TOO_LARGE,
                message=f"{size} bytes exceeds max_bytes={self.config.max_bytes}; not read",
            ))
            return
        try:
            data = readable.read()
        except Exception as exc:  # noqa: BLE001 - a file we cannot read is a record error
            self.failed.inc()
            yield TaggedOutput(FAILED, DeadLetter(
                doc_id=sha256_hex(path.encode("utf-8")), source=path, stage="read",
                reason=REASON_UNREADABLE, message=f"{type(exc).__name__}: {exc}",
            ))
            return
        self.read.inc()
        yield PdfInput.from_bytes(path, data)


class _SandboxDoFn(beam.DoFn):
    """Owns one sandboxed process per DoFn instance (one per worker thread)."""

    LOAD_PARSER = True

    def __init__(self, config: PdfConfig) -> None:
        self.config = config
        self._sandbox = None

    def setup(self) -> None:
        from scicurate.parsers.sandbox import SandboxedParser

        self._sandbox = SandboxedParser(self.config, load_parser=self.LOAD_PARSER)
        info = self._sandbox.start()
        if self.LOAD_PARSER:
            _LOG.info("low-cost parser ready: MinerU %s, tier %s (pid %s)",
                      info.get("mineru"), info.get("tier"), info.get("pid"))

    def teardown(self) -> None:
        if self._sandbox is not None:
            self._sandbox.close()
            self._sandbox = None


class SplitPdf(_SandboxDoFn):
    """PdfInput -> PageWindow*; a document that cannot be split -> failed DeadLetter."""

    LOAD_PARSER = False

    def __init__(self, config: PdfConfig) -> None:
        super().__init__(config)
        self.windows = Metrics.counter("pdf_split", "windows")
        self.documents = Metrics.counter("pdf_split", "documents")
        self.failed = Metrics.counter("pdf_split", "failed")

    def process(self, pdf: PdfInput) -> Iterator[Any]:
        from scicurate.parsers.split import DocumentError

        try:
            count = 0
            for window in self._sandbox.split(pdf):  # type: ignore[union-attr]
                count += 1
                self.windows.inc()
                yield window
            self.documents.inc()
        except DocumentError as exc:
            self.failed.inc()
            Metrics.counter("pdf_split", f"failed_{exc.reason}").inc()
            yield TaggedOutput(FAILED, DeadLetter(
                doc_id=pdf.doc_id, source=pdf.source, stage="split", reason=exc.reason, message=exc.message,
            ))


def window_key(window: PageWindow) -> tuple[tuple[str, int], PageWindow]:
    return (window.doc_id, window.first_page), window


class OneCopyPerWindow(beam.DoFn):
    """((doc_id, first_page), [PageWindow]) -> the window of the smallest source path; each other
    copy (a byte-identical input under another path) -> one failed DeadLetter `duplicate_input`,
    from its first window. Parsing each window once also keeps the resume store (keyed by
    content) from handing one copy's saved pages to the other, which lost a document unseen."""

    def __init__(self) -> None:
        self.duplicates = Metrics.counter("pdf_split", "duplicate_inputs")

    def process(self, element) -> Iterator[Any]:
        (doc_id, first_page), windows = element
        copies = sorted(windows, key=lambda w: w.source)
        yield copies[0]
        if first_page != 0:
            return
        for other in sorted({w.source for w in copies[1:]} - {copies[0].source}):
            self.duplicates.inc()
            yield TaggedOutput(FAILED, DeadLetter(
                doc_id=doc_id, source=other, stage="split", reason=DUPLICATE_INPUT,
                message=f"byte-identical to {copies[0].source}; kept once under that source"))


class ParseWindow(_SandboxDoFn):
    """PageWindow -> PageParse per page (failed pages included, never dropped).

    Synchronous on purpose: keeping one window in flight and emitting the last in
    finish_bundle corrupted elements under the FnApiRunner's multi-process mode, so the
    parser's begin/finish API is not used here until that is understood.
    """

    # Failures a rerun may not repeat (an overloaded machine, a killed child): never saved.
    UNSETTLED = (REASON_PAGE_TIMEOUT, REASON_PARSER_CRASH, REASON_INTERNAL)

    def __init__(self, config: PdfConfig, store=None) -> None:
        super().__init__(config)
        self.store = store          # scicurate.resume.WorkStore: windows finished by a killed run
        self.windows_resumed = Metrics.counter("pdf_parse", "windows_resumed")
        self.pages_ok = Metrics.counter("pdf_parse", "pages_ok")
        self.pages_failed = Metrics.counter("pdf_parse", "pages_failed")
        self.pages_ocr = Metrics.counter("pdf_parse", "pages_ocr")
        self._done = 0
        self._started = 0.0
        self._last_log = 0.0

    def start_bundle(self) -> None:
        if not self._started:
            self._started = time.monotonic()

    def process(self, window: PageWindow) -> Iterator[PageParse]:
        pages = self._parse(window)
        for page in pages:
            if page.status == STATUS_FAILED:
                self.pages_failed.inc()
                Metrics.counter("pdf_parse", f"failed_{page.error_reason}").inc()
            else:
                self.pages_ok.inc()
                if page.parser == "rapidocr":
                    self.pages_ocr.inc()
        self._done += len(pages)
        now = time.monotonic()
        if now - self._last_log > 10:
            self._last_log = now
            rate = self._done / max(1e-6, now - self._started)
            _LOG.info("parsed %d pages in this worker (%.2f pages/s)", self._done, rate)
        yield from pages

    def _parse(self, window: PageWindow) -> list[PageParse]:
        """The window's pages: from the resume store when a killed run finished this window,
        else parsed (and saved unless a failure might not repeat)."""
        from scicurate.parsers.sandbox import page_from_json, page_to_json

        key = f"{window.doc_id}-{window.first_page:06d}-{window.num_pages:04d}"
        if self.store is not None:
            saved = self.store.load(key)
            if saved is not None:
                self.windows_resumed.inc()
                # The key is a content hash: the saved pages may name another path that held the
                # same bytes in a killed run; they belong to this window's file.
                return [dataclasses.replace(page_from_json(d), source=window.source) for d in saved]
        pages = self._sandbox.parse_window(window)  # type: ignore[union-attr]
        if self.store is not None and not any(p.error_reason in self.UNSETTLED for p in pages):
            self.store.save(key, [page_to_json(p) for p in pages])
        return pages


def parse_settings(config: PdfConfig) -> dict[str, Any]:
    """What changes a window's parsed pages: the resume store's fingerprint."""
    from importlib.metadata import PackageNotFoundError, version

    from scicurate import __version__

    try:
        mineru = version("mineru")
    except PackageNotFoundError:
        mineru = ""
    return {"scicurate": __version__, "mineru": mineru, "tier": config.tier, "min_text_chars": config.min_text_chars,
            "ocr": config.ocr_without_text_layer and not config.high_cost_parser}


def signal_page(page: PageParse, min_text_chars: int) -> tuple[PageParse, PageSignals, float, str, str, tuple[str, ...]]:
    """PageParse -> (page, signals, score, markdown, rules, top signal names). Pure."""
    signals = detect(page, min_text_chars=min_text_chars)
    if page.status == STATUS_FAILED:
        return page, signals, 0.0, "", "", ()
    rendered = render_page(page.blocks)
    return page, signals, float(score(signals)), rendered.markdown, ",".join(rendered.rules), tuple(signal_reasons(signals))


def route_signalled(item, threshold: router.Threshold, *, high_cost_available: bool = False) -> PageResult:
    """A signalled page and the global threshold -> its PageResult with route and reason. Pure."""
    page, signals, page_score, markdown, rules, top = item
    decision = router.decide(
        router.route_key(page.page_id, page_score), threshold,
        failed=page.status == STATUS_FAILED, has_text_layer=signals.has_text_layer,
        high_cost_available=high_cost_available, signal_reasons=top,
    )
    return PageResult(
        doc_id=page.doc_id, source=page.source, page_index=page.page_index, doc_pages=page.doc_pages,
        status=page.status, text=markdown, parser=page.parser, parser_version=page.parser_version,
        tier=page.tier, route=decision.route, route_reason=decision.reason, score=page_score,
        needs_high_cost=decision.needs_high_cost, signals=signals, postprocess=rules,
        error_reason=page.error_reason, error_message=page.error_message,
    )


class RoutePage(beam.DoFn):
    """Signalled page + global quantiles side input -> PageResult with its route and reason."""

    def __init__(self, config: PdfConfig) -> None:
        self.config = config
        self.counters: dict[str, Any] = {}

    def _count(self, name: str) -> None:
        if name not in self.counters:
            self.counters[name] = Metrics.counter("pdf_route", name)
        self.counters[name].inc()

    def process(self, item, quantiles) -> Iterator[PageResult]:
        threshold = router.threshold_from_quantiles(quantiles or [], self.config.route_budget, self.config.quantile_epsilon)
        result = route_signalled(item, threshold, high_cost_available=bool(self.config.high_cost_parser))
        self._count(result.route)
        self._count(result.route_reason.split(":", 1)[0])
        yield result


HIGH_COST = "high_cost"


def send_to_high_cost(page: PageResult, only_flagged: bool = False) -> Iterator[Any]:
    """Routed pages go to the high-cost parser (tagged output); the rest pass through.
    `only_flagged` (a --reparse-flagged run): only pages still marked needs_high_cost."""
    if page.route == "high_cost" and page.status != STATUS_FAILED and (page.needs_high_cost or not only_flagged):
        yield TaggedOutput(HIGH_COST, page)
    else:
        yield page


class ParseHighCost(beam.DoFn):
    """((doc_id, source), [routed PageResult]) -> PageResult with the high-cost parser's text.

    Re-reads the source through Beam's file systems (a few percent of pages, so cheaper than
    carrying every page's bytes through the global routing step).
    """

    def __init__(self, config: PdfConfig) -> None:
        self.config = config
        self.parser = None
        self.ok = Metrics.counter("pdf_high_cost", "pages_ok")
        self.failed = Metrics.counter("pdf_high_cost", "pages_failed")

    def setup(self) -> None:
        from scicurate.parsers.high_cost import create

        self.parser = create(self.config)
        self.parser.setup()
        _LOG.info("high-cost parser ready: %s", self.config.high_cost_parser)

    def teardown(self) -> None:
        if self.parser is not None:
            self.parser.teardown()

    def process(self, element) -> Iterator[PageResult]:
        from scicurate.parsers.high_cost import reparse_routed

        (_doc_id, source), pages = element
        pages = sorted(pages, key=lambda p: p.page_index)
        data, error = _read_source(source)
        for page in reparse_routed(self.parser, data, pages, error):
            (self.failed if page.needs_high_cost else self.ok).inc()
            yield page


def _read_source(source: str) -> tuple[bytes | None, str]:
    from apache_beam.io.filesystems import FileSystems

    try:
        with FileSystems.open(source) as fh:
            return fh.read(), ""
    except Exception as exc:  # noqa: BLE001 - keep the low-cost pages, say why
        return None, f"{type(exc).__name__}: {exc}"


DONE = "done"


class RenderRouted(_SandboxDoFn):
    """((doc_id, source), [routed PageResult]) -> ((page, text layer), ChatRequest) for the VLM;
    pages that cannot be rendered (source gone or changed, PDFium fails) -> "done" as fallbacks."""

    LOAD_PARSER = False

    def __init__(self, config: PdfConfig) -> None:
        super().__init__(config)
        self.rendered = Metrics.counter("pdf_vlm", "pages_rendered")
        self.render_failed = Metrics.counter("pdf_vlm", "render_failed")

    def setup(self) -> None:
        from scicurate import prompts

        super().setup()
        self.prompt = prompts.load(self.config.vlm_prompt)

    def process(self, element) -> Iterator[Any]:
        from scicurate.parsers.high_cost import reread_source
        from scicurate.parsers.vlm import fallback, plan_requests

        (_doc_id, source), pages = element
        pages = sorted(pages, key=lambda p: p.page_index)
        pdf, failure = reread_source(pages[0], *_read_source(source))
        if pdf is None:
            asks, failed = [], [fallback(page, *failure) for page in pages]
        else:
            renders = self._sandbox.render_pages(  # type: ignore[union-attr]
                pdf, [p.page_index for p in pages], dpi=self.config.vlm_dpi, max_side_px=self.config.vlm_max_side_px)
            asks, failed = plan_requests(pages, renders, self.prompt)
        self.render_failed.inc(len(failed))
        self.rendered.inc(len(asks))
        for page in failed:
            yield TaggedOutput(DONE, page)
        for page, layer, request in asks:
            yield (page, layer), request


def apply_vlm_prediction(item) -> PageResult:
    """((page, text layer), PredictionResult) -> the page row. Pure."""
    from scicurate.parsers.vlm import apply_vlm

    (page, layer), prediction = item
    result = apply_vlm(page, prediction.inference, layer)
    Metrics.counter("pdf_vlm", "fallback" if result.is_fallback else "pages_ok").inc()
    if result.is_fallback:
        Metrics.counter("pdf_vlm", f"fallback_{result.error_reason.split(':')[-1]}").inc()
    return result


def failed_inference_pages(failure, stage: str) -> Iterator[Any]:
    """A batch RunInference could not process -> each page as a fallback, plus a dead letter
    per page carrying the exception (the page itself is not lost: it keeps its text)."""
    from scicurate.parsers.vlm import fallback

    batch, exc = failure
    message = f"{type(exc).__name__}: {exc}"
    for key, _request in batch:
        page = key[0] if isinstance(key, tuple) else key
        Metrics.counter(stage, "inference_exceptions").inc()
        yield (fallback(page, "llm_exception", message) if stage == "pdf_vlm" else page)
        yield TaggedOutput(FAILED, DeadLetter(doc_id=page.doc_id, source=page.source, stage=stage,
                                              reason="llm_exception", message=message[:4000],
                                              page_index=page.page_index))


class MakeCleanupRequest(beam.DoFn):
    """VLM page -> (page, cleanup ChatRequest); other pages pass through to "done"."""

    def __init__(self, config: PdfConfig) -> None:
        self.config = config

    def setup(self) -> None:
        from scicurate import prompts

        self.prompt = prompts.load(self.config.cleanup_prompt)

    def process(self, page: PageResult) -> Iterator[Any]:
        from scicurate.parsers.vlm import cleanup_request

        request = cleanup_request(page, self.prompt)
        if request is None:
            yield TaggedOutput(DONE, page)
        else:
            yield page, request


def apply_cleanup_prediction(item) -> PageResult:
    from scicurate.parsers.vlm import apply_cleanup

    page, prediction = item
    result = apply_cleanup(page, prediction.inference)
    Metrics.counter("pdf_cleanup", "changed" if result.text != page.text else "unchanged").inc()
    return result


class MergeDocument(beam.DoFn):
    """(doc_id, [PageResult]) -> DocumentResult, final PageResults ("pages"), DeadLetters ("failed")."""

    def __init__(self, max_fallback_rate: float = 1.0, min_fallback_pages: int = 1,
                 max_removed_share: float = 0.5) -> None:
        self.max_fallback_rate = max_fallback_rate
        self.min_fallback_pages = min_fallback_pages
        self.max_removed_share = max_removed_share
        self.documents = Metrics.counter("pdf_merge", "documents")
        self.failed = Metrics.counter("pdf_merge", "failed")

    def process(self, element) -> Iterator[Any]:
        doc_id, pages = element
        pages = list(pages)
        try:
            out = merge_document(doc_id, pages, max_fallback_rate=self.max_fallback_rate,
                                 min_fallback_pages=self.min_fallback_pages,
                                 max_removed_share=self.max_removed_share)
        except Exception as exc:  # noqa: BLE001 - a merge bug must not lose the pages
            self.failed.inc()
            for page in pages:
                yield TaggedOutput("pages", page)
            yield TaggedOutput(FAILED, DeadLetter(
                doc_id=doc_id, source=pages[0].source if pages else "", stage="merge",
                reason=REASON_INTERNAL, message=f"{type(exc).__name__}: {exc}",
            ))
            return
        for page in out.pages:
            yield TaggedOutput("pages", page)
        for dead in out.dead_letters:
            yield TaggedOutput(FAILED, dead)
        if out.document is not None:
            self.documents.inc()
            yield out.document


def page_dead_letters(page: PageResult) -> Iterable[DeadLetter]:
    if page.status == STATUS_FAILED:
        yield DeadLetter(doc_id=page.doc_id, source=page.source, stage="parse", reason=page.error_reason,
                         message=page.error_message or page.error_reason, page_index=page.page_index)


def carried_dead_letter(row: dict[str, Any]) -> bool:
    """Dead letters of an earlier run that a --reparse-flagged run copies: documents that never
    reached the page stages, and byte-identical duplicates (their pages were never kept)."""
    return row["level"] == "document" and (row["stage"] in ("read", "split") or row["reason"] == "duplicate_input")


# ---- summary ------------------------------------------------------------------------------

def summary_keys_input(_: Any) -> Iterable[str]:
    yield "inputs"


def summary_keys_document(doc: DocumentResult) -> Iterable[str]:
    yield "documents"
    if doc.duplicate_of:
        yield "documents_near_duplicate"


def mark_duplicate(doc: DocumentResult, label: str) -> DocumentResult:
    return dataclasses.replace(doc, duplicate_of=label)


def summary_keys_page(page: PageResult) -> Iterable[Any]:
    """Summary keys of one page; a (key, n) pair adds n instead of 1."""
    yield "pages"
    yield f"pages_status.{page.status}"
    yield f"route_reasons.{page.route_reason.split(':', 1)[0]}"
    yield f"parsers.{page.parser}"
    if page.route == "high_cost":
        yield "pages_routed"
    if page.needs_high_cost:
        yield "pages_needs_high_cost"
    if page.is_fallback:
        yield "pages_fallback"
    if page.llm is not None and page.llm.calls:
        yield "llm_calls", page.llm.calls
    q = page.quality
    if q.garble >= 0:
        yield "quality.pages_garble_scored"
    if q.formulas >= 0:
        yield "formulas.pages_checked"
        yield "formulas.formulas", q.formulas
        if q.formulas_broken:
            yield "formulas.broken", q.formulas_broken
            yield "formulas.pages_with_broken"
    if page.reparse_reason:
        yield f"reparse_candidates.{page.reparse_reason.split(':', 1)[0]}"
    for found in q.scistrings:
        yield f"scistrings.{found.kind}"
    if page.status == STATUS_OK:
        words = len(page.text.split())
        yield "page_dedup.words", words
        if page.removed:
            yield "page_dedup.pages_removed"
            yield "page_dedup.words_removed", words
            yield f"removed_reasons.{page.removed}"


def summary_keys_filtered(item) -> Iterable[str]:
    _doc, reason = item
    yield "filtered"
    yield f"filter_reasons.{reason}"


def summary_keys_dead_letter(dead: DeadLetter) -> Iterable[str]:
    if dead.reason == "llm_exception":      # the page itself is kept, as a fallback
        yield "llm_exceptions"
    elif dead.page_index is None:
        yield "dead_letter"
        yield f"dead_letter_reasons.{dead.reason}"
    else:
        yield "dead_letter_pages"
        yield f"page_failure_reasons.{dead.reason}"


class BuildSummary(CountSummary):
    """(key, count) pairs -> one nested summary dict with every top-level key present."""

    TOP = ("inputs", "documents", "documents_near_duplicate", "filtered", "dead_letter", "dead_letter_pages",
           "pages", "pages_routed", "pages_needs_high_cost", "pages_fallback", "llm_calls", "llm_exceptions")
    GROUPS = ("dead_letter_reasons", "page_failure_reasons", "route_reasons", "pages_status", "parsers",
              "removed_reasons", "filter_reasons", "reparse_candidates", "scistrings", "quality")

    def start(self) -> dict[str, Any]:
        summary = super().start()
        summary["page_dedup"] = {"pages_removed": 0, "words_removed": 0, "words": 0}
        summary["formulas"] = {"pages_checked": 0, "formulas": 0, "broken": 0, "pages_with_broken": 0}
        return summary

    def finish(self, summary: dict[str, Any]) -> dict[str, Any]:
        dedup = summary["page_dedup"]
        parsed = summary["pages_status"].get("ok", 0)
        dedup["share_pages_removed"] = round(dedup["pages_removed"] / parsed, 6) if parsed else 0.0
        dedup["share_words_removed"] = round(dedup["words_removed"] / dedup["words"], 6) if dedup["words"] else 0.0
        formulas = summary["formulas"]
        formulas["valid_share"] = round(1 - formulas["broken"] / formulas["formulas"], 6) if formulas["formulas"] else 1.0
        summary["quality"] = quality_summary(summary)
        summary["accounted"] = summary["inputs"] == summary["documents"] + summary["filtered"] + summary["dead_letter"]
        return summary
