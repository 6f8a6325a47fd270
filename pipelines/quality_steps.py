"""Thin Beam shells around the quality controls of the PDF pipeline (issue 8). Wiring lives in
`pipelines.pdf`.

Scores first, thresholds after: `GarbleHandler` (RunInference), `CheckFormulas` and
`tag_scistrings` write what they measure into each page's `PageQuality`; only
`apply_page_thresholds` and `ApplyDocumentThresholds` decide, from those fields and the
config, so a threshold changes without re-measuring. Every decision leaves the record
readable: a garbled page stays in pages/ with `removed="garbled"`, a filtered document goes
to filtered/ with its reason.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Iterable, Iterator, Optional, Sequence

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.ml.inference.base import ModelHandler, PredictionResult
from apache_beam.pvalue import TaggedOutput

from scicurate.classifiers.garble import GarbleConfig, GarbleDetector, GarbleScore
from scicurate.config import PdfConfig
from scicurate.records import (
    QUALITY_REMOVED_GARBLED,
    STATUS_OK,
    DocumentResult,
    FormulaIssue,
    PageResult,
    SciString,
)

FILTERED = "filtered"
_LOG = logging.getLogger("scicurate.quality")

# Document filter reasons (column values of filtered/ and summary keys).
FILTER_GARBLED = "garbled"           # garbled pages hold >= garble_document_share of its text
FILTER_LOW_EDU = "low_education"     # education score below edu_threshold (web-crawled PDFs)

MAX_FORMULA_ISSUES = 20
MAX_SCISTRINGS = 100
MAX_SNIPPET = 300


def garble_config(config: PdfConfig) -> GarbleConfig:
    return GarbleConfig(page_threshold=config.garble_threshold, document_share=config.garble_document_share)


# ---- garble: score (RunInference), then threshold -----------------------------------------

class GarbleHandler(ModelHandler[PageResult, PredictionResult, GarbleDetector]):
    """RunInference handler: PageResult -> PredictionResult(page, GarbleScore, "garble@1").

    The "model" is lid.176 plus wordfreq's dictionaries, loaded once per process; failed pages
    and pages without text pass through unscored (score None)."""

    def __init__(self, config: GarbleConfig, *, max_batch_size: int = 64) -> None:
        super().__init__(min_batch_size=1, max_batch_size=max_batch_size)
        self.config = config

    def load_model(self) -> GarbleDetector:
        return GarbleDetector(self.config).load()

    def run_inference(self, batch: Sequence[PageResult], model: GarbleDetector,
                      inference_args: Optional[dict[str, Any]] = None) -> Iterable[PredictionResult]:
        todo = [i for i, p in enumerate(batch) if p.status == STATUS_OK and p.text.strip()]
        scores: list[GarbleScore | None] = [None] * len(batch)
        for i, result in zip(todo, model.scores([batch[i].text for i in todo])):
            scores[i] = result
        return [PredictionResult(page, result, model.name) for page, result in zip(batch, scores)]

    def get_metrics_namespace(self) -> str:
        return "RunInference_garble"


def repair_mojibake(page: PageResult) -> PageResult:
    """Page text with mojibake undone by ftfy (rule "ftfy_encoding" added to postprocess)."""
    from scicurate.classifiers.garble import repair_encoding

    if page.status != STATUS_OK or not page.text:
        return page
    fixed = repair_encoding(page.text)
    if fixed == page.text:
        return page
    Metrics.counter("pdf_garble", "mojibake_repaired").inc()
    rules = ",".join(r for r in (page.postprocess, "ftfy_encoding") if r)
    return dataclasses.replace(page, text=fixed, postprocess=rules)


def apply_garble(prediction: PredictionResult) -> PageResult:
    page, result = prediction.example, prediction.inference
    if result is None:
        Metrics.counter("pdf_garble", "not_scored").inc()
        return page
    Metrics.counter("pdf_garble", "scored").inc()
    quality = dataclasses.replace(page.quality, garble=result.score, garble_reasons=",".join(result.reasons),
                                  lang=result.features.lang, lang_prob=round(result.features.lang_prob, 4))
    return dataclasses.replace(page, quality=quality)


def apply_page_thresholds(page: PageResult, config: PdfConfig) -> PageResult:
    """A page at or above the garble threshold leaves the document (`removed="garbled"`);
    a page already removed for another reason keeps that reason."""
    if page.removed or page.quality.garble < 0 or page.quality.garble < config.garble_threshold:
        return page
    Metrics.counter("pdf_garble", "pages_removed").inc()
    return dataclasses.replace(page, removed=QUALITY_REMOVED_GARBLED)


# ---- formulas --------------------------------------------------------------------------------

def formula_quality(page: PageResult, report) -> PageResult:
    """A page and its FormulaReport -> the page with formula counts, the broken formulas and,
    when any is broken, a re-parse reason. Pure."""
    issues = tuple(
        FormulaIssue(kind=r.kind, latex=page.text[r.start:r.end][:MAX_SNIPPET],
                     error=(r.error or r.reason)[:MAX_SNIPPET])
        for r in report.broken_formulas[:MAX_FORMULA_ISSUES]
    )
    quality = dataclasses.replace(page.quality, formulas=report.formulas, formulas_broken=report.broken,
                                  formula_issues=issues)
    reparse = page.reparse_reason
    if report.broken and not reparse:
        reparse = f"broken_formulas:{report.broken}"
    return dataclasses.replace(page, quality=quality, reparse_reason=reparse)


class CheckFormulas(beam.DoFn):
    """PageResult -> the same page with every formula checked by KaTeX (one Node process per
    DoFn instance, started in setup)."""

    def __init__(self) -> None:
        self.checker = None
        self.pages = Metrics.counter("pdf_formulas", "pages")
        self.formulas = Metrics.counter("pdf_formulas", "formulas")
        self.broken = Metrics.counter("pdf_formulas", "broken")
        self.reparse = Metrics.counter("pdf_formulas", "reparse_candidates")

    def setup(self) -> None:
        from scicurate.parsers.formula_check import FormulaChecker

        self.checker = FormulaChecker()
        self.checker.start()

    def teardown(self) -> None:
        if self.checker is not None:
            self.checker.close()

    def process(self, page: PageResult) -> Iterator[PageResult]:
        from scicurate.parsers.formula_check import check_text

        if page.status != STATUS_OK or not page.text:
            yield page
            return
        report = check_text(page.text, self.checker)
        self.pages.inc()
        self.formulas.inc(report.formulas)
        if report.broken:
            self.broken.inc(report.broken)
            self.reparse.inc()
        yield formula_quality(page, report)


# ---- scientific strings ---------------------------------------------------------------------

def tag_scistrings(page: PageResult) -> PageResult:
    """Wrap SMILES and sequences of the page text in their tags and record them. Pure but for
    the counters."""
    from scicurate.classifiers.scistrings import tag

    if page.status != STATUS_OK or not page.text:
        return page
    tagged = tag(page.text)
    if not tagged.spans:
        return page
    for span in tagged.spans:
        Metrics.counter("pdf_scistrings", span.kind).inc()
    found = tuple(SciString(kind=s.kind, text=s.text[:MAX_SNIPPET], canonical=s.canonical[:MAX_SNIPPET]
                            if s.kind == "smiles" else "") for s in tagged.spans[:MAX_SCISTRINGS])
    return dataclasses.replace(page, text=tagged.text, quality=dataclasses.replace(page.quality, scistrings=found))


# ---- document thresholds ----------------------------------------------------------------------

def document_filter_reason(doc: DocumentResult, config: PdfConfig) -> str:
    """"" to keep the document, else the reason it goes to filtered/. Pure.

    garbled: pages removed as garbled hold at least `garble_document_share` of its parsed
      characters (what is left is the minority of a broken file), or nothing else is left.
    low_education: scored (web-crawled PDFs with --edu-model) and below `edu_threshold`.
    """
    if doc.garbled_share > 0 and (doc.garbled_share >= config.garble_document_share or not doc.text.strip()):
        return FILTER_GARBLED
    if doc.edu_score >= 0 and doc.edu_score < config.edu_threshold:
        return FILTER_LOW_EDU
    return ""


class ApplyDocumentThresholds(beam.DoFn):
    """DocumentResult -> kept DocumentResult | filtered: (DocumentResult, reason)."""

    def __init__(self, config: PdfConfig) -> None:
        self.config = config
        self.kept = Metrics.counter("pdf_quality", "documents_kept")
        self.counters: dict[str, Any] = {}

    def process(self, doc: DocumentResult) -> Iterator[Any]:
        reason = document_filter_reason(doc, self.config)
        if not reason:
            self.kept.inc()
            yield doc
            return
        if reason not in self.counters:
            self.counters[reason] = Metrics.counter("pdf_quality", f"filtered_{reason}")
        self.counters[reason].inc()
        yield TaggedOutput(FILTERED, (doc, reason))


def filter_detail(doc: DocumentResult, reason: str, config: PdfConfig) -> str:
    if reason == FILTER_GARBLED:
        return (f"{doc.garbled_share:.0%} of the parsed characters are on pages scored garbled "
                f"(>= {config.garble_threshold}); document garble score {doc.garble:.2f}")
    if reason == FILTER_LOW_EDU:
        return f"education score {doc.edu_score:.2f} < {config.edu_threshold} ({doc.edu_model})"
    return reason


# ---- tokens for the summary -------------------------------------------------------------------

class TokenSummaryKeys(beam.DoFn):
    """Pages, kept and filtered documents -> (summary key, tokens) pairs under "quality": the
    tokens each control removed, counted with the training tokenizer (`--tokenizer`)."""

    def __init__(self, tokenizer: str) -> None:
        self.tokenizer = tokenizer
        self.counter = None

    def setup(self) -> None:
        self.counter = load_counter(self.tokenizer)

    def process(self, element) -> Iterator[tuple[str, int]]:
        kind, record = element
        if kind == "page":
            page = record
            if page.status != STATUS_OK or not page.text:
                return
            n = self.counter(page.text)
            yield "quality.tokens_parsed", n
            if page.removed:
                yield f"quality.tokens_removed.{page.removed}", n
                yield f"quality.pages_removed.{page.removed}", 1
        elif kind == "document":
            n = self.counter(record.text)
            yield "quality.tokens_written", n
            if record.duplicate_of:      # marked, not removed: a reader filters on duplicate_of
                yield "quality.tokens_near_duplicate", n
        else:
            doc, reason = record
            yield f"quality.tokens_removed.{reason}_document", self.counter(doc.text)


def load_counter(name: str):
    """"words" -> whitespace words; "smollm2" (default) or a tokenizer.json path -> tokens."""
    if name == "words":
        return lambda text: len(text.split())
    from scicurate.tokens import load_tokenizer

    counter = load_tokenizer(None if name == "smollm2" else name)
    return counter.count


def quality_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """The flat "quality" counts -> nested tokens_removed / pages_removed with shares of the
    parsed tokens."""
    flat = summary.get("quality", {})
    out: dict[str, Any] = {"tokens_parsed": flat.get("tokens_parsed", 0), "tokens_written": flat.get("tokens_written", 0),
                           "tokens_near_duplicate": flat.get("tokens_near_duplicate", 0),
                           "pages_garble_scored": flat.get("pages_garble_scored", 0),
                           "tokens_removed": {}, "share_removed": {}, "pages_removed": {}}
    parsed = out["tokens_parsed"]
    for key, value in sorted(flat.items()):
        group, _, name = key.partition(".")
        if group == "tokens_removed":
            out["tokens_removed"][name] = value
            out["share_removed"][name] = round(value / parsed, 6) if parsed else 0.0
        elif group == "pages_removed":
            out["pages_removed"][name] = value
    removed = sum(out["tokens_removed"].values())
    out["share_removed"]["all"] = round(removed / parsed, 6) if parsed else 0.0
    return out


# ---- education score (web-crawled PDFs) ------------------------------------------------------

def edu_handler(config: PdfConfig):
    """KeyedModelHandler: (DocumentResult, text) -> (DocumentResult, PredictionResult(score))."""
    from apache_beam.ml.inference.base import KeyedModelHandler

    from scicurate.classifiers.edu import EduScoreHandler

    return KeyedModelHandler(EduScoreHandler(config.edu_model))


def edu_input(doc: DocumentResult) -> tuple[DocumentResult, str]:
    return doc, doc.text


def apply_edu(item) -> DocumentResult:
    doc, prediction = item
    Metrics.counter("pdf_edu", "scored").inc()
    score = min(5.0, max(0.0, float(prediction.inference)))
    return dataclasses.replace(doc, edu_score=round(score, 4), edu_model=str(prediction.model_id or ""))


# ---- the same controls on one document's pages, without Beam (`scicurate parse`) ------------

def quality_pages(pages: Sequence[PageResult], config: PdfConfig) -> list[PageResult]:
    """`run pdf`'s page controls in `_page_quality` order on a list of pages: tags, mojibake
    repair, garble score, formula check, page threshold."""
    pages = list(pages)
    if config.scistrings:
        pages = [tag_scistrings(p) for p in pages]
    if config.garble:
        pages = [repair_mojibake(p) for p in pages]
        handler = GarbleHandler(garble_config(config))
        pages = [apply_garble(r) for r in handler.run_inference(pages, handler.load_model())]
    if config.formula_check:
        from scicurate.parsers.formula_check import FormulaChecker, check_text

        with FormulaChecker() as checker:
            pages = [formula_quality(p, check_text(p.text, checker)) if p.status == STATUS_OK and p.text else p
                     for p in pages]
    return [apply_page_thresholds(p, config) for p in pages]
