"""The low-cost page parser: MinerU 4.x on every page, OCR for pages without a text layer.

`LowCostParser.parse_file(path, first_page, doc_pages, …)` parses a window PDF written to disk
and returns one `PageParse` per page. It runs inside the sandbox worker process
(`parsers.sandbox`), never in the Beam worker itself, so a native crash or hang in PDFium or
MinerU costs one window, not the run.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any, Iterable

from scicurate.config import ConfigError
from scicurate.records import (
    STATUS_FAILED,
    STATUS_OK,
    Block,
    PageParse,
    TextLayerStats,
)

from .textlayer import text_layer_stats

_LOG = logging.getLogger(__name__)

# Spans MinerU 4 puts inside text-like blocks (docvortex schema 2.0).
_SCRIPT_STYLES = {"superscript", "subscript"}
# OCR renders a page at 2x (144 dpi; an A4 page is 1190 x 1684 px) but never past this many
# pixels on its long side: a hostile `/MediaBox [0 0 14400 14400]` asked for a 28,800 px
# square bitmap, about 2.5 GB per copy and three copies, from a 20 KB file.
OCR_MAX_SIDE_PX = 3000


def ocr_scale(width_pt: float, height_pt: float, scale: float = 2.0, max_side_px: int = OCR_MAX_SIDE_PX) -> float:
    """The render scale for OCR: `scale`, lowered so the long side stays within `max_side_px`."""
    longest = max(width_pt, height_pt)
    return min(scale, max_side_px / longest) if longest > 0 else scale


def mineru_version() -> str:
    try:
        from importlib.metadata import version

        return version("mineru")
    except Exception:  # noqa: BLE001
        return "unknown"


def _span_text(spans: Iterable[Any], counts: dict[str, int]) -> str:
    parts: list[str] = []
    for span in spans:
        if not isinstance(span, dict):
            continue
        kind = span.get("type")
        content = span.get("content")
        if kind == "equation_inline" and isinstance(content, str):
            counts["inline_math"] += 1
            parts.append(f"${content.strip()}$" if content.strip() else "")
        elif kind == "hyperlink" and isinstance(content, list):
            parts.append(_span_text(content, counts))
        elif isinstance(content, str):
            styles = set(span.get("styles") or ())
            if styles & _SCRIPT_STYLES:
                counts["script_spans"] += 1
                tag = "sup" if "superscript" in styles else "sub"
                parts.append(f"<{tag}>{content}</{tag}>")
            else:
                parts.append(content)
        elif isinstance(content, list):  # a nested block (caption, table body, list item)
            parts.append(_block_text(span, counts))
    return "".join(parts)


def _block_text(block: dict[str, Any], counts: dict[str, int]) -> str:
    content = block.get("content")
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    if all(isinstance(c, dict) and c.get("type") in ("text", "equation_inline", "code_inline", "hyperlink")
           for c in content):
        return _span_text(content, counts)
    # A container (image, table, list): children are blocks; keep each on its own line.
    lines = []
    for child in content:
        if isinstance(child, dict):
            text = _block_text(child, counts) if isinstance(child.get("content"), (list, str)) else ""
            if text.strip():
                lines.append(text)
    return "\n".join(lines)


def blocks_from_mineru_page(page: dict[str, Any]) -> tuple[Block, ...]:
    """Convert one page of MinerU's middle JSON (as `ParseResult.to_dict()` gives it) to Blocks."""
    blocks: list[Block] = []
    for raw in page.get("blocks") or ():
        if not isinstance(raw, dict):
            continue
        counts = {"inline_math": 0, "script_spans": 0}
        text = _block_text(raw, counts)
        bbox = raw.get("bbox") or (0.0, 0.0, 0.0, 0.0)
        try:
            bbox_t = tuple(float(v) for v in bbox[:4])
        except (TypeError, ValueError):
            bbox_t = (0.0, 0.0, 0.0, 0.0)
        if len(bbox_t) != 4:
            bbox_t = (0.0, 0.0, 0.0, 0.0)
        blocks.append(
            Block(
                type=str(raw.get("type", "text")),
                text=text,
                bbox=bbox_t,  # type: ignore[arg-type]
                level=int(raw.get("level") or 0),
                inline_math=counts["inline_math"],
                script_spans=counts["script_spans"],
            )
        )
    return tuple(blocks)


class LowCostParser:
    """MinerU on a configurable tier, plus RapidOCR for pages that have no text layer.

    Load once per worker process with `load()`; `parse_file` is then called per window.
    """

    def __init__(
        self,
        tier: str = "flash",
        *,
        min_text_chars: int = 16,
        ocr_without_text_layer: bool = True,
        allow_model_download: bool = False,
    ) -> None:
        self.tier = tier
        self.min_text_chars = min_text_chars
        self.ocr_without_text_layer = ocr_without_text_layer
        self.allow_model_download = allow_model_download
        self.version = mineru_version()
        self._parser = None
        self._ocr = None

    def load(self) -> "LowCostParser":
        if not self.allow_model_download:
            # MinerU fetches models from Hugging Face / ModelScope on first use unless told the
            # models are local. We never download behind the user's back.
            os.environ.setdefault("MINERU_MODEL_SOURCE", "local")
        os.environ.setdefault("MINERU_LOG_LEVEL", "WARNING")
        try:
            from mineru.parser import MinerUParser
        except ImportError as exc:  # pragma: no cover - mineru is a core dependency
            raise ConfigError("mineru is not installed: pip install 'mineru>=4,<5'") from exc
        try:
            from loguru import logger as loguru_logger

            loguru_logger.remove()
            loguru_logger.add(lambda msg: None, level="ERROR")
        except Exception:  # noqa: BLE001 - logging tweaks are best effort
            pass
        # flash + "txt": native text extraction, no models. Higher tiers let MinerU choose OCR.
        parse_mode = "txt" if self.tier == "flash" else "auto"
        self._parser = MinerUParser(tier=self.tier, parse_mode=parse_mode, image_analysis=False)
        return self

    def _ocr_engine(self):
        if self._ocr is None:
            from rapidocr_onnxruntime import RapidOCR

            self._ocr = RapidOCR()
        return self._ocr

    def ocr_page(self, page, scale: float = 2.0) -> tuple[Block, ...]:
        """OCR one pypdfium2 page with RapidOCR (models ship inside its wheel)."""
        import numpy as np

        bitmap = page.render(scale=ocr_scale(*page.get_size(), scale))
        image = np.asarray(bitmap.to_pil().convert("RGB"))
        width, height = image.shape[1], image.shape[0]
        result, _ = self._ocr_engine()(image)
        blocks = []
        for box, text, _conf in result or ():
            xs = [p[0] for p in box]
            ys = [p[1] for p in box]
            blocks.append(
                Block(
                    type="text",
                    text=str(text),
                    bbox=(min(xs) / width, min(ys) / height, max(xs) / width, max(ys) / height),
                )
            )
        return tuple(_merge_ocr_lines(blocks))

    def ocr_file(
        self, path: str, *, doc_id: str, source: str, pages: list[int], doc_pages: int
    ) -> list[PageParse]:
        """OCR the given 0-based pages of the PDF at `path`, whatever their text layer says."""
        import pypdfium2 as pdfium

        pdf = pdfium.PdfDocument(path)
        try:
            out = []
            for index in pages:
                page = pdf[index]
                try:
                    stats = text_layer_stats(page)
                    t0 = time.perf_counter()
                    blocks = self.ocr_page(page)
                finally:
                    page.close()
                out.append(PageParse(
                    doc_id=doc_id, source=source, page_index=index, doc_pages=doc_pages,
                    parser="rapidocr", parser_version=_rapidocr_version(), tier="ocr", status=STATUS_OK,
                    blocks=blocks, text_layer=stats, seconds=time.perf_counter() - t0,
                ))
            return out
        finally:
            pdf.close()

    def parse_file(
        self,
        path: str,
        *,
        doc_id: str,
        source: str,
        first_page: int,
        doc_pages: int,
        page_subset: list[int] | None = None,
    ) -> list[PageParse]:
        """Parse pages of the window PDF at `path` (0-based window indices in `page_subset`)."""
        import pypdfium2 as pdfium

        if self._parser is None:
            self.load()
        pdf = pdfium.PdfDocument(path)
        try:
            n = len(pdf)
            indices = list(range(n)) if page_subset is None else list(page_subset)
            stats: dict[int, TextLayerStats] = {}
            for i in indices:
                page = pdf[i]
                try:
                    stats[i] = text_layer_stats(page)
                finally:
                    page.close()
            has_text = {i for i in indices if stats[i].chars >= self.min_text_chars}
            text_pages = [i for i in indices if i in has_text]
            started = time.perf_counter()
            mineru_pages: dict[int, dict[str, Any]] = {}
            if text_pages:
                page_range = ",".join(str(i + 1) for i in text_pages)
                if len(text_pages) == n:
                    page_range = ""
                result = self._parser.parse(path, page_range=page_range).to_dict()
                # MinerU keeps the window's own 0-based page numbers under a page_range, and
                # inserts empty placeholders for pages it could not rewrite: map by page_idx.
                for page in result.get("pages") or ():
                    idx = page.get("page_idx")
                    if isinstance(idx, int) and idx in has_text:
                        mineru_pages[idx] = page
            per_page_seconds = (time.perf_counter() - started) / max(1, len(text_pages))
            out: list[PageParse] = []
            for i in indices:
                common = dict(
                    doc_id=doc_id, source=source, page_index=first_page + i, doc_pages=doc_pages,
                    text_layer=stats[i],
                )
                if i in has_text:
                    page = mineru_pages.get(i)
                    if page is None:
                        out.append(PageParse(
                            **common, parser="mineru", parser_version=self.version, tier=self.tier,
                            status=STATUS_FAILED, error_reason="parser_error",
                            error_message="MinerU returned no page for this index",
                        ))
                        continue
                    out.append(PageParse(
                        **common, parser="mineru", parser_version=self.version, tier=self.tier,
                        status=STATUS_OK, blocks=blocks_from_mineru_page(page),
                        seconds=per_page_seconds,
                    ))
                elif self.ocr_without_text_layer:
                    t0 = time.perf_counter()
                    page = pdf[i]
                    try:
                        blocks = self.ocr_page(page)
                    finally:
                        page.close()
                    out.append(PageParse(
                        **common, parser="rapidocr", parser_version=_rapidocr_version(), tier="ocr",
                        status=STATUS_OK, blocks=blocks, seconds=time.perf_counter() - t0,
                    ))
                else:
                    out.append(PageParse(
                        **common, parser="none", parser_version="", tier="none",
                        status=STATUS_OK, blocks=(),
                    ))
            return out
        finally:
            pdf.close()


def _rapidocr_version() -> str:
    try:
        from importlib.metadata import version

        return version("rapidocr-onnxruntime")
    except Exception:  # noqa: BLE001
        return "unknown"


def _merge_ocr_lines(blocks: list[Block]) -> list[Block]:
    """Group OCR line boxes into paragraphs: a vertical gap above 1.2 line heights breaks."""
    if not blocks:
        return []
    ordered = sorted(blocks, key=lambda b: (round(b.bbox[1], 3), b.bbox[0]))
    paragraphs: list[list[Block]] = [[ordered[0]]]
    for block in ordered[1:]:
        prev = paragraphs[-1][-1]
        line_height = max(prev.bbox[3] - prev.bbox[1], 1e-6)
        if block.bbox[1] - prev.bbox[3] > 1.2 * line_height:
            paragraphs.append([block])
        else:
            paragraphs[-1].append(block)
    merged = []
    for para in paragraphs:
        merged.append(Block(
            type="text",
            text="\n".join(b.text for b in para),
            bbox=(min(b.bbox[0] for b in para), min(b.bbox[1] for b in para),
                  max(b.bbox[2] for b in para), max(b.bbox[3] for b in para)),
        ))
    return merged
