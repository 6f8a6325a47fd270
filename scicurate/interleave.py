"""Interleaved image-text documents from PDFs: the run's page texts with the figures and
tables MinerU finds, cropped from the page and placed in reading order.

    interleave_document(pdf_path, page_texts, config) -> InterleavedDoc | InterleaveFailure

In: the PDF's path and the PDF run's final text of each kept page (`page_index -> text`;
Markdown, paragraphs separated by a blank line). Out: `InterleavedDoc.segments`, a sequence of
`("text", text, None)` and `("image", None, index into images)` in reading order, the kept
`FigureImage`s (PNG bytes) and the `DroppedFigure`s the image filters took out, or one
`InterleaveFailure` with a stable reason code for a document that cannot be used. Bad input
never raises.

Where the figures come from: MinerU 4.x, tier "flash" (native PDF objects, no models), the
same parser as the PDF run. On the development papers flash gives every raster and vector
figure it finds as an `image` block (children `image_body`, `image_caption`, sometimes two
captions) and tables as `table` blocks (`table_body`, `table_caption`); bboxes are fractions
of the page (0-1, top-left origin). Flash leaves out images under roughly 15 mm a side (logos,
bullets). It attached caption children to 19 of the 31 figures of the five journal papers and
to none of the 51 of the lecture notes; for a figure without one, the text block right after
it (before it, for a table) is taken as the caption when it starts like one ("Figure 3",
"FIG. 3", "Table I", "Abbildung 2", ...). Page objects from pypdfium2 were not needed as a
fallback, and would be a poor one: most figures in papers are vector drawings (20 of the 82
figures are image objects of at least 1 inch a side).

How each figure becomes an image: the page is rendered with PDFium at `dpi`, only the body's
bbox (the union of its `*_body` children), scaled down so the crop's long side stays within
`max_side_px`, and encoded as PNG (Pillow, no timestamp: the same input gives the same bytes).
Each crop goes through the image filters of `classifiers.image_filters`: `check_pair` (a
caption whose image cannot be cropped is `missing_image`: no body, a zero-area or off-page
bbox, a failed render; no caption is the `no_caption` flag, a reason only with
`require_caption`), then `check_image` (tiny, extreme_aspect, blank, blurry; the Laplacian is
taken on a 512 px copy). Kept crops are `FigureImage`s, the others `DroppedFigure`s with every
reason and, when measured, the measures.

The placement rule (in `place_figures`, pure): figures of a page are placed among the page
text's paragraphs, never inside one (a ``` fence counts as one paragraph).

1. Caption: the figure goes right after the paragraph that contains its caption, matched on
   normalised text (NFKC, case-folded, <sub>/<sup> tags and everything but letters and digits
   removed): the paragraph holding the caption's last 64 characters, else the one holding its
   first 64 (a paragraph that starts with them first). Captions under 8 such characters are
   not matched (too ambiguous).
2. Else the block before it in MinerU's order (a paragraph, title, equation, or the figure
   before it with its caption): right after the paragraph that contains that block's last 64
   normalised characters. Page furniture (header, footer, page number) is passed over; when a
   block's text is not in the page text (a paragraph a VLM rewrote), the block before it is
   tried, and so on.
3. Else, when no block before it carries text (the figure opens the page), at the start of the
   page; otherwise at the end of the page's text.

Figures of one page keep MinerU's order among themselves where they share a place. Text
segments are slices of the run's page text, so concatenating a page's text segments with
"\\n\\n" gives its paragraphs back; consecutive paragraphs of a page form one segment, and a
page's text is split only where a figure goes. Pages are never merged into one segment. Pages
missing from `page_texts` were removed by the run: MinerU does not even parse them, and they
give no text and no figure.

Hostile input: the path is checked before anything opens it (`unsafe_path` outside
`base_dir`, symlinks resolved; `remote_ref_not_fetched` for a URL, never fetched;
`source_missing`); the bytes are checked for size and a %PDF- header (`parsers.split.precheck`),
copied into a scratch folder, and all native work (PDFium, qpdf's decompression-bomb check
`parsers.split.damaged_pages`, MinerU, rendering, Pillow) runs in one child process per
document (`python -m scicurate.interleave`, its own process group, RLIMIT_AS `memory_mb`,
killed with its helpers after `timeout_s`). Pages whose content streams are a decompression
bomb or fail their checksum are not parsed (`InterleavedDoc.skipped_pages`); their text, if
the run kept any, stays. Crops are capped at `max_side_px` and decoded back only by the
image filters' own guards (format allow-list, pixel cap).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unicodedata
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

from scicurate.classifiers import image_filters as imf
from scicurate.classifiers.image_filters import ImageFilterConfig
from scicurate.config import ConfigError

# ---- reason codes (stable: counters, Parquet values) ------------------------------------------

SOURCE_MISSING = "source_missing"            # no file at the path
UNREADABLE = "unreadable"                    # not a regular file, or the OS refused to read it
UNSAFE_PATH = "unsafe_path"                  # resolves outside base_dir (or holds a NUL): never opened
REMOTE_REF_NOT_FETCHED = imf.REMOTE_REF_NOT_FETCHED   # a URL (http, https, any scheme://): never fetched
EMPTY = "empty"                              # 0 bytes, or 0 pages
TOO_LARGE = "too_large"                      # more bytes than InterleaveConfig.max_bytes
NOT_PDF = "not_pdf"                          # no %PDF- header in the first KiB
CORRUPT_INPUT = "corrupt_input"              # PDFium cannot open it
ENCRYPTED = "encrypted"                      # needs a password
TOO_MANY_PAGES = "too_many_pages"            # more pages than InterleaveConfig.max_pages
TIMEOUT = "timeout"                          # the child ran past timeout_s and was killed
OUT_OF_MEMORY = "out_of_memory"              # the child hit its RLIMIT_AS (MemoryError, bad_alloc)
PARSER_CRASH = "parser_crash"                # the child died without a result (segfault, abort, kill)
PARSER_ERROR = "parser_error"                # MinerU or PDFium raised on this document
FAILURE_REASONS = (SOURCE_MISSING, UNREADABLE, UNSAFE_PATH, REMOTE_REF_NOT_FETCHED, EMPTY, TOO_LARGE,
                   NOT_PDF, CORRUPT_INPUT, ENCRYPTED, TOO_MANY_PAGES, TIMEOUT, OUT_OF_MEMORY,
                   PARSER_CRASH, PARSER_ERROR)

# why a figure's image is missing (DroppedFigure.detail when reason is missing_image)
NO_IMAGE_BODY = "no_image_body"              # a caption block without a body
EMPTY_BBOX = "empty_bbox"                    # the body's bbox has no area (under 1 pt a side)
BBOX_OUTSIDE_PAGE = "bbox_outside_page"      # the body's bbox lies off the page
RENDER_FAILED = "render_failed"              # PDFium or Pillow failed on the crop

# why a page gave no figures although the run kept it (InterleavedDoc.skipped_pages)
PAGE_NOT_IN_PDF = "page_not_in_pdf"          # page_texts names a page past the document's end
PAGE_NOT_PARSED = "page_not_parsed"          # MinerU returned no page for it
# ... and parsers.split's decompression_bomb / damaged_stream (content streams not parsed)

# how a kept figure was placed (FigureImage.placement)
PLACED_AFTER_CAPTION = "after_caption"
PLACED_AFTER_BLOCK = "after_previous_block"
PLACED_PAGE_START = "page_start"
PLACED_PAGE_END = "page_end"

KINDS = ("image", "table")
# FigureImage.flags besides image_filters' pair flags (no_caption)
CAPTION_FROM_BLOCK = "caption_from_block"    # the caption is the adjacent text block, not a caption child

IMAGE_FORMATS = ("png",)                     # lossless and timestamp-free: same input, same bytes
_FIGURE_TYPES = {"image": "image", "figure": "image", "chart": "image", "table": "table"}
_SKIP_TYPES = frozenset({"header", "footer", "page_number"})   # page furniture: the run drops it
_CAPTION_RE = re.compile(
    r"^\s*(?:fig(?:ure)?s?|tab(?:le)?|tabelle|abb(?:ildung)?|scheme|plate|chart)\.?\s*(?:[0-9]+|[IVXLC]+\b|S[0-9]+)",
    re.IGNORECASE,
)
_KEY_CHARS = 64
_MIN_KEY_CHARS = 8
_MIN_SIDE_PT = 1.0
_RESULT_NAME = "result.json"
_MAX_RESULT_BYTES = 256 << 20
TEST_HOOK_ENV = "SCICURATE_INTERLEAVE_TEST_HOOK"   # "crash" | "oom" | "hang": tests of the child's failures


# ---- records ---------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class InterleaveConfig:
    """How one document is interleaved.

    - `timeout_s` 120: the whole child per document (about 2 s of start-up, imports and
      MinerU's render workers, then 0.1-0.2 s a page on the development papers); past it the
      child and its helpers are killed (`timeout`).
    - `memory_mb` 4096: the child's RLIMIT_AS, as for the PDF run's parser (MinerU needs
      ~1.5 GB); 0 = no cap.
    - `max_pages` 2000, `max_bytes` 1 GiB: larger documents are refused (`too_many_pages`,
      `too_large`).
    - `dpi` 144 and `max_side_px` 2048: figures at twice screen resolution, the render of a
      VLM page; a poster-sized figure is scaled down to 2048 px on its long side (a hostile
      MediaBox cannot ask for a gigapixel bitmap).
    - `image_format` "png": the only one allowed (`IMAGE_FORMATS`).
    - `filters`: the image filters' thresholds (the `figures` preset by default).
    """

    timeout_s: float = 120.0
    memory_mb: int = 4096
    max_pages: int = 2000
    dpi: int = 144
    max_side_px: int = 2048
    image_format: str = "png"
    filters: ImageFilterConfig = imf.DEFAULT
    max_bytes: int = 1 << 30

    def __post_init__(self) -> None:
        if not self.timeout_s > 0:
            raise ConfigError(f"interleave timeout_s must be positive; got {self.timeout_s}")
        if self.memory_mb and self.memory_mb < 1024:
            raise ConfigError(f"interleave memory_mb must be 0 (no cap) or at least 1024 (MinerU needs ~1.5 GB); "
                              f"got {self.memory_mb}")
        if self.max_pages < 1 or self.max_bytes < 1024:
            raise ConfigError("interleave max_pages must be >= 1 and max_bytes >= 1024")
        if not 18 <= self.dpi <= 1200:
            raise ConfigError(f"interleave dpi must be in 18..1200; got {self.dpi}")
        if not 16 <= self.max_side_px <= 16384:
            raise ConfigError(f"interleave max_side_px must be in 16..16384; got {self.max_side_px}")
        if self.image_format not in IMAGE_FORMATS:
            raise ConfigError(f"interleave image_format must be one of {', '.join(IMAGE_FORMATS)}; "
                              f"got {self.image_format!r}")
        if self.image_format.upper() not in self.filters.formats:
            raise ConfigError(f"the image filters' formats {self.filters.formats} must allow "
                              f"{self.image_format.upper()}")

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @staticmethod
    def from_json(d: Mapping[str, Any]) -> "InterleaveConfig":
        filters = dict(d["filters"])
        filters["formats"] = tuple(filters["formats"])
        return InterleaveConfig(**{**d, "filters": ImageFilterConfig(**filters)})


@dataclass(frozen=True, slots=True)
class FigureImage:
    """One figure or table cropped from a page. `bbox` is in PDF points of the page as shown
    (x0, y0, x1, y1, top-left origin; MinerU's 0-1 fractions times the page size). `flags`:
    image_filters' pair flags (no_caption) and `caption_from_block`. `placement` says which
    rule of `place_figures` put it where it is."""

    image_id: str                   # sha256 hex of `data`
    page_index: int
    bbox: tuple[float, float, float, float]
    kind: str                       # "image" | "table"
    caption: str
    data: bytes                     # encoded PNG
    width: int
    height: int
    flags: tuple[str, ...] = ()
    placement: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"bad figure kind {self.kind!r}")
        if self.page_index < 0 or self.width < 1 or self.height < 1 or not self.data:
            raise ValueError("a figure needs a page, a size and bytes")
        if len(self.image_id) != 64:
            raise ValueError("image_id is the sha256 hex of the bytes")


@dataclass(frozen=True, slots=True)
class DroppedFigure:
    """A figure the image filters (or a missing image) took out. `reasons`: every failing rule
    (pair rules first, then image rules in image_filters.IMAGE_REASONS order, or one of
    image_filters.FAILURE_REASONS for a crop that does not decode); `reason` is the first.
    `detail` says why an image is missing, or what the decoder said."""

    page_index: int
    kind: str
    caption: str
    reason: str
    reasons: tuple[str, ...]
    detail: str
    measures: Optional[dict]        # image_filters.measures_dict(...) when measured
    bbox: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    flags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.reasons or self.reason != self.reasons[0]:
            raise ValueError("a dropped figure needs reasons, the first being `reason`")
        if self.kind not in KINDS:
            raise ValueError(f"bad figure kind {self.kind!r}")


Segment = tuple[str, Optional[str], Optional[int]]


@dataclass(frozen=True, slots=True)
class InterleavedDoc:
    """`segments` in reading order: ("text", text, None) | ("image", None, i) with `images[i]`;
    every image is placed exactly once, in index order. `skipped_pages`: (page, reason) of kept
    pages that were not searched for figures. `parser`: what located the figures."""

    segments: tuple[Segment, ...]
    images: tuple[FigureImage, ...]
    dropped: tuple[DroppedFigure, ...]
    skipped_pages: tuple[tuple[int, str], ...] = ()
    doc_pages: int = 0
    parser: str = ""

    def __post_init__(self) -> None:
        placed = []
        for kind, text, index in self.segments:
            if kind == "text":
                if not isinstance(text, str) or not text.strip() or index is not None:
                    raise ValueError("a text segment holds non-empty text and no index")
            elif kind == "image":
                if text is not None or not isinstance(index, int):
                    raise ValueError("an image segment holds an index and no text")
                placed.append(index)
            else:
                raise ValueError(f"bad segment kind {kind!r}")
        if placed != list(range(len(self.images))):
            raise ValueError("every image must be placed exactly once, in index order")


@dataclass(frozen=True, slots=True)
class InterleaveFailure:
    reason: str
    message: str

    def __post_init__(self) -> None:
        if self.reason not in FAILURE_REASONS:
            raise ValueError(f"unknown interleave failure reason {self.reason!r}")


# ---- pure cores: figures of a MinerU page, and where they go ------------------------------------

@dataclass(frozen=True, slots=True)
class FigureSpec:
    """One figure block of a MinerU page: its position among the page's blocks, its kind, its
    caption, and the body's bbox as 0-1 fractions (None: no body)."""

    block: int
    kind: str
    caption: str
    body: Optional[tuple[float, float, float, float]]
    flags: tuple[str, ...] = ()


def _bbox(raw: Any) -> Optional[tuple[float, float, float, float]]:
    try:
        box = tuple(float(v) for v in raw[:4])
    except (TypeError, ValueError, IndexError):
        return None
    return box if len(box) == 4 and all(v == v for v in box) else None  # type: ignore[return-value]


def _texts(blocks: Sequence[dict]) -> list[str]:
    from scicurate.parsers.lowcost import blocks_from_mineru_page

    return [b.text.strip() for b in blocks_from_mineru_page({"blocks": list(blocks)})]


def page_blocks(page: Mapping[str, Any]) -> list[tuple[str, str]]:
    """A MinerU middle-JSON page -> [(block type, text)] in MinerU's order, text as the PDF
    run renders it (lowcost.blocks_from_mineru_page)."""
    from scicurate.parsers.lowcost import blocks_from_mineru_page

    return [(b.type, b.text) for b in blocks_from_mineru_page(dict(page))]


def figure_specs(page: Mapping[str, Any]) -> list[FigureSpec]:
    """The figure and table blocks of one MinerU page, in block order (pure).

    Caption: the block's `*_caption` children, joined by a newline. Without one, the adjacent
    text block that starts like a caption (`_CAPTION_RE`) is taken: the next block for a
    figure (captions sit below figures), the previous one for a table, then the other side;
    a block serves one figure at most. Body: the union of the `*_body` children's bboxes."""
    raw_blocks = [b for b in (page.get("blocks") or ()) if isinstance(b, dict)]
    types = [str(b.get("type", "text")) for b in raw_blocks]
    texts = _texts(raw_blocks)
    used: set[int] = set()
    specs = []
    for pos, block in enumerate(raw_blocks):
        kind = _FIGURE_TYPES.get(types[pos])
        if kind is None:
            continue
        children = [c for c in (block.get("content") or ()) if isinstance(c, dict)] \
            if isinstance(block.get("content"), list) else []
        captions = [c for c in children if str(c.get("type", "")).endswith("_caption")]
        bodies = [b for b in (_bbox(c.get("bbox")) for c in children if str(c.get("type", "")).endswith("_body")) if b]
        caption = "\n".join(t for t in _texts(captions) if t)
        flags: tuple[str, ...] = ()
        if not caption:
            order = (pos + 1, pos - 1) if kind == "image" else (pos - 1, pos + 1)
            for near in order:
                if (0 <= near < len(raw_blocks) and near not in used and types[near] == "text"
                        and _CAPTION_RE.match(texts[near])):
                    caption, flags = texts[near], (CAPTION_FROM_BLOCK,)
                    used.add(near)
                    break
        body = None
        if bodies:
            body = (min(b[0] for b in bodies), min(b[1] for b in bodies),
                    max(b[2] for b in bodies), max(b[3] for b in bodies))
        specs.append(FigureSpec(pos, kind, caption, body, flags))
    return specs


_TAG_RE = re.compile(r"</?su[bp]>")
_NON_WORD_RE = re.compile(r"[\W_]+")
_FENCE_RE = re.compile(r"^\s*(`{3,}|~{3,})")


def normalise(text: str) -> str:
    """Text for matching: NFKC, case-folded, <sub>/<sup> tags and all but letters and digits
    removed (spacing, line breaks, punctuation and Markdown marks differ between MinerU's
    blocks and the run's text)."""
    return _NON_WORD_RE.sub("", _TAG_RE.sub("", unicodedata.normalize("NFKC", text)).casefold())


def paragraph_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each paragraph of `text` (separated by blank lines); a ``` or ~~~ fence
    with blank lines inside stays one paragraph. Whitespace-only paragraphs are left out."""
    spans: list[tuple[int, int]] = []
    start = None
    fence = ""
    pos = 0
    for line in text.splitlines(keepends=True):
        end = pos + len(line)
        stripped = line.strip()
        opened = _FENCE_RE.match(line)
        if fence:
            if stripped.startswith(fence) and stripped.strip(fence[0]) == "":
                fence = ""
        elif opened:
            fence = opened.group(1)
            start = pos if start is None else start
        if not fence and not stripped:
            if start is not None:
                spans.append((start, pos))
                start = None
        elif start is None:
            start = pos
        pos = end
    if start is not None:
        spans.append((start, len(text)))
    return [(s, _rstrip_end(text, s, e)) for s, e in spans if text[s:e].strip()]


def _rstrip_end(text: str, start: int, end: int) -> int:
    while end > start and text[end - 1] in "\r\n":
        end -= 1
    return end


def place_figures(page_text: str, blocks: Sequence[tuple[str, str]],
                  figures: Sequence[tuple[int, str]]) -> list[tuple[int, str]]:
    """Where each figure of a page goes (pure): for each (block position, caption) in
    `figures`, (paragraph index it follows, -1 = before the first, and the rule used, one of
    PLACED_*). `blocks` are the page's (type, text) in MinerU's order. See the module docstring
    for the rule."""
    spans = paragraph_spans(page_text)
    norms = [normalise(page_text[s:e]) for s, e in spans]
    last = len(spans) - 1

    def find(key: str, prefer_start: bool = False) -> int:
        if len(key) < _MIN_KEY_CHARS:
            return -2
        if prefer_start:
            for i, n in enumerate(norms):
                if n.startswith(key):
                    return i
        for i, n in enumerate(norms):
            if key in n:
                return i
        return -2

    out = []
    for pos, caption in figures:
        key = normalise(caption)
        head = find(key[:_KEY_CHARS], prefer_start=True)
        tail = find(key[-_KEY_CHARS:])
        if tail >= 0 and (head < 0 or tail >= head):
            out.append((tail, PLACED_AFTER_CAPTION))
            continue
        if head >= 0:
            out.append((head, PLACED_AFTER_CAPTION))
            continue
        seen_text = False
        for before in range(min(pos, len(blocks)) - 1, -1, -1):
            kind, text = blocks[before]
            if kind in _SKIP_TYPES or not normalise(text):
                continue
            seen_text = True
            found = find(normalise(text)[-_KEY_CHARS:])
            if found >= 0:
                out.append((found, PLACED_AFTER_BLOCK))
                break
        else:
            out.append((-1, PLACED_PAGE_START) if not seen_text else (last, PLACED_PAGE_END))
    return out


def page_segments(page_text: str, anchors: Sequence[int]) -> list[tuple[str, Any]]:
    """A page's text cut at the figures' anchors (pure): [("text", str) | ("figure", k)] where
    k indexes `anchors`; figures sharing an anchor keep their order."""
    spans = paragraph_spans(page_text)
    order = sorted(range(len(anchors)), key=lambda k: (anchors[k], k))
    out: list[tuple[str, Any]] = []
    first = 0                                   # first paragraph not emitted yet
    for k in order:
        upto = min(anchors[k], len(spans) - 1)
        if upto >= first:
            out.append(("text", page_text[spans[first][0]:spans[upto][1]]))
            first = upto + 1
        out.append(("figure", k))
    if first < len(spans):
        out.append(("text", page_text[spans[first][0]:spans[-1][1]]))
    return out


def judge_crop(png: Optional[bytes], caption: str, why_missing: str, filters: ImageFilterConfig) -> dict[str, Any]:
    """One crop (None when missing) -> its verdict as plain data (pure): {keep, reasons, flags,
    detail, measures, width, height}. check_pair first (missing_image, no_caption), then
    check_image."""
    pair = imf.check_pair(caption, None, bool(png), filters, why_missing=why_missing or imf.NO_IMAGE_REF)
    out: dict[str, Any] = {"keep": False, "reasons": list(pair.reasons), "flags": list(pair.flags),
                           "detail": pair.detail, "measures": None, "width": 0, "height": 0}
    if imf.MISSING_IMAGE in pair.reasons or not png:
        return out
    measures, verdict = imf.check_image(png, filters)
    if verdict is None:
        out["reasons"] = list(pair.reasons) + [measures.reason]
        out["detail"] = measures.message
        return out
    out["measures"] = imf.measures_dict(measures)
    out["width"], out["height"] = measures.width, measures.height
    out["reasons"] = list(pair.reasons) + list(verdict.reasons)
    out["keep"] = not out["reasons"]
    return out


def crop_box(body: Optional[tuple[float, float, float, float]], width_pt: float,
             height_pt: float) -> tuple[Optional[tuple[float, float, float, float]], str]:
    """A body's 0-1 bbox -> (bbox in points clipped to the page, "") or (None, why missing)."""
    if body is None:
        return None, NO_IMAGE_BODY
    x0, y0, x1, y1 = body
    if x1 <= 0 or y1 <= 0 or x0 >= 1 or y0 >= 1:
        return None, BBOX_OUTSIDE_PAGE
    x0, y0, x1, y1 = (min(max(v, 0.0), 1.0) for v in (x0, y0, x1, y1))
    box = (x0 * width_pt, y0 * height_pt, x1 * width_pt, y1 * height_pt)
    if box[2] - box[0] < _MIN_SIDE_PT or box[3] - box[1] < _MIN_SIDE_PT:
        return None, EMPTY_BBOX
    return tuple(round(v, 2) for v in box), ""  # type: ignore[return-value]


# ---- the parent side ---------------------------------------------------------------------------

_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:(//|[^/\\])")


def _resolve(pdf_path: str, base_dir: Optional[str]) -> str | InterleaveFailure:
    """The checks made before anything is opened -> the path to read (symlinks resolved)."""
    raw = pdf_path or ""
    if imf.is_remote_ref(raw) or (_SCHEME_RE.match(raw) and not os.path.exists(raw)):
        return InterleaveFailure(REMOTE_REF_NOT_FETCHED, f"{raw[:200]!r} is a URL: this stage never fetches")
    if "\x00" in raw or (base_dir is not None and "\x00" in base_dir):
        return InterleaveFailure(UNSAFE_PATH, "the path holds a NUL character")
    if not raw.strip():
        return InterleaveFailure(SOURCE_MISSING, "no path given")
    real = os.path.realpath(raw)
    if base_dir is None:
        return real
    base = os.path.realpath(base_dir or ".")
    if os.path.commonpath([base, real]) != base:
        return InterleaveFailure(UNSAFE_PATH, f"{raw[:200]!r} resolves outside {base_dir[:200]!r}: not opened")
    return real


def _read_input(path: str, max_bytes: int) -> bytes | InterleaveFailure:
    """The bytes of the regular file at `path` (already resolved: a symlink put there since is
    refused), at most max_bytes + 1. A FIFO or device is refused without blocking on it."""
    import stat

    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return InterleaveFailure(SOURCE_MISSING, f"no file at {path[:300]!r}")
    except OSError as exc:
        return InterleaveFailure(UNREADABLE, f"{path[:300]!r}: {type(exc).__name__}: {exc}")
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return InterleaveFailure(UNREADABLE, f"{path[:300]!r} is not a regular file")
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return fh.read(max_bytes + 1)
    except OSError as exc:
        return InterleaveFailure(UNREADABLE, f"{path[:300]!r}: {type(exc).__name__}: {exc}")
    finally:
        os.close(fd)


def _doc_reason(reason: str) -> str:
    from scicurate.records import REASON_CORRUPT

    return CORRUPT_INPUT if reason == REASON_CORRUPT else reason if reason in FAILURE_REASONS else PARSER_ERROR


def interleave_document(pdf_path: str, page_texts: Mapping[int, str], config: InterleaveConfig = InterleaveConfig(),
                        *, base_dir: str | None = None) -> InterleavedDoc | InterleaveFailure:
    """One PDF and its run's page texts -> an InterleavedDoc, or an InterleaveFailure for a
    document that cannot be used. Never raises for bad input (a bad `page_texts` type does).
    `pdf_path` is resolved as open() would (a relative path from the working directory);
    `base_dir` is a fence: a path that resolves outside it (symlinks followed) is
    `unsafe_path` and is never opened."""
    from scicurate.parsers.split import DocumentError, precheck

    texts = {int(k): v for k, v in page_texts.items()}
    if any(k < 0 or not isinstance(v, str) for k, v in texts.items()):
        raise TypeError("page_texts maps page indices >= 0 to strings")
    path = _resolve(pdf_path, base_dir)
    if isinstance(path, InterleaveFailure):
        return path
    data = _read_input(path, config.max_bytes)
    if isinstance(data, InterleaveFailure):
        return data
    try:
        precheck(data, max_bytes=config.max_bytes)
    except DocumentError as exc:
        return InterleaveFailure(_doc_reason(exc.reason), exc.message)
    scratch = tempfile.mkdtemp(prefix="scicurate-interleave-")
    try:
        result = _run_child(data, sorted(texts), config, scratch)
        if isinstance(result, InterleaveFailure):
            return result
        return _assemble(texts, result, scratch, config)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _run_child(data: bytes, pages: list[int], config: InterleaveConfig, scratch: str) -> dict | InterleaveFailure:
    from scicurate.parsers.sandbox import file_tail, kill_process_group

    pdf = os.path.join(scratch, "input.pdf")
    out_dir = os.path.join(scratch, "out")
    os.mkdir(out_dir)
    with open(pdf, "wb") as fh:
        fh.write(data)
    request = os.path.join(scratch, "request.json")
    with open(request, "w", encoding="utf-8") as fh:
        json.dump({"pdf": pdf, "out_dir": out_dir, "pages": pages, "config": config.to_json()}, fh)
    log = os.path.join(scratch, "child.log")
    cmd = [sys.executable, "-m", "scicurate.interleave", request, str(os.getpid())]
    with open(log, "wb") as err:
        # own session: a kill reaches MinerU's render workers too; no preexec_fn (see
        # parsers.sandbox.die_with_parent): the child sets its own limits
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=err, stderr=err, start_new_session=True)
    exited = _wait_unreaped(proc, config.timeout_s)
    # Kill the group before reaping the child: its pid (the group's id) cannot be reused while
    # it is a zombie, and MinerU's render workers must not outlive it.
    kill_process_group(proc)
    if not exited:
        return InterleaveFailure(TIMEOUT, f"no result within {config.timeout_s:g} s; process group killed")
    result_path = os.path.join(out_dir, _RESULT_NAME)
    tail = file_tail(log)
    if not os.path.isfile(result_path):
        cap = f", memory cap {config.memory_mb} MiB" if config.memory_mb else ""
        oom = any(s in tail for s in ("MemoryError", "bad_alloc", "Cannot allocate memory", "out of memory"))
        return InterleaveFailure(OUT_OF_MEMORY if oom else PARSER_CRASH,
                                 f"interleave process died (exit code {proc.returncode}{cap}); "
                                 f"last stderr: {tail[-400:]!r}")
    if os.path.getsize(result_path) > _MAX_RESULT_BYTES:
        return InterleaveFailure(PARSER_ERROR, "the interleave process wrote an oversized result")
    with open(result_path, encoding="utf-8") as fh:
        result = json.load(fh)
    if not result.get("ok"):
        return InterleaveFailure(result.get("reason") if result.get("reason") in FAILURE_REASONS else PARSER_ERROR,
                                 str(result.get("message", ""))[:2000])
    return result


def _wait_unreaped(proc: subprocess.Popen, timeout: float) -> bool:
    """Wait until the child exits, leaving it unreaped (a zombie); False past `timeout`."""
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        try:
            if os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT | os.WNOHANG) is not None:
                return True
        except ChildProcessError:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, 0.05)


def _assemble(texts: Mapping[int, str], result: dict, scratch: str, config: InterleaveConfig) -> InterleavedDoc:
    """The child's result + the run's texts -> InterleavedDoc (placement happens here)."""
    out_dir = os.path.join(scratch, "out")
    pages = {int(k): v for k, v in result.get("pages", {}).items()}
    segments: list[Segment] = []
    images: list[FigureImage] = []
    dropped: list[DroppedFigure] = []
    for page_index in sorted(texts):
        text = texts[page_index]
        page = pages.get(page_index) or {"blocks": [], "figures": []}
        figures = page["figures"]
        kept = [f for f in figures if f["keep"]]
        for f in figures:
            if not f["keep"]:
                reasons = tuple(f["reasons"])
                bbox = tuple(f["bbox"] or (0.0, 0.0, 0.0, 0.0))
                dropped.append(DroppedFigure(page_index, f["kind"], f["caption"], reasons[0], reasons, f["detail"],
                                             f["measures"], bbox, tuple(f["flags"])))
        placed = place_figures(text, [tuple(b) for b in page["blocks"]], [(f["block"], f["caption"]) for f in kept])
        for kind, value in page_segments(text, [a for a, _ in placed]):
            if kind == "text":
                segments.append(("text", value, None))
                continue
            f = kept[value]
            with open(os.path.join(out_dir, os.path.basename(f["file"])), "rb") as fh:
                data = fh.read(config.filters.max_bytes + 1)
            images.append(FigureImage(
                image_id=hashlib.sha256(data).hexdigest(), page_index=page_index, bbox=tuple(f["bbox"]),
                kind=f["kind"], caption=f["caption"], data=data, width=f["width"], height=f["height"],
                flags=tuple(f["flags"]), placement=placed[value][1],
            ))
            segments.append(("image", None, len(images) - 1))
    skipped = tuple((int(p), str(r)) for p, r in result.get("skipped", ()))
    return InterleavedDoc(tuple(segments), tuple(images), tuple(dropped), skipped,
                          int(result.get("doc_pages", 0)), str(result.get("parser", "")))


# ---- the child side ----------------------------------------------------------------------------

def _render_crop(page, box: tuple[float, float, float, float], config: InterleaveConfig) -> bytes:
    """Render only `box` (points, top-left origin) of a pypdfium2 page as PNG bytes."""
    import io

    from PIL import Image

    width_pt, height_pt = page.get_size()
    x0, y0, x1, y1 = box
    scale = min(config.dpi / 72.0, config.max_side_px / max(x1 - x0, y1 - y0))
    crop = (x0, height_pt - y1, width_pt - x1, y0)             # left, bottom, right, top cut off
    image = page.render(scale=scale, crop=crop).to_pil().convert("RGB")
    if max(image.size) > config.max_side_px:                   # ceil() in PDFium's crop maths
        image.thumbnail((config.max_side_px, config.max_side_px), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def extract_figures(pdf: str, pages: Sequence[int], config: InterleaveConfig, out_dir: str) -> dict[str, Any]:
    """In the child: every figure of the requested pages, cropped, judged and written to
    `out_dir` as PNG files -> the result as plain data. Raises DocumentError for a document
    that cannot be used."""
    from scicurate.parsers.lowcost import LowCostParser, mineru_version
    from scicurate.parsers.split import DocumentError, damage_reason, damaged_pages, open_pdf
    from scicurate.records import REASON_EMPTY, REASON_TOO_MANY_PAGES

    doc = open_pdf(pdf)
    try:
        n = len(doc)
        if n == 0:
            raise DocumentError(REASON_EMPTY, "PDF has zero pages")
        if n > config.max_pages:
            raise DocumentError(REASON_TOO_MANY_PAGES, f"{n} pages exceeds max_pages={config.max_pages}")
        skipped: dict[int, str] = {i: PAGE_NOT_IN_PDF for i in pages if i >= n}
        damaged = damaged_pages(pdf)
        skipped.update({i: damage_reason(damaged[i]) for i in pages if i in damaged})
        todo = [i for i in pages if i not in skipped]
        parsed: dict[int, dict] = {}
        if todo:
            parser = LowCostParser("flash").load()
            page_range = "" if len(todo) == n else ",".join(str(i + 1) for i in todo)
            for page in parser._parser.parse(pdf, page_range=page_range).to_dict().get("pages") or ():
                if isinstance(page.get("page_idx"), int):
                    parsed[page["page_idx"]] = page
        out_pages: dict[str, Any] = {}
        for i in todo:
            if i not in parsed:
                skipped[i] = PAGE_NOT_PARSED
                continue
            specs = figure_specs(parsed[i])
            blocks = [[kind, text[:4000]] for kind, text in page_blocks(parsed[i])]
            figures = []
            if specs:
                pdf_page = doc[i]
                try:
                    width_pt, height_pt = pdf_page.get_size()
                    for k, spec in enumerate(specs):
                        box, why = crop_box(spec.body, width_pt, height_pt)
                        png = None
                        if box is not None:
                            try:
                                png = _render_crop(pdf_page, box, config)
                            except MemoryError:
                                raise
                            except Exception:  # noqa: BLE001 - one figure's render failing costs that figure
                                why = RENDER_FAILED
                        verdict = judge_crop(png, spec.caption, why, config.filters)
                        name = ""
                        if verdict["keep"] and png:
                            name = f"fig-{i:06d}-{k:04d}.png"
                            with open(os.path.join(out_dir, name), "wb") as fh:
                                fh.write(png)
                        figures.append({**verdict, "block": spec.block, "kind": spec.kind, "caption": spec.caption,
                                        "bbox": list(box) if box else None, "file": name,
                                        "flags": verdict["flags"] + list(spec.flags)})
                finally:
                    pdf_page.close()
            out_pages[str(i)] = {"blocks": blocks, "figures": figures}
        return {"ok": True, "doc_pages": n, "parser": f"mineru {mineru_version()} flash", "pages": out_pages,
                "skipped": sorted([p, r] for p, r in skipped.items())}
    finally:
        doc.close()


def _child_main(argv: list[str]) -> int:
    from scicurate.parsers.sandbox import classify_error, die_with_parent
    from scicurate.parsers.split import DocumentError

    die_with_parent(int(argv[1]) if len(argv) > 1 else 0)
    with open(argv[0], encoding="utf-8") as fh:
        request = json.load(fh)
    config = InterleaveConfig.from_json(request["config"])
    if config.memory_mb:
        import resource

        cap = config.memory_mb << 20
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    os.dup2(2, 1)                                # anything native code prints goes to the log
    sys.stdout = sys.stderr
    hook = os.environ.get(TEST_HOOK_ENV, "")
    if hook == "crash":
        import signal

        os.kill(os.getpid(), signal.SIGKILL)
    elif hook == "hang":
        time.sleep(3600)
    out_dir = request["out_dir"]
    try:
        if hook == "oom":
            bytearray((config.memory_mb or 1 << 20) << 20)
        result = extract_figures(request["pdf"], request["pages"], config, out_dir)
    except DocumentError as exc:
        result = {"ok": False, "reason": _doc_reason(exc.reason), "message": exc.message}
    except MemoryError as exc:
        result = {"ok": False, "reason": OUT_OF_MEMORY,
                  "message": f"MemoryError {exc} under the {config.memory_mb} MiB cap"}
    except Exception as exc:  # noqa: BLE001 - reported as this document's failure
        import traceback

        result = {"ok": False, "reason": _doc_reason(classify_error(exc)),
                  "message": f"{type(exc).__name__}: {exc} | {traceback.format_exc(limit=4)[-800:]}"}
    tmp = os.path.join(out_dir, _RESULT_NAME + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(result, fh, ensure_ascii=False)
    os.replace(tmp, os.path.join(out_dir, _RESULT_NAME))
    return 0


__all__ = [
    "DroppedFigure", "FAILURE_REASONS", "FigureImage", "FigureSpec", "InterleaveConfig", "InterleaveFailure",
    "InterleavedDoc", "figure_specs", "interleave_document", "judge_crop", "normalise", "page_segments",
    "paragraph_spans", "place_figures",
]


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
