"""The DoFns and small functions `pipelines/web.py` wires together. Logic lives in the cores:
`parsers.web_input` (readers), `parsers.html_extract` (sandboxed trafilatura),
`classifiers.web_rules` (Gopher/C4/FineWeb rules), `classifiers.web_fasttext` (lid.176, the
quality and format models), `classifiers.triage` (agent requests, tags, domain verdicts),
`classifiers.rewrite` (rewrite requests and guards), `parsers.web_clean` (tag-driven cleaning).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.metrics import Metrics
from apache_beam.pvalue import TaggedOutput

from scicurate.classifiers import rewrite as rewrite_core
from scicurate.classifiers import triage
from scicurate.classifiers import web_rules
from scicurate.dedup.exact import text_hash
from scicurate.parsers import html_extract, web_clean, web_input
from scicurate.pipelines.inference import failed_examples
from scicurate.pipelines.summary import CountSummary
from scicurate.records import LlmUsage
from scicurate.web_config import WebConfig
from scicurate.web_records import (
    REASON_DOMAIN_DISCARD,
    REASON_EMPTY_AFTER_CLEANING,
    REASON_EMPTY_AFTER_LINE_DEDUP,
    REASON_EXACT_DUPLICATE,
    REASON_FORMAT,
    REASON_HTTP_STATUS,
    REASON_INTERNAL,
    REASON_LANGUAGE,
    REASON_LOW_EDUCATION,
    REASON_LOW_QUALITY,
    REASON_NEAR_DUPLICATE,
    REASON_NOT_HTML,
    STAGE_DOMAIN,
    STAGE_EXACT_DEDUP,
    STAGE_EXTRACT,
    STAGE_LINE_DEDUP,
    STAGE_NEAR_DEDUP,
    STAGE_PAGE_FILTER,
    STAGE_READ,
    STAGE_SCREEN,
    FilteredPage,
    WebDeadLetter,
    WebDoc,
)

_LOG = logging.getLogger("scicurate.web")
NAMESPACE = "web"
FAILED = "failed"
FILTERED = "filtered"
REWRITE = "rewrite"
INFO = "info"
PROGRESS_EVERY_S = 30.0
_HTML_TYPES = ("text/html", "application/xhtml+xml")
# Extraction failures that mean "nothing to keep here", not "could not process": filtered.
_EXTRACT_FILTER_REASONS = ("no_text", "too_large")


def _filtered(doc: WebDoc, stage: str, reasons: Iterable[str], detail: str = "") -> TaggedOutput:
    reasons = tuple(reasons)
    Metrics.counter(NAMESPACE, f"filtered_{reasons[0].split(':', 1)[0]}").inc()
    return TaggedOutput(FILTERED, FilteredPage(doc=doc, stage=stage, reason=reasons[0], reasons=reasons,
                                               detail=detail))


def doc_from_page(page: web_input.WebPage) -> WebDoc:
    return WebDoc(page_id=page.page_id, url=page.url, domain=page.domain, source=page.source,
                  fetched=page.fetched)


# ---- read -----------------------------------------------------------------------------------

class ReadWebInputs(beam.DoFn):
    """ReadableFile -> WebPage | failed WebDeadLetter. The file is streamed (a multi-GB WARC is
    never held); a file that breaks mid-way keeps every record read before the break and adds
    one dead letter for the rest. Compression is left to the readers (WARC members are gzip
    records, which must not be decompressed as one stream by Beam)."""

    def __init__(self, config: WebConfig) -> None:
        self.max_body_bytes = config.max_body_bytes
        self.pages = Metrics.counter(NAMESPACE, "read_pages")
        self.failures = Metrics.counter(NAMESPACE, "read_failures")

    def process(self, readable) -> Iterator[Any]:
        path = readable.metadata.path

        def count(name: str) -> None:
            Metrics.counter(NAMESPACE, name).inc()

        try:
            web_input.input_format(path)
        except ValueError as exc:
            self.failures.inc()
            yield TaggedOutput(FAILED, WebDeadLetter("", "", path, STAGE_READ, "unsupported_input", str(exc)))
            return
        try:
            with readable.open(compression_type=CompressionTypes.UNCOMPRESSED) as stream:
                for item in web_input.read_input(stream, path, max_body_bytes=self.max_body_bytes, counts=count):
                    if isinstance(item, web_input.InputFailure):
                        self.failures.inc()
                        yield TaggedOutput(FAILED, WebDeadLetter("", item.url, item.source, STAGE_READ,
                                                                 item.reason, item.message))
                    else:
                        self.pages.inc()
                        yield item
        except Exception as exc:  # noqa: BLE001 - one bad file never stops the run
            self.failures.inc()
            yield TaggedOutput(FAILED, WebDeadLetter("", "", path, STAGE_READ, "unreadable",
                                                     f"{type(exc).__name__}: {exc}"))


def screen(page: web_input.WebPage) -> Iterator[Any]:
    """WebPage -> the page | filtered (not HTML, HTTP status other than 2xx)."""
    content_type = (page.content_type or "").split(";", 1)[0].strip().lower()
    if not 200 <= page.http_status < 300:
        yield _filtered(doc_from_page(page), STAGE_SCREEN, (REASON_HTTP_STATUS,), f"HTTP {page.http_status}")
    elif content_type and content_type not in _HTML_TYPES:
        yield _filtered(doc_from_page(page), STAGE_SCREEN, (REASON_NOT_HTML,),
                        f"{content_type}, {page.body_bytes} bytes")
    else:
        yield page


# ---- extract --------------------------------------------------------------------------------

class ExtractText(beam.DoFn):
    """[WebPage] (a batch) -> WebDoc | filtered (no main text, too large) | failed (timeout,
    crash, error). trafilatura runs in child processes (`html_extract.SandboxedExtractor`); a
    page that hangs or crashes one costs only itself. Logs pages/s every 30 s."""

    def __init__(self, config: WebConfig) -> None:
        self.config = config.extract
        self.extractor: html_extract.SandboxedExtractor | None = None
        self.ok = Metrics.counter(NAMESPACE, "extracted")
        self.failed = Metrics.counter(NAMESPACE, "extract_failed")

    def setup(self) -> None:
        self.extractor = html_extract.SandboxedExtractor(self.config)
        self.extractor.start()
        self._started = time.monotonic()
        self._last_log = self._started
        self._done = 0

    def teardown(self) -> None:
        if self.extractor is not None:
            self.extractor.close()
            self.extractor = None

    def process(self, batch: list) -> Iterator[Any]:
        assert self.extractor is not None
        results = self.extractor.extract_many([(p.page_id, p.body, p.url) for p in batch])
        for page, result in zip(batch, results):
            doc = doc_from_page(page)
            if isinstance(result, html_extract.ExtractFailure):
                if result.reason in _EXTRACT_FILTER_REASONS:
                    yield _filtered(doc, STAGE_EXTRACT, (result.reason,), result.message)
                else:
                    self.failed.inc()
                    yield TaggedOutput(FAILED, WebDeadLetter(page.page_id, page.url, page.source, STAGE_EXTRACT,
                                                             result.reason, result.message))
                continue
            self.ok.inc()
            yield dataclasses.replace(doc, title=result.title, text=result.text, html_lang=result.language,
                                      extractor=result.extractor)
        self._done += len(batch)
        now = time.monotonic()
        if now - self._last_log >= PROGRESS_EVERY_S:
            self._last_log = now
            _LOG.info("extracted %d pages in this worker (%.1f pages/s)", self._done,
                      self._done / max(1e-9, now - self._started))


# ---- exact dedup and line dedup ---------------------------------------------------------------

def exact_key(doc: WebDoc) -> tuple[str, WebDoc]:
    return text_hash(doc.text), doc


class ResolveExact(beam.DoFn):
    """(text hash, [WebDoc]) -> the representative (smallest (page_id, source)) | filtered
    exact_duplicate for every other page with the same normalised text. The group is read twice
    as a stream, never collected (GroupByKey values are re-iterable)."""

    def process(self, element) -> Iterator[Any]:
        _digest, docs = element
        best = min((d.page_id, d.source) for d in docs)
        for doc in docs:
            if (doc.page_id, doc.source) == best:
                yield doc
            else:
                yield _filtered(dataclasses.replace(doc, duplicate_of=best[0]), STAGE_EXACT_DEDUP,
                                (REASON_EXACT_DUPLICATE,), f"same text as {best[0]}")


def line_dedup_domain(doc: WebDoc) -> str:
    return doc.domain


def line_dedup_text(doc: WebDoc) -> str:
    return doc.text


def line_dedup_key(doc: WebDoc) -> str:
    return doc.page_id


def line_dedup_apply(doc: WebDoc, text_after: str, removed: int) -> WebDoc:
    if not removed:
        return doc
    return dataclasses.replace(doc, text=text_after, removed_lines=doc.removed_lines + removed)


def drop_emptied(doc: WebDoc) -> Iterator[Any]:
    if doc.text.strip():
        yield doc
    else:
        yield _filtered(doc, STAGE_LINE_DEDUP, (REASON_EMPTY_AFTER_LINE_DEDUP,),
                        f"all {doc.removed_lines} lines recur across the domain")


# ---- scores, then thresholds -----------------------------------------------------------------

def text_of(doc: WebDoc) -> tuple[WebDoc, str]:
    return doc, doc.text


def apply_language(item) -> WebDoc:
    doc, prediction = item
    lang, score = prediction.inference
    return dataclasses.replace(doc, lang=lang, lang_score=round(float(score), 6))


def score_rules(doc: WebDoc, config: WebConfig) -> WebDoc:
    stats = web_rules.text_stats(doc.text, doc.lang)
    return dataclasses.replace(doc, stats=stats, rule_reasons=web_rules.rule_failures(stats, config.rules, doc.lang))


def apply_quality(item) -> WebDoc:
    doc, prediction = item
    scores = prediction.inference
    return dataclasses.replace(doc, quality_score=round(float(scores.get("hq", 0.0)), 6),
                               classifier=_join(doc.classifier, prediction.model_id))


def apply_edu(item) -> WebDoc:
    doc, prediction = item
    score = min(5.0, max(0.0, float(prediction.inference)))
    return dataclasses.replace(doc, edu_score=round(score, 4), classifier=_join(doc.classifier, prediction.model_id))


def apply_format(item) -> WebDoc:
    doc, prediction = item
    scores = prediction.inference
    label = max(sorted(scores), key=lambda k: scores[k]) if scores else ""
    return dataclasses.replace(doc, format=label, format_score=round(float(scores.get(label, 0.0)), 6),
                               classifier=_join(doc.classifier, prediction.model_id))


def _join(left: str, right: str | None) -> str:
    return ",".join(x for x in (left, right or "") if x)


def page_filter_reasons(doc: WebDoc, config: WebConfig) -> tuple[str, ...]:
    """Every threshold the page fails, in a fixed order: language, rules, quality, format.
    Pure, so thresholds change without re-running any model."""
    reasons: list[str] = []
    if config.languages and (doc.lang not in config.languages or doc.lang_score < config.min_lang_score):
        reasons.append(f"{REASON_LANGUAGE}:{doc.lang or 'unknown'}")
    reasons.extend(doc.rule_reasons)
    if config.quality_model and doc.quality_score >= 0.0 and doc.quality_score < config.min_quality:
        reasons.append(REASON_LOW_QUALITY)
    if config.format_model and doc.format in config.drop_formats:
        reasons.append(f"{REASON_FORMAT}:{doc.format}")
    if config.edu_model and 0.0 <= doc.edu_score < config.min_edu:
        reasons.append(REASON_LOW_EDUCATION)
    return tuple(reasons)


class ApplyPageFilters(beam.DoFn):
    """WebDoc with scores -> kept WebDoc | filtered with every failing threshold."""

    def __init__(self, config: WebConfig) -> None:
        self.config = config
        self.kept = Metrics.counter(NAMESPACE, "page_filter_kept")

    def process(self, doc: WebDoc) -> Iterator[Any]:
        reasons = page_filter_reasons(doc, self.config)
        if reasons:
            yield _filtered(doc, STAGE_PAGE_FILTER, reasons, "; ".join(
                web_rules.describe(r) if r in web_rules.REASONS else r for r in reasons)[:2000])
        else:
            self.kept.inc()
            yield doc


def mark_near_duplicate(doc: WebDoc, label: str) -> WebDoc:
    return dataclasses.replace(doc, duplicate_of=label)


def split_near_duplicates(doc: WebDoc) -> Iterator[Any]:
    if doc.duplicate_of:
        yield _filtered(doc, STAGE_NEAR_DEDUP, (REASON_NEAR_DUPLICATE,), f"near-duplicate of {doc.duplicate_of}")
    else:
        yield doc


# ---- domains: sample, triage, verdict -----------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SampledPage:
    """What the agent reads of one sampled page (text already cut to the prompt's budget)."""

    key: int
    page_id: str
    url: str
    title: str
    text: str


def sample_item(doc: WebDoc, config: WebConfig) -> tuple[str, SampledPage]:
    limit = config.triage.max_page_chars
    text = doc.text if len(doc.text) <= limit + 1000 else doc.text[: limit + 1000]
    return doc.domain, SampledPage(triage.sample_key(doc.domain, doc.page_id, config.seed), doc.page_id,
                                   doc.url, doc.title, text)


def sample_sort_key(item: SampledPage) -> tuple[int, str]:
    return item.key, item.page_id


@dataclass(frozen=True, slots=True)
class DomainPlan:
    domain: str
    pages_seen: int
    pages_sampled: int
    lines_removed: int
    sampled_ids: tuple[str, ...]
    small: bool
    sample_cut: tuple[int, str] | None = None   # (sample key, page_id) of the last page read


@dataclass(frozen=True, slots=True)
class DomainApply:
    """What every page of a domain needs from its decision: small, because it is copied to
    each of the `join_shards` shards the domain's pages are spread over."""

    domain: str
    verdict: str
    reasons: tuple[str, ...]
    cleaning: tuple[str, ...]
    sample_cut: tuple[int, str] | None
    seed: int

    def sampled(self, page_id: str) -> bool:
        """Was this page one the agent read? The sample is the pages with the smallest
        (sample key, page_id), so a page can tell from the last one's pair."""
        if self.sample_cut is None:
            return False
        return (triage.sample_key(self.domain, page_id, self.seed), page_id) <= self.sample_cut


class DomainInfo(beam.CombineFn):
    """WebDoc -> (pages, lines removed by line dedup) per domain."""

    def create_accumulator(self):
        return 0, 0

    def add_input(self, acc, doc: WebDoc):
        return acc[0] + 1, acc[1] + doc.removed_lines

    def merge_accumulators(self, accs):
        pages = lines = 0
        for p, n in accs:
            pages, lines = pages + p, lines + n
        return pages, lines

    def extract_output(self, acc):
        return acc


class PlanDomain(beam.DoFn):
    """(domain, {"info": [(pages, lines)], "sample": [[SampledPage…]]}) -> keyed triage
    ChatRequests for the sampled pages of domains with >= min_domain_pages pages | info: DomainPlan."""

    def __init__(self, config: WebConfig) -> None:
        self.config = config
        self.small = Metrics.counter(NAMESPACE, "domains_small")
        self.triaged = Metrics.counter(NAMESPACE, "domains_triaged")

    def process(self, element) -> Iterator[Any]:
        domain, grouped = element
        info = list(grouped["info"])
        pages, lines = info[0] if info else (0, 0)
        samples = sorted((s for group in grouped["sample"] for s in group), key=sample_sort_key)
        samples = samples[: triage.sample_size(pages, cap=self.config.sample_per_domain,
                                               share=self.config.sample_share, minimum=self.config.sample_min)]
        small = pages < self.config.min_domain_pages or not domain
        ask = self.config.agent and not small
        (self.small if small else self.triaged).inc()
        cut = (samples[-1].key, samples[-1].page_id) if ask and samples else None
        yield TaggedOutput(INFO, (domain, DomainPlan(domain, pages, len(samples) if ask else 0, lines,
                                                     tuple(s.page_id for s in samples) if ask else (), small, cut)))
        if ask:
            for s in samples:
                request = triage.triage_request(s.page_id, s.url, domain, s.title, s.text, self.config.triage)
                yield (domain, s.page_id, s.url, s.text), request


@dataclass(frozen=True, slots=True)
class TagRow:
    """One sampled page's triage outcome: tags or the failure, the text the agent read, calls."""

    domain: str
    page_id: str
    url: str
    text: str
    tags: Any            # triage.PageTags | None
    error_reason: str
    error_message: str
    prompt: str
    model: str
    usage: LlmUsage


def tag_row(item) -> TagRow:
    (domain, page_id, url, text), prediction = item
    result = prediction.inference
    parsed = triage.tags_from_result(result, url=url, domain=domain)
    ok = isinstance(parsed, triage.PageTags)
    Metrics.counter(NAMESPACE, "tags_ok" if ok else "tags_failed").inc()
    return TagRow(domain, page_id, url, text, parsed if ok else None, "" if ok else parsed.reason,
                  "" if ok else parsed.message, result.prompt, result.model, result.usage)


def failed_tag_rows(failure, prompt: str) -> Iterator[TagRow]:
    """RunInference raised on a batch (a bug, not a bad answer): every page of it is a tag failure."""
    examples, exc = failed_examples(failure)
    for example in examples:
        try:
            (domain, page_id, url, text), _request = example
        except (TypeError, ValueError):
            continue
        Metrics.counter(NAMESPACE, "tags_failed").inc()
        yield TagRow(domain, page_id, url, text, None, "llm_exception", f"{type(exc).__name__}: {exc}"[:2000],
                     prompt, "", LlmUsage())


class TagStats(beam.CombineFn):
    """TagRow -> triage.DomainTagStats per domain (mergeable: `triage.TagAccumulator`)."""

    def create_accumulator(self):
        return triage.create()

    def add_input(self, acc, row: TagRow):
        item = row.tags if row.tags is not None else triage.TagFailure(
            row.page_id, row.url, row.domain, row.error_reason or "failed", row.error_message)
        return triage.add(acc, item)

    def merge_accumulators(self, accs):
        return triage.merge(accs)

    def extract_output(self, acc):
        return triage.extract(acc)


@dataclass(frozen=True, slots=True)
class DomainDecision:
    """The verdict of one domain with what the apply stage needs (sampled ids, cleaning)."""

    verdict: Any          # triage.DomainVerdict
    plan: DomainPlan
    cleaning: tuple[str, ...]


class DecideDomain(beam.DoFn):
    """(domain, {"plan": [DomainPlan], "stats": [DomainTagStats]}) -> (domain, DomainDecision)."""

    def __init__(self, config: WebConfig) -> None:
        self.config = config

    def process(self, element) -> Iterator[Any]:
        domain, grouped = element
        plans = list(grouped["plan"])
        if not plans:
            return
        plan = plans[0]
        stats = next(iter(grouped["stats"]), None) or triage.extract(triage.create())
        verdict = decide_domain(plan, stats, self.config)
        Metrics.counter(NAMESPACE, f"domains_{verdict.verdict}").inc()
        yield domain, DomainDecision(verdict, plan, web_clean.cleaning_actions(stats))


def to_apply(decision: DomainDecision, seed: int) -> DomainApply:
    return DomainApply(decision.verdict.domain, decision.verdict.verdict, tuple(decision.verdict.reasons),
                       decision.cleaning, decision.plan.sample_cut, seed)


def decide_domain(plan: DomainPlan, stats, config: WebConfig):
    """The agent's rule for triaged domains; the documented small-domain / no-agent rule otherwise."""
    if plan.small or not config.agent:
        reason = "small_domain" if plan.small else "no_agent"
        return triage.DomainVerdict(domain=plan.domain, verdict=config.small_domain_verdict, reasons=(reason,),
                                    stats=stats, pages_seen=plan.pages_seen, pages_sampled=plan.pages_sampled)
    return triage.decide(stats, domain=plan.domain, pages_seen=plan.pages_seen, pages_sampled=plan.pages_sampled,
                         config=config.verdict)


def page_shard(page_id: str, shards: int) -> int:
    return int.from_bytes(hashlib.blake2b(page_id.encode("utf-8"), digest_size=8).digest(), "big") % shards


class ApplyVerdict(beam.DoFn):
    """((domain, shard), {"decision": [DomainApply], "pages": [WebDoc]}) -> retained WebDoc |
    rewrite: WebDoc for the rewriter | filtered domain_discard. A page whose domain has no
    decision (cannot happen: every kept page's domain is planned) is an internal error."""

    def __init__(self, config: WebConfig) -> None:
        self.config = config

    def process(self, element) -> Iterator[Any]:
        _key, grouped = element
        decisions = list(grouped["decision"])
        decision = decisions[0] if decisions else None
        for doc in grouped["pages"]:
            if decision is None:
                yield TaggedOutput(FAILED, WebDeadLetter(doc.page_id, doc.url, doc.source, STAGE_DOMAIN,
                                                         REASON_INTERNAL, "no verdict for the page's domain"))
                continue
            text, cleaned = web_clean.clean_text(doc.text, decision.cleaning)
            doc = dataclasses.replace(doc, verdict=decision.verdict, verdict_reasons=",".join(decision.reasons),
                                      sampled=decision.sampled(doc.page_id), text=text,
                                      removed_lines=doc.removed_lines + cleaned)
            if not text.strip():
                yield _filtered(doc, STAGE_DOMAIN, (REASON_EMPTY_AFTER_CLEANING,),
                                f"domain cleaning {', '.join(decision.cleaning)} removed every line")
            elif decision.verdict == "discard":
                yield _filtered(doc, STAGE_DOMAIN, (REASON_DOMAIN_DISCARD,) + decision.reasons,
                                f"domain {decision.domain}: {', '.join(decision.reasons)}")
            elif decision.verdict == "rewrite" and self.config.rewrite and self.config.agent:
                yield TaggedOutput(REWRITE, doc)
            else:
                Metrics.counter(NAMESPACE, "written").inc()
                yield doc


# ---- rewrite ----------------------------------------------------------------------------------

def rewrite_requests(doc: WebDoc, config: WebConfig) -> Iterator[Any]:
    """WebDoc -> (doc, ChatRequest) | done: the doc unchanged, flagged, when it is too long (or
    empty) to rewrite."""
    skip = rewrite_core.skip_reason(doc.text, config.rewriter)
    if skip:
        Metrics.counter(NAMESPACE, f"rewrite_skipped_{skip}").inc()
        yield TaggedOutput("done", dataclasses.replace(doc, rewrite_flags=f"skipped:{skip}"))
        return
    yield doc, rewrite_core.rewrite_request(doc.page_id, doc.text, config.rewriter)


def apply_rewrite(item, config: WebConfig) -> WebDoc:
    doc, prediction = item
    result = prediction.inference
    common = dict(prompt=result.prompt, model=result.model, llm=result.usage)
    if not result.ok:
        Metrics.counter(NAMESPACE, "rewrite_failed").inc()
        return dataclasses.replace(doc, rewrite_flags=f"failed:{result.error_reason}", **common)
    check = rewrite_core.check_rewrite(doc.text, result.text, config.rewriter, finish_reason=result.finish_reason)
    if not check.ok:
        Metrics.counter(NAMESPACE, "rewrite_rejected").inc()
        return dataclasses.replace(doc, rewrite_flags="rejected:" + ",".join(check.reasons), **common)
    Metrics.counter(NAMESPACE, "rewrite_accepted").inc()
    text = rewrite_core.strip_wrapping_fence(result.text, doc.text).strip()
    return dataclasses.replace(doc, text=text, original_text=doc.text, rewritten=True, **common)


def failed_rewrites(failure) -> Iterator[WebDoc]:
    examples, exc = failed_examples(failure)
    for example in examples:
        try:
            doc, _request = example
        except (TypeError, ValueError):
            continue
        yield dataclasses.replace(doc, rewrite_flags=f"failed:llm_exception:{type(exc).__name__}")


# ---- summary ------------------------------------------------------------------------------------

def summary_keys_read(item) -> Iterable[str]:
    yield "inputs"


def summary_keys_written(doc: WebDoc) -> Iterable[Any]:
    yield "written"
    yield f"pages_by_verdict.{doc.verdict or 'none'}"
    if doc.rewritten:
        yield "rewrite.accepted"
    elif doc.rewrite_flags:
        yield f"rewrite.{doc.rewrite_flags.split(':', 1)[0]}"
    if doc.llm is not None and doc.llm.calls:
        yield "llm_calls", doc.llm.calls
        yield "llm_calls_rewrite", doc.llm.calls
    if doc.removed_lines:
        yield "lines_removed", doc.removed_lines


def summary_keys_filtered(row: FilteredPage) -> Iterable[str]:
    yield "filtered"
    yield f"filtered_reasons.{row.reason.split(':', 1)[0]}"
    yield f"filtered_stages.{row.stage}"
    if row.stage == STAGE_DOMAIN:
        yield "pages_by_verdict.discard"
    for reason in row.reasons:
        yield f"filter_checks_failed.{reason}"


def summary_keys_dead(dead: WebDeadLetter) -> Iterable[str]:
    yield "dead_letter"
    yield f"dead_letter_reasons.{dead.reason}"


def summary_keys_tags(row: TagRow) -> Iterable[Any]:
    yield "pages_sampled"
    yield "tags_ok" if row.tags is not None else "tag_failures"
    if row.usage.calls:
        yield "llm_calls", row.usage.calls
        yield "llm_calls_triage", row.usage.calls


def summary_keys_decision(item) -> Iterable[str]:
    _domain, decision = item
    yield "domains"
    yield f"domains_by_verdict.{decision.verdict.verdict}"
    yield "domains_small" if decision.plan.small else "domains_triaged"
    for reason in decision.verdict.reasons:
        yield f"verdict_reasons.{reason}"


class BuildSummary(CountSummary):
    """(key, count) pairs -> the nested summary with every top-level key present."""

    TOP = ("inputs", "written", "filtered", "dead_letter", "domains", "domains_triaged", "domains_small",
           "pages_sampled", "tags_ok", "tag_failures", "llm_calls", "llm_calls_triage", "llm_calls_rewrite",
           "lines_removed")
    GROUPS = ("filtered_reasons", "filtered_stages", "filter_checks_failed", "dead_letter_reasons",
              "domains_by_verdict", "pages_by_verdict", "verdict_reasons", "rewrite")

    def finish(self, summary: dict[str, Any]) -> dict[str, Any]:
        inputs = summary["inputs"]
        summary["llm_calls_per_1000_pages"] = round(1000.0 * summary["llm_calls"] / inputs, 3) if inputs else 0.0
        summary["accounted"] = inputs == summary["written"] + summary["filtered"] + summary["dead_letter"]
        return summary
