"""Parse one PDF outside Beam, on the same cores as the pipeline (`scicurate parse`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scicurate.classifiers import router
from scicurate.config import PdfConfig
from scicurate.merge import merge_document
from scicurate.pipelines.pdf_steps import route_signalled, signal_page
from scicurate.records import DeadLetter, DocumentResult, PageResult, PdfInput


class ParseFailed(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


@dataclass(frozen=True, slots=True)
class ParsedDocument:
    document: DocumentResult
    pages: tuple[PageResult, ...]
    dead_letters: tuple[DeadLetter, ...]

    def to_json(self) -> dict[str, Any]:
        from scicurate.schema import document_row, page_row

        doc = document_row(self.document)
        doc.pop("text")
        return {
            "document": doc,
            "pages": [page_row(p) for p in self.pages],
            "dead_letter": [d.to_row() for d in self.dead_letters],
        }


def parse_document(path: str, config: PdfConfig, *, progress: bool = False) -> ParsedDocument:
    from scicurate.parsers.sandbox import SandboxedParser
    from scicurate.parsers.split import DocumentError

    try:
        with open(path, "rb") as fh:
            data = fh.read(config.max_bytes + 1)
    except OSError as exc:
        raise ParseFailed("unreadable", str(exc)) from None
    pdf = PdfInput.from_bytes(path, data)
    sandbox = SandboxedParser(config)
    try:
        sandbox.start()
        try:
            windows = list(sandbox.split(pdf))
        except DocumentError as exc:
            raise ParseFailed(exc.reason, exc.message) from None
        total = windows[0].doc_pages if windows else 0
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=total, unit="page", desc="parse", leave=False)
        signalled = []
        for window in windows:
            for page in sandbox.parse_window(window):
                signalled.append(signal_page(page, config.min_text_chars))
                if bar is not None:
                    bar.update(1)
        if bar is not None:
            bar.close()
    finally:
        sandbox.close()

    keys = {s[0].page_id: router.route_key(s[0].page_id, s[2]) for s in signalled}
    threshold = router.exact_threshold(list(keys.values()), config.route_budget)
    results = [route_signalled(item, threshold, high_cost_available=bool(config.high_cost_parser))
               for item in signalled]
    if config.high_cost_parser:
        from scicurate.parsers.high_cost import create, reparse_routed

        routed = [p for p in results if p.route == "high_cost" and p.status != "failed"]
        if routed:
            import contextlib

            from scicurate.llm.embedded import serving

            parser = create(config)
            parser.setup()
            try:
                with contextlib.ExitStack() as stack:
                    if config.vlm_cleanup and hasattr(parser, "attach_cleanup"):
                        from scicurate.llm.client import LLMClient

                        cleanup = stack.enter_context(serving(config.cleanup_llm))
                        parser.attach_cleanup(LLMClient(cleanup))
                    redone = {p.page_index: p for p in reparse_routed(parser, data, routed)}
            finally:
                parser.teardown()
            results = [redone.get(p.page_index, p) for p in results]
    from scicurate.pipelines.quality_steps import document_filter_reason, filter_detail, quality_pages

    results = quality_pages(results, config)
    out = merge_document(pdf.doc_id, results, max_fallback_rate=config.max_fallback_rate,
                         min_fallback_pages=config.min_fallback_pages)
    if out.document is None:
        dead = [d for d in out.dead_letters if d.page_index is None] or list(out.dead_letters)
        raise ParseFailed(dead[0].reason, dead[0].message)
    reason = document_filter_reason(out.document, config)
    if reason:
        raise ParseFailed(f"filtered:{reason}", filter_detail(out.document, reason, config))
    return ParsedDocument(out.document, out.pages, out.dead_letters)


__all__ = ["ParseFailed", "ParsedDocument", "parse_document"]
