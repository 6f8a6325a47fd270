"""Typed, frozen records passed between pipeline stages.

Every record carries its provenance (which parser, tier, route and why) so a data engineer
reading one row can tell how it was made. `scicurate.schema` owns the matching Arrow schemas.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from typing import Any

# Dead-letter reason codes. Stable strings: they are column values and counter names.
REASON_UNREADABLE = "unreadable"          # the file system refused to give us the bytes
REASON_TOO_LARGE = "too_large"            # more bytes than PdfConfig.max_bytes
REASON_NOT_PDF = "not_pdf"                # no %PDF- header in the first KiB
REASON_CORRUPT = "corrupt"                # PDFium cannot open it
REASON_ENCRYPTED = "encrypted"            # needs a password we do not have
REASON_EMPTY = "empty"                    # zero pages, or zero bytes
REASON_TOO_MANY_PAGES = "too_many_pages"  # more pages than PdfConfig.max_pages
REASON_PAGE_TIMEOUT = "page_timeout"      # the parser ran past its per-page time budget
REASON_PARSER_CRASH = "parser_crash"      # the parser process died (segfault, OOM kill)
REASON_OUT_OF_MEMORY = "out_of_memory"    # the page needed more than the parser's memory cap
REASON_DECOMPRESSION_BOMB = "decompression_bomb"  # its content streams inflate past 256 MiB: not parsed
REASON_PARSER_ERROR = "parser_error"      # the parser raised on this page
REASON_DAMAGED_STREAM = "damaged_stream"  # a page's content stream fails its Flate checksum
REASON_ALL_PAGES_FAILED = "all_pages_failed"  # no page of the document could be parsed
REASON_NO_TEXT = "no_text"                # every page parsed, none produced any text
REASON_INTERNAL = "internal_error"        # a bug in scicurate itself; the message says where
REASON_FALLBACK_RATE = "high_cost_fallback_rate"  # the VLM failed on too many of the routed pages

DOCUMENT_REASONS = (
    REASON_UNREADABLE, REASON_TOO_LARGE, REASON_NOT_PDF, REASON_CORRUPT, REASON_ENCRYPTED,
    REASON_EMPTY, REASON_TOO_MANY_PAGES, REASON_ALL_PAGES_FAILED, REASON_NO_TEXT, REASON_INTERNAL,
    REASON_FALLBACK_RATE,
)
PAGE_REASONS = (
    REASON_PAGE_TIMEOUT, REASON_PARSER_CRASH, REASON_PARSER_ERROR, REASON_DAMAGED_STREAM, REASON_INTERNAL,
    REASON_OUT_OF_MEMORY, REASON_DECOMPRESSION_BOMB,
)

# Routes a page can take.
ROUTE_LOW_COST = "low_cost"
ROUTE_HIGH_COST = "high_cost"
ROUTES = (ROUTE_LOW_COST, ROUTE_HIGH_COST)

# Page parse status.
STATUS_OK = "ok"
STATUS_FAILED = "failed"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path) -> str:
    """sha256 of a file's bytes, read in 1 MiB blocks (model files run to gigabytes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def page_id(doc_id: str, page_index: int) -> str:
    """Stable page id: the document's content hash and the 0-based page index."""
    return f"{doc_id}:{page_index:05d}"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record that could not be turned into output, and why.

    `page_index` is None for a whole-document failure (it then counts in `dead_letter` of the
    summary) and set for a single page that failed inside an otherwise good document.
    """

    doc_id: str
    source: str
    stage: str
    reason: str
    message: str
    page_index: int | None = None

    def __post_init__(self) -> None:
        if not self.stage or not self.reason:
            raise ValueError("DeadLetter needs a stage and a reason code")
        if self.page_index is not None and self.page_index < 0:
            raise ValueError(f"negative page_index {self.page_index}")

    @property
    def level(self) -> str:
        return "document" if self.page_index is None else "page"

    def to_row(self) -> dict[str, Any]:
        row = dataclasses.asdict(self)
        row["level"] = self.level
        row["message"] = self.message[:4000]
        return row


@dataclass(frozen=True, slots=True)
class PdfInput:
    """A PDF's bytes as read from a Beam file system, with its content-hash id."""

    doc_id: str
    source: str
    data: bytes

    @staticmethod
    def from_bytes(source: str, data: bytes) -> "PdfInput":
        return PdfInput(doc_id=sha256_hex(data), source=source, data=data)


@dataclass(frozen=True, slots=True)
class PageWindow:
    """A contiguous run of pages cut out of one PDF as a small standalone PDF.

    Windows bound memory: a 3,000-page PDF becomes ~190 windows of 16 pages that can be parsed
    on different workers; no stage after splitting holds the whole document's pages.
    """

    doc_id: str
    source: str
    first_page: int        # 0-based index of the window's first page in the original PDF
    num_pages: int         # pages in this window
    doc_pages: int         # pages in the whole original document
    pdf_bytes: bytes       # the window as a standalone PDF
    damaged: tuple[tuple[int, str], ...] = ()  # (page index, why) of pages with corrupt streams

    def __post_init__(self) -> None:
        if self.first_page < 0 or self.num_pages <= 0:
            raise ValueError(f"bad window {self.first_page}+{self.num_pages}")
        if self.first_page + self.num_pages > self.doc_pages:
            raise ValueError("window runs past the end of the document")

    @property
    def page_indices(self) -> range:
        return range(self.first_page, self.first_page + self.num_pages)


@dataclass(frozen=True, slots=True)
class TextLayerStats:
    """What PDFium's own text layer says about a page, independent of any parser."""

    chars: int = 0               # characters in the text layer (whitespace excluded)
    math_font_chars: int = 0     # of those, characters drawn in a math font (CMMI, CMSY, …)
    image_area_ratio: float = 0.0  # share of the page area covered by image objects
    text: str = ""               # the raw text layer (used for signals, not for output)


@dataclass(frozen=True, slots=True)
class Block:
    """One layout block of a parsed page, in reading order."""

    type: str                   # MinerU block type: text, equation, table, image, header, …
    text: str                   # plain text of the block ("" when the parser gave none)
    bbox: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)  # normalised x0,y0,x1,y1
    level: int = 0              # heading level for titles, 0 otherwise
    inline_math: int = 0        # inline-equation spans inside the block
    script_spans: int = 0       # sub/superscript spans inside the block


@dataclass(frozen=True, slots=True)
class PageParse:
    """The low-cost parser's raw output for one page, before signals and routing."""

    doc_id: str
    source: str
    page_index: int
    doc_pages: int
    parser: str                 # "mineru" or "rapidocr"
    parser_version: str
    tier: str                   # MinerU tier ("flash", "basic", …) or "ocr"
    status: str                 # STATUS_OK or STATUS_FAILED
    blocks: tuple[Block, ...] = ()
    text_layer: TextLayerStats = field(default_factory=TextLayerStats)
    error_reason: str = ""
    error_message: str = ""
    seconds: float = 0.0

    def __post_init__(self) -> None:
        if self.status not in (STATUS_OK, STATUS_FAILED):
            raise ValueError(f"bad status {self.status!r}")
        if self.status == STATUS_FAILED and not self.error_reason:
            raise ValueError("a failed page needs an error_reason")
        if not 0 <= self.page_index < self.doc_pages:
            raise ValueError(f"page {self.page_index} outside 0..{self.doc_pages - 1}")

    @property
    def page_id(self) -> str:
        return page_id(self.doc_id, self.page_index)


@dataclass(frozen=True, slots=True)
class PageSignals:
    """Evidence that the cheap parse of a page is bad. Produced by `classifiers.page_signals`."""

    text_layer_chars: int = 0
    parsed_chars: int = 0
    has_text_layer: bool = True
    equation_blocks: int = 0
    empty_equation_blocks: int = 0     # equation blocks the parser left without text
    equation_area: float = 0.0         # share of the page area in equation blocks
    inline_math: int = 0
    script_spans: int = 0
    table_blocks: int = 0
    image_blocks: int = 0
    latex_commands: int = 0            # \frac, \alpha, … found in the text
    math_unicode_ratio: float = 0.0    # math alphanumerics, operators, Greek / all chars
    math_font_ratio: float = 0.0       # text-layer chars in math fonts / all text-layer chars
    cid_ratio: float = 0.0             # "(cid:N)" occurrences per 100 chars
    replacement_ratio: float = 0.0     # U+FFFD and private-use chars / all chars
    symbol_density: float = 0.0        # non-alphanumeric, non-space chars / all chars
    broken_line_ratio: float = 0.0     # text-layer lines of <= 3 chars / all lines
    lost_char_ratio: float = 0.0       # text-layer chars the parse lost (0..1)


@dataclass(frozen=True, slots=True)
class LlmUsage:
    """What language-model calls cost one record: the token and latency accounting per row."""

    calls: int = 0              # HTTP requests sent, retries included
    attempts: int = 0           # validated attempts (temperature schedule steps)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0      # summed wall time of the calls
    flags: str = ""             # comma-separated: repetition_truncated, invalid:<problem>, …

    def __add__(self, other: "LlmUsage") -> "LlmUsage":
        flags = ",".join(f for f in (self.flags, other.flags) if f)
        return LlmUsage(self.calls + other.calls, self.attempts + other.attempts,
                        self.prompt_tokens + other.prompt_tokens,
                        self.completion_tokens + other.completion_tokens,
                        self.latency_s + other.latency_s, flags)


@dataclass(frozen=True, slots=True)
class FormulaIssue:
    """A formula of a page that KaTeX could not parse, or an unclosed delimiter."""

    kind: str                   # inline | display
    latex: str                  # the formula (first 300 characters)
    error: str                  # KaTeX's message, or the checker's reason code


@dataclass(frozen=True, slots=True)
class SciString:
    """A scientific string the tagger wrapped in the page text (`<SMILES>…</SMILES>`, …)."""

    kind: str                   # smiles | protein | dna | rna | fasta
    text: str                   # the string as it stands in the text (first 300 characters)
    canonical: str = ""         # RDKit's canonical SMILES for smiles spans


# What the quality stages say about a page; -1 = not measured (the stage was off, or the page
# failed to parse).
QUALITY_REMOVED_GARBLED = "garbled"


@dataclass(frozen=True, slots=True)
class PageQuality:
    garble: float = -1.0             # 0 readable .. 1 garbled (classifiers.garble)
    garble_reasons: str = ""         # comma-separated features that raised it
    lang: str = ""                   # lid.176 language of the page's prose
    lang_prob: float = 0.0
    formulas: int = -1               # inline + display formulas found
    formulas_broken: int = 0         # of those, KaTeX could not parse
    formula_issues: tuple[FormulaIssue, ...] = ()   # the broken ones (first 20)
    scistrings: tuple[SciString, ...] = ()           # tagged SMILES / sequences (first 100)

    def __post_init__(self) -> None:
        if not (self.garble == -1.0 or 0.0 <= self.garble <= 1.0):
            raise ValueError(f"garble score {self.garble} outside [0, 1]")
        if self.formulas_broken < 0 or (self.formulas >= 0 and self.formulas_broken > self.formulas):
            raise ValueError(f"{self.formulas_broken} broken of {self.formulas} formulas")


@dataclass(frozen=True, slots=True)
class PageResult:
    """A page after signals, routing and post-processing: one row of the pages dataset."""

    doc_id: str
    source: str
    page_index: int
    doc_pages: int
    status: str
    text: str                   # post-processed Markdown of the page
    parser: str
    parser_version: str
    tier: str
    route: str                  # ROUTE_LOW_COST or ROUTE_HIGH_COST
    route_reason: str           # why: "below_threshold", "top_score", "no_text_layer", "failed"
    score: float                # questionability, higher = cheap parse more likely bad
    needs_high_cost: bool       # routed to the high-cost parser, which has not (yet) parsed it
    signals: PageSignals = field(default_factory=PageSignals)
    postprocess: str = ""       # comma-separated rules that changed the text
    error_reason: str = ""
    error_message: str = ""
    is_fallback: bool = False   # the high-cost parser was tried and failed: this is low-cost text
    prompt: str = ""            # prompt id@version that produced the text ("a@1,b@2" for passes)
    model: str = ""             # model id that produced the text
    llm: LlmUsage | None = None  # calls, tokens and latency spent on this page
    dedup_cluster: str = ""     # page_id of the near-duplicate page cluster it belongs to, if any
    removed: str = ""           # why its text is left out of the document ("" = kept), e.g. repeated_page
    quality: PageQuality = field(default_factory=PageQuality)
    reparse_reason: str = ""    # why a re-parse is worth trying (e.g. "broken_formulas:3"); "" = none

    def __post_init__(self) -> None:
        if self.route not in ROUTES:
            raise ValueError(f"bad route {self.route!r}")
        if not self.route_reason:
            raise ValueError("every page records why it took its route")
        if self.status not in (STATUS_OK, STATUS_FAILED):
            raise ValueError(f"bad status {self.status!r}")

    @property
    def page_id(self) -> str:
        return page_id(self.doc_id, self.page_index)


@dataclass(frozen=True, slots=True)
class PageSpan:
    """Where one page's text sits in the merged document, and how it was made."""

    page_index: int
    start: int
    end: int
    parser: str
    tier: str
    route: str
    route_reason: str
    status: str
    is_fallback: bool = False
    removed: str = ""            # the page's text is not in the document, and why


@dataclass(frozen=True, slots=True)
class DocumentResult:
    """A merged document: one row of the documents dataset."""

    doc_id: str
    source: str
    text: str
    num_pages: int
    pages_ok: int
    pages_failed: int
    pages_routed: int
    spans: tuple[PageSpan, ...]
    removed_lines: int = 0       # running headers / footers / page numbers dropped at merge
    pages_fallback: int = 0      # routed pages the high-cost parser failed on (low-cost text kept)
    pages_removed: int = 0       # pages left out of `text` (repeated across documents, …)
    duplicate_of: str = ""       # near-duplicate of this document (its cluster's smallest doc_id)
    garble: float = -1.0         # character-weighted garble score of its parsed pages (-1 = not measured)
    garbled_share: float = 0.0   # share of its parsed characters on pages removed as garbled
    formulas: int = 0            # formulas in its pages, and how many KaTeX could not parse
    formulas_broken: int = 0
    scistrings: int = 0          # SMILES / sequence spans tagged in its text
    edu_score: float = -1.0      # education level 0-5 (-1 = not scored: archive PDFs by default)
    edu_model: str = ""

    def __post_init__(self) -> None:
        if len(self.spans) != self.num_pages:
            raise ValueError(f"{len(self.spans)} spans for {self.num_pages} pages")
        for span in self.spans:
            if not 0 <= span.start <= span.end <= len(self.text):
                raise ValueError(f"span {span} outside the text")
