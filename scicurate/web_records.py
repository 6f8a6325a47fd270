"""Typed, frozen records of the web triage pipeline (`scicurate run web`).

A page travels as one `WebDoc`, evolved with `dataclasses.replace` stage by stage: extraction
fills the text, scoring stages add their scores with the model or rule set that produced them,
the domain verdict and the optional LLM rewrite come last. Every page ends in exactly one of
three datasets: pages (written), filtered (a `WebDoc` plus the stage and reason codes that
dropped it) or dead letter (`WebDeadLetter`: the page, or the input record, could not be
processed). `scicurate.schema` owns the matching Arrow schemas.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scicurate.records import LlmUsage

# Stages, as written in the `stage` column of filtered and dead-letter rows.
STAGE_READ = "read"
STAGE_SCREEN = "screen"          # HTTP status and content type of the fetched record
STAGE_EXTRACT = "extract"
STAGE_EXACT_DEDUP = "exact_dedup"
STAGE_LINE_DEDUP = "line_dedup"
STAGE_PAGE_FILTER = "page_filter"  # rules, language, classifier thresholds
STAGE_NEAR_DEDUP = "near_dedup"
STAGE_DOMAIN = "domain_verdict"
STAGE_REWRITE = "rewrite"

# Filter reason codes set by the pipeline itself (rule, extraction and input codes come from
# their own modules: classifiers.web_rules.REASONS, parsers.html_extract, parsers.web_input).
REASON_NOT_HTML = "not_html"
REASON_HTTP_STATUS = "http_status"
REASON_EXACT_DUPLICATE = "exact_duplicate"
REASON_NEAR_DUPLICATE = "near_duplicate"
REASON_EMPTY_AFTER_LINE_DEDUP = "empty_after_line_dedup"
REASON_EMPTY_AFTER_CLEANING = "empty_after_cleaning"
REASON_LANGUAGE = "language"
REASON_LOW_QUALITY = "quality_classifier"
REASON_LOW_EDUCATION = "low_education"      # education score below WebConfig.min_edu
REASON_FORMAT = "format_classifier"
REASON_DOMAIN_DISCARD = "domain_discard"
REASON_INTERNAL = "internal_error"


@dataclass(frozen=True, slots=True)
class WebDoc:
    """One web page from extraction to output.

    `page_id` is a content hash of (url, body) from `parsers.web_input.page_id`, so a rerun
    writes the same ids and two fetches of one URL with different bodies stay two pages.
    Scores default to "not measured": `lang == ""`, `quality_score == -1.0`, `format == ""`.
    """

    page_id: str
    url: str
    domain: str
    source: str
    fetched: str = ""
    title: str = ""
    text: str = ""
    html_lang: str = ""            # what the page declares (trafilatura metadata / <html lang>)
    extractor: str = ""
    removed_lines: int = 0         # domain line dedup: recurring lines stripped from `text`
    lang: str = ""                 # fastText lid.176
    lang_score: float = 0.0
    stats: Any = None              # classifiers.web_rules.TextStats of `text` (after line dedup)
    rule_reasons: tuple[str, ...] = ()   # every failing rule; applied by the filter stage
    quality_score: float = -1.0    # P(hq) of the project's fastText quality model; -1 = not scored
    format: str = ""               # top label of the fastText format model; "" = not scored
    format_score: float = 0.0
    edu_score: float = -1.0        # education level 0-5 of the edu model (`--edu-model`); -1 = not scored
    classifier: str = ""           # model names (file stem + sha256 prefix) that scored the page
    duplicate_of: str = ""         # near-dup: the page_id of the cluster's representative
    sampled: bool = False          # one of the pages the triage agent read for its domain
    verdict: str = ""              # the domain's verdict: retain | rewrite | discard
    verdict_reasons: str = ""      # comma-separated reason codes of the domain verdict
    rewritten: bool = False        # `text` is the accepted LLM rewrite
    rewrite_flags: str = ""        # why a rewrite was not used (`rejected:numbers_lost`, `failed:unavailable`)
    original_text: str = ""        # the text before an accepted rewrite (audit trail); "" otherwise
    prompt: str = ""               # prompt id@version of the rewrite
    model: str = ""
    llm: LlmUsage | None = None

    def __post_init__(self) -> None:
        if not self.page_id:
            raise ValueError("a WebDoc needs a page_id")
        if self.verdict and self.verdict not in ("retain", "rewrite", "discard"):
            raise ValueError(f"unknown verdict {self.verdict!r}")


@dataclass(frozen=True, slots=True)
class FilteredPage:
    """A page a filter stage dropped: the page as it was, and every reason (the first is the
    one counted in the summary)."""

    doc: WebDoc
    stage: str
    reason: str
    reasons: tuple[str, ...] = ()
    detail: str = ""

    def __post_init__(self) -> None:
        if not self.stage or not self.reason:
            raise ValueError("a FilteredPage needs a stage and a reason")


@dataclass(frozen=True, slots=True)
class WebDeadLetter:
    """An input record or page that could not be processed (as opposed to one judged and dropped).

    `page_id` is "" for a failure that has no page yet (an unreadable file, a bad JSONL line,
    the rest of a truncated WARC)."""

    page_id: str
    url: str
    source: str
    stage: str
    reason: str
    message: str

    def __post_init__(self) -> None:
        if not self.stage or not self.reason:
            raise ValueError("a WebDeadLetter needs a stage and a reason")

    def to_row(self) -> dict[str, Any]:
        return {"page_id": self.page_id, "url": self.url, "source": self.source, "stage": self.stage,
                "reason": self.reason, "message": self.message[:4000]}
