"""The one place that owns the Arrow/Parquet schemas of the output datasets.

`run pdf` writes side by side under the output directory:
  documents/  one row per merged document that passed the quality thresholds (DocumentResult)
  filtered/   one row per document a quality threshold took out, with its reason
  pages/      one row per page, failed and removed pages included (PageResult)
  dead_letter/ one row per document or page that could not be processed (DeadLetter)
The other pipelines' datasets follow below: web triage, recall, exam items, image-text pairs.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Optional

import pyarrow as pa

from scicurate.records import (
    DeadLetter,
    DocumentResult,
    FormulaIssue,
    LlmUsage,
    PageQuality,
    PageResult,
    PageSignals,
    SciString,
)

SCHEMA_VERSION = "4"  # 2: VLM provenance (is_fallback, prompt, model, llm usage), page dedup (dedup_cluster, removed)
#                        3: document near-dup (documents.duplicate_of)
#                        4: quality controls (pages.quality, pages.reparse_reason, document garble /
#                           formula / scistring / education columns, filtered/)

_SIGNAL_TYPES = {int: pa.int64(), float: pa.float64(), bool: pa.bool_()}


def _signals_type() -> pa.StructType:
    fields = []
    for f in dataclasses.fields(PageSignals):
        py_type = {"int": int, "float": float, "bool": bool}[f.type] if isinstance(f.type, str) else f.type
        fields.append(pa.field(f.name, _SIGNAL_TYPES[py_type], nullable=False))
    return pa.struct(fields)


SIGNALS_TYPE = _signals_type()

SPAN_TYPE = pa.struct([
    pa.field("page_index", pa.int32(), nullable=False),
    pa.field("start", pa.int64(), nullable=False),
    pa.field("end", pa.int64(), nullable=False),
    pa.field("parser", pa.string(), nullable=False),
    pa.field("tier", pa.string(), nullable=False),
    pa.field("route", pa.string(), nullable=False),
    pa.field("route_reason", pa.string(), nullable=False),
    pa.field("status", pa.string(), nullable=False),
    pa.field("is_fallback", pa.bool_(), nullable=False),
    pa.field("removed", pa.string(), nullable=False),
])

LLM_USAGE_TYPE = pa.struct([
    pa.field("calls", pa.int32(), nullable=False),
    pa.field("attempts", pa.int32(), nullable=False),
    pa.field("prompt_tokens", pa.int64(), nullable=False),
    pa.field("completion_tokens", pa.int64(), nullable=False),
    pa.field("latency_s", pa.float64(), nullable=False),
    pa.field("flags", pa.string(), nullable=False),
])

FORMULA_ISSUE_TYPE = pa.struct([
    pa.field("kind", pa.string(), nullable=False),
    pa.field("latex", pa.string(), nullable=False),
    pa.field("error", pa.string(), nullable=False),
])

SCISTRING_TYPE = pa.struct([
    pa.field("kind", pa.string(), nullable=False),
    pa.field("text", pa.string(), nullable=False),
    pa.field("canonical", pa.string(), nullable=False),
])

QUALITY_TYPE = pa.struct([
    pa.field("garble", pa.float64(), nullable=False),
    pa.field("garble_reasons", pa.string(), nullable=False),
    pa.field("lang", pa.string(), nullable=False),
    pa.field("lang_prob", pa.float64(), nullable=False),
    pa.field("formulas", pa.int32(), nullable=False),
    pa.field("formulas_broken", pa.int32(), nullable=False),
    pa.field("formula_issues", pa.list_(FORMULA_ISSUE_TYPE), nullable=False),
    pa.field("scistrings", pa.list_(SCISTRING_TYPE), nullable=False),
])

_DOCUMENT_FIELDS = [
    pa.field("doc_id", pa.string(), nullable=False),
    pa.field("source", pa.string(), nullable=False),
    pa.field("text", pa.large_string(), nullable=False),
    pa.field("num_pages", pa.int32(), nullable=False),
    pa.field("pages_ok", pa.int32(), nullable=False),
    pa.field("pages_failed", pa.int32(), nullable=False),
    pa.field("pages_routed", pa.int32(), nullable=False),
    pa.field("removed_lines", pa.int32(), nullable=False),
    pa.field("pages_fallback", pa.int32(), nullable=False),
    pa.field("pages_removed", pa.int32(), nullable=False),
    pa.field("duplicate_of", pa.string(), nullable=False),
    pa.field("garble", pa.float64(), nullable=False),
    pa.field("garbled_share", pa.float64(), nullable=False),
    pa.field("formulas", pa.int32(), nullable=False),
    pa.field("formulas_broken", pa.int32(), nullable=False),
    pa.field("scistrings", pa.int32(), nullable=False),
    pa.field("edu_score", pa.float64(), nullable=False),
    pa.field("edu_model", pa.string(), nullable=False),
    pa.field("spans", pa.list_(SPAN_TYPE), nullable=False),
]
DOCUMENT_SCHEMA = pa.schema(_DOCUMENT_FIELDS,
                            metadata={"scicurate.dataset": "documents", "scicurate.schema_version": SCHEMA_VERSION})
# filtered/: documents a quality threshold took out, whole, with the reason and a sentence of why
FILTERED_DOCUMENT_SCHEMA = pa.schema(_DOCUMENT_FIELDS + [
    pa.field("filter_reason", pa.string(), nullable=False),
    pa.field("filter_detail", pa.string(), nullable=False),
], metadata={"scicurate.dataset": "filtered", "scicurate.schema_version": SCHEMA_VERSION})

PAGE_SCHEMA = pa.schema([
    pa.field("page_id", pa.string(), nullable=False),
    pa.field("doc_id", pa.string(), nullable=False),
    pa.field("source", pa.string(), nullable=False),
    pa.field("page_index", pa.int32(), nullable=False),
    pa.field("doc_pages", pa.int32(), nullable=False),
    pa.field("status", pa.string(), nullable=False),
    pa.field("text", pa.large_string(), nullable=False),
    pa.field("parser", pa.string(), nullable=False),
    pa.field("parser_version", pa.string(), nullable=False),
    pa.field("tier", pa.string(), nullable=False),
    pa.field("route", pa.string(), nullable=False),
    pa.field("route_reason", pa.string(), nullable=False),
    pa.field("score", pa.float64(), nullable=False),
    pa.field("needs_high_cost", pa.bool_(), nullable=False),
    pa.field("signals", SIGNALS_TYPE, nullable=False),
    pa.field("postprocess", pa.string(), nullable=False),
    pa.field("error_reason", pa.string(), nullable=False),
    pa.field("error_message", pa.string(), nullable=False),
    pa.field("is_fallback", pa.bool_(), nullable=False),
    pa.field("prompt", pa.string(), nullable=False),
    pa.field("model", pa.string(), nullable=False),
    pa.field("llm", LLM_USAGE_TYPE, nullable=True),
    pa.field("dedup_cluster", pa.string(), nullable=False),
    pa.field("removed", pa.string(), nullable=False),
    pa.field("quality", QUALITY_TYPE, nullable=False),
    pa.field("reparse_reason", pa.string(), nullable=False),
], metadata={"scicurate.dataset": "pages", "scicurate.schema_version": SCHEMA_VERSION})

DEAD_LETTER_SCHEMA = pa.schema([
    pa.field("doc_id", pa.string(), nullable=False),
    pa.field("source", pa.string(), nullable=False),
    pa.field("level", pa.string(), nullable=False),
    pa.field("page_index", pa.int32(), nullable=True),
    pa.field("stage", pa.string(), nullable=False),
    pa.field("reason", pa.string(), nullable=False),
    pa.field("message", pa.string(), nullable=False),
], metadata={"scicurate.dataset": "dead_letter", "scicurate.schema_version": SCHEMA_VERSION})


def document_row(doc: DocumentResult) -> dict[str, Any]:
    return {
        "doc_id": doc.doc_id, "source": doc.source, "text": doc.text, "num_pages": doc.num_pages,
        "pages_ok": doc.pages_ok, "pages_failed": doc.pages_failed, "pages_routed": doc.pages_routed,
        "removed_lines": doc.removed_lines, "pages_fallback": doc.pages_fallback,
        "pages_removed": doc.pages_removed, "duplicate_of": doc.duplicate_of,
        "garble": float(doc.garble), "garbled_share": float(doc.garbled_share), "formulas": doc.formulas,
        "formulas_broken": doc.formulas_broken, "scistrings": doc.scistrings,
        "edu_score": float(doc.edu_score), "edu_model": doc.edu_model,
        "spans": [dataclasses.asdict(s) for s in doc.spans],
    }


def filtered_document_row(doc: DocumentResult, reason: str, detail: str) -> dict[str, Any]:
    row = document_row(doc)
    row["filter_reason"] = reason
    row["filter_detail"] = detail
    return row


def page_row(page: PageResult) -> dict[str, Any]:
    return {
        "page_id": page.page_id, "doc_id": page.doc_id, "source": page.source,
        "page_index": page.page_index, "doc_pages": page.doc_pages, "status": page.status,
        "text": page.text, "parser": page.parser, "parser_version": page.parser_version,
        "tier": page.tier, "route": page.route, "route_reason": page.route_reason,
        "score": float(page.score), "needs_high_cost": page.needs_high_cost,
        "signals": dataclasses.asdict(page.signals), "postprocess": page.postprocess,
        "error_reason": page.error_reason, "error_message": page.error_message,
        "is_fallback": page.is_fallback, "prompt": page.prompt, "model": page.model,
        "llm": dataclasses.asdict(page.llm) if page.llm is not None else None,
        "dedup_cluster": page.dedup_cluster, "removed": page.removed,
        "quality": dataclasses.asdict(page.quality), "reparse_reason": page.reparse_reason,
    }


def quality_from_row(row: dict[str, Any] | None) -> PageQuality:
    """The pages dataset's quality struct back into a PageQuality (rows before schema 4 have
    none: not measured)."""
    if not row:
        return PageQuality()
    return PageQuality(
        garble=float(row["garble"]), garble_reasons=row["garble_reasons"], lang=row["lang"],
        lang_prob=float(row["lang_prob"]), formulas=int(row["formulas"]), formulas_broken=int(row["formulas_broken"]),
        formula_issues=tuple(FormulaIssue(**i) for i in row.get("formula_issues") or ()),
        scistrings=tuple(SciString(**i) for i in row.get("scistrings") or ()),
    )


def page_from_row(row: dict[str, Any]) -> PageResult:
    """A pages-dataset row back into a PageResult (for `run pdf --reparse-flagged`).

    Rows written before schema 2 lack the VLM columns; they read as never sent to a VLM.
    """
    signal_names = {f.name for f in dataclasses.fields(PageSignals)}
    signals = PageSignals(**{k: v for k, v in (row.get("signals") or {}).items() if k in signal_names})
    llm = row.get("llm")
    return PageResult(
        doc_id=row["doc_id"], source=row["source"], page_index=int(row["page_index"]),
        doc_pages=int(row["doc_pages"]), status=row["status"], text=row["text"], parser=row["parser"],
        parser_version=row["parser_version"], tier=row["tier"], route=row["route"],
        route_reason=row["route_reason"], score=float(row["score"]),
        needs_high_cost=bool(row["needs_high_cost"]), signals=signals,
        postprocess=row.get("postprocess") or "", error_reason=row.get("error_reason") or "",
        error_message=row.get("error_message") or "", is_fallback=bool(row.get("is_fallback", False)),
        prompt=row.get("prompt") or "", model=row.get("model") or "",
        llm=LlmUsage(**llm) if llm else None,
        dedup_cluster=row.get("dedup_cluster") or "", removed=row.get("removed") or "",
        quality=quality_from_row(row.get("quality")), reparse_reason=row.get("reparse_reason") or "",
    )


def dead_letter_row(dl: DeadLetter) -> dict[str, Any]:
    return dl.to_row()


def dead_letter_from_row(row: dict[str, Any]) -> DeadLetter:
    page_index = row.get("page_index")
    return DeadLetter(doc_id=row["doc_id"], source=row["source"], stage=row["stage"], reason=row["reason"],
                      message=row["message"], page_index=None if page_index is None else int(page_index))


def validate_row(schema: pa.Schema, row: dict[str, Any]) -> None:
    """Raise if a row does not fit the schema (used by tests and before writing)."""
    pa.Table.from_pylist([row], schema=schema)


# ---- web triage datasets (`scicurate run web`) -----------------------------------------------
#   pages/        one row per written page (WebDoc)
#   filtered/     one row per page a filter dropped, with the page and its reason codes
#   dead_letter/  one row per input record or page that could not be processed (WebDeadLetter)
#   verdicts/     one row per URL domain (DomainDecision)
#   tags/         one row per page the triage agent read (TagRow): the training set of the
#                 quality and format classifiers

WEB_SCHEMA_VERSION = "1"
_PY_ARROW = {"int": pa.int64(), "float": pa.float64(), "bool": pa.bool_(), "str": pa.string()}


def _flat_struct(cls) -> pa.StructType:
    """Arrow struct of a frozen dataclass of flat int/float/bool/str fields."""
    fields = []
    for f in dataclasses.fields(cls):
        name = f.type if isinstance(f.type, str) else f.type.__name__
        fields.append(pa.field(f.name, _PY_ARROW[name], nullable=False))
    return pa.struct(fields)


def _text_stats_type() -> pa.StructType:
    from scicurate.classifiers.web_rules import TextStats

    return _flat_struct(TextStats)


TEXT_STATS_TYPE = _text_stats_type()
SHARE_TYPE = pa.list_(pa.struct([pa.field("name", pa.string(), nullable=False),
                                 pa.field("share", pa.float64(), nullable=False)]))


def _meta(name: str) -> dict[str, str]:
    return {"scicurate.dataset": name, "scicurate.schema_version": WEB_SCHEMA_VERSION}


_WEB_PAGE_FIELDS = [
    pa.field("page_id", pa.string(), nullable=False),
    pa.field("url", pa.string(), nullable=False),
    pa.field("domain", pa.string(), nullable=False),
    pa.field("source", pa.string(), nullable=False),
    pa.field("fetched", pa.string(), nullable=False),
    pa.field("title", pa.string(), nullable=False),
    pa.field("text", pa.large_string(), nullable=False),
    pa.field("html_lang", pa.string(), nullable=False),
    pa.field("extractor", pa.string(), nullable=False),
    pa.field("removed_lines", pa.int32(), nullable=False),
    pa.field("lang", pa.string(), nullable=False),
    pa.field("lang_score", pa.float64(), nullable=False),
    pa.field("stats", TEXT_STATS_TYPE, nullable=True),
    pa.field("rule_reasons", pa.list_(pa.string()), nullable=False),
    pa.field("quality_score", pa.float64(), nullable=False),
    pa.field("edu_score", pa.float64(), nullable=False),
    pa.field("format", pa.string(), nullable=False),
    pa.field("format_score", pa.float64(), nullable=False),
    pa.field("classifier", pa.string(), nullable=False),
    pa.field("duplicate_of", pa.string(), nullable=False),
    pa.field("sampled", pa.bool_(), nullable=False),
    pa.field("verdict", pa.string(), nullable=False),
    pa.field("verdict_reasons", pa.string(), nullable=False),
    pa.field("rewritten", pa.bool_(), nullable=False),
    pa.field("rewrite_flags", pa.string(), nullable=False),
    pa.field("original_text", pa.large_string(), nullable=False),
    pa.field("prompt", pa.string(), nullable=False),
    pa.field("model", pa.string(), nullable=False),
    pa.field("llm", LLM_USAGE_TYPE, nullable=True),
]

WEB_PAGE_SCHEMA = pa.schema(_WEB_PAGE_FIELDS, metadata=_meta("pages"))

WEB_FILTERED_SCHEMA = pa.schema(_WEB_PAGE_FIELDS + [
    pa.field("filter_stage", pa.string(), nullable=False),
    pa.field("filter_reason", pa.string(), nullable=False),
    pa.field("filter_reasons", pa.list_(pa.string()), nullable=False),
    pa.field("filter_detail", pa.string(), nullable=False),
], metadata=_meta("filtered"))

WEB_DEAD_LETTER_SCHEMA = pa.schema([
    pa.field("page_id", pa.string(), nullable=False),
    pa.field("url", pa.string(), nullable=False),
    pa.field("source", pa.string(), nullable=False),
    pa.field("stage", pa.string(), nullable=False),
    pa.field("reason", pa.string(), nullable=False),
    pa.field("message", pa.string(), nullable=False),
], metadata=_meta("dead_letter"))

WEB_VERDICT_SCHEMA = pa.schema([
    pa.field("domain", pa.string(), nullable=False),
    pa.field("verdict", pa.string(), nullable=False),
    pa.field("reasons", pa.list_(pa.string()), nullable=False),
    pa.field("small_domain", pa.bool_(), nullable=False),
    pa.field("pages_seen", pa.int64(), nullable=False),
    pa.field("pages_sampled", pa.int64(), nullable=False),
    pa.field("pages_tagged", pa.int64(), nullable=False),
    pa.field("tag_failures", pa.int64(), nullable=False),
    pa.field("quality_mean", pa.float64(), nullable=False),
    pa.field("quality_hist", pa.list_(pa.int64()), nullable=False),
    pa.field("informative_share", pa.float64(), nullable=False),
    pa.field("science_share", pa.float64(), nullable=False),
    pa.field("top_science_domain", pa.string(), nullable=False),
    pa.field("issue_shares", SHARE_TYPE, nullable=False),
    pa.field("format_shares", SHARE_TYPE, nullable=False),
    pa.field("science_shares", SHARE_TYPE, nullable=False),
    pa.field("lines_removed", pa.int64(), nullable=False),
    pa.field("cleaning", pa.list_(pa.string()), nullable=False),
    pa.field("sampled_page_ids", pa.list_(pa.string()), nullable=False),
], metadata=_meta("verdicts"))

WEB_TAGS_SCHEMA = pa.schema([
    pa.field("page_id", pa.string(), nullable=False),
    pa.field("url", pa.string(), nullable=False),
    pa.field("domain", pa.string(), nullable=False),
    pa.field("text", pa.large_string(), nullable=False),
    pa.field("ok", pa.bool_(), nullable=False),
    pa.field("science_domain", pa.string(), nullable=False),
    pa.field("informative", pa.bool_(), nullable=False),
    pa.field("quality", pa.int32(), nullable=False),
    pa.field("format", pa.string(), nullable=False),
    pa.field("issues", pa.list_(pa.string()), nullable=False),
    pa.field("error_reason", pa.string(), nullable=False),
    pa.field("error_message", pa.string(), nullable=False),
    pa.field("prompt", pa.string(), nullable=False),
    pa.field("model", pa.string(), nullable=False),
    pa.field("llm", LLM_USAGE_TYPE, nullable=True),
], metadata=_meta("tags"))


def web_page_row(doc) -> dict[str, Any]:
    return {
        "page_id": doc.page_id, "url": doc.url, "domain": doc.domain, "source": doc.source,
        "fetched": doc.fetched, "title": doc.title, "text": doc.text, "html_lang": doc.html_lang,
        "extractor": doc.extractor, "removed_lines": doc.removed_lines, "lang": doc.lang,
        "lang_score": float(doc.lang_score),
        "stats": dataclasses.asdict(doc.stats) if doc.stats is not None else None,
        "rule_reasons": list(doc.rule_reasons), "quality_score": float(doc.quality_score), "edu_score": float(doc.edu_score),
        "format": doc.format, "format_score": float(doc.format_score), "classifier": doc.classifier,
        "duplicate_of": doc.duplicate_of, "sampled": doc.sampled, "verdict": doc.verdict,
        "verdict_reasons": doc.verdict_reasons, "rewritten": doc.rewritten, "rewrite_flags": doc.rewrite_flags,
        "original_text": doc.original_text, "prompt": doc.prompt, "model": doc.model,
        "llm": dataclasses.asdict(doc.llm) if doc.llm is not None else None,
    }


def web_filtered_row(row) -> dict[str, Any]:
    out = web_page_row(row.doc)
    out.update(filter_stage=row.stage, filter_reason=row.reason, filter_reasons=list(row.reasons or (row.reason,)),
               filter_detail=row.detail[:4000])
    return out


def web_dead_letter_row(dead) -> dict[str, Any]:
    return dead.to_row()


def _shares(pairs) -> list[dict[str, Any]]:
    return [{"name": name, "share": float(share)} for name, share in pairs]


def web_verdict_row(item) -> dict[str, Any]:
    domain, decision = item
    verdict, plan, stats = decision.verdict, decision.plan, decision.verdict.stats
    return {
        "domain": domain, "verdict": verdict.verdict, "reasons": list(verdict.reasons), "small_domain": plan.small,
        "pages_seen": plan.pages_seen, "pages_sampled": plan.pages_sampled, "pages_tagged": stats.pages_tagged,
        "tag_failures": stats.tag_failures, "quality_mean": float(stats.quality_mean),
        "quality_hist": list(stats.quality_hist), "informative_share": float(stats.informative_share),
        "science_share": float(stats.science_share), "top_science_domain": stats.top_science_domain,
        "issue_shares": _shares(stats.issue_shares), "format_shares": _shares(stats.format_shares),
        "science_shares": _shares(stats.science_shares), "lines_removed": plan.lines_removed,
        "cleaning": list(decision.cleaning), "sampled_page_ids": list(plan.sampled_ids),
    }


def web_tag_row(row) -> dict[str, Any]:
    tags = row.tags
    return {
        "page_id": row.page_id, "url": row.url, "domain": row.domain, "text": row.text, "ok": tags is not None,
        "science_domain": tags.science_domain if tags else "", "informative": bool(tags.informative) if tags else False,
        "quality": int(tags.quality) if tags else -1, "format": tags.format if tags else "",
        "issues": list(tags.issues) if tags else [], "error_reason": row.error_reason,
        "error_message": row.error_message[:4000], "prompt": row.prompt, "model": row.model,
        "llm": dataclasses.asdict(row.usage) if row.usage is not None else None,
    }


# ---- scicurate run recall ----------------------------------------------------------------------
#   recalled/<domain>/  one row per recalled text, one dataset per target domain (RecalledDoc)
#   scores/             one row per scored text: every model's scores and the decision
#   filtered/           texts not recalled (below_threshold) or empty, with the best target
#   dead_letter/        rows and files that could not be read or scored
#   url_domains/        pages and recalled pages per URL domain; `hot` targets (iterative rule)
#   spot_check/         the LLM's re-labelling of a sample of recalled texts
#   seed_candidates/    JSONL: the other pages of hot URL domains, a pool for the next round

RECALL_SCHEMA_VERSION = "1"


def _recall_meta(name: str) -> dict[str, str]:
    return {"scicurate.dataset": f"recall/{name}", "scicurate.schema_version": RECALL_SCHEMA_VERSION}


def _doc_fields() -> list[pa.Field]:
    return [pa.field("doc_id", pa.string(), nullable=False), pa.field("url", pa.string(), nullable=False),
            pa.field("url_domain", pa.string(), nullable=False), pa.field("source", pa.string(), nullable=False)]


RECALLED_SCHEMA = pa.schema(_doc_fields() + [
    pa.field("text", pa.large_string(), nullable=False),
    pa.field("domain", pa.string(), nullable=False),
    pa.field("path", pa.list_(pa.string()), nullable=False),
    pa.field("path_score", pa.float64(), nullable=False),
    pa.field("score", pa.float64(), nullable=False),
    pa.field("passing", pa.list_(pa.string()), nullable=False),
    pa.field("scores", pa.string(), nullable=False),          # JSON {model: {label: P}}
    pa.field("round", pa.int32(), nullable=False),
], metadata=_recall_meta("recalled"))

RECALL_SCORES_SCHEMA = pa.schema(_doc_fields() + [
    pa.field("domain", pa.string(), nullable=False),          # "" when not recalled
    pa.field("passing", pa.list_(pa.string()), nullable=False),
    pa.field("best_domain", pa.string(), nullable=False),
    pa.field("best_score", pa.float64(), nullable=False),
    pa.field("scores", pa.string(), nullable=False),
], metadata=_recall_meta("scores"))

RECALL_FILTERED_SCHEMA = pa.schema(_doc_fields() + [
    pa.field("stage", pa.string(), nullable=False),
    pa.field("reason", pa.string(), nullable=False),
    pa.field("best_domain", pa.string(), nullable=False),
    pa.field("best_score", pa.float64(), nullable=False),
    pa.field("detail", pa.string(), nullable=False),
], metadata=_recall_meta("filtered"))

RECALL_DEAD_LETTER_SCHEMA = pa.schema([
    pa.field("doc_id", pa.string(), nullable=False),
    pa.field("source", pa.string(), nullable=False),
    pa.field("stage", pa.string(), nullable=False),
    pa.field("reason", pa.string(), nullable=False),
    pa.field("message", pa.string(), nullable=False),
], metadata=_recall_meta("dead_letter"))

RECALL_URL_DOMAIN_SCHEMA = pa.schema([
    pa.field("url_domain", pa.string(), nullable=False),
    pa.field("pages", pa.int64(), nullable=False),
    pa.field("recalled", pa.list_(pa.struct([pa.field("domain", pa.string(), nullable=False),
                                             pa.field("pages", pa.int64(), nullable=False)])), nullable=False),
    pa.field("hot", pa.list_(pa.string()), nullable=False),
], metadata=_recall_meta("url_domains"))

RECALL_SPOT_CHECK_SCHEMA = pa.schema([
    pa.field("doc_id", pa.string(), nullable=False),
    pa.field("domain", pa.string(), nullable=False),
    pa.field("verdict", pa.string(), nullable=False),
    pa.field("path", pa.list_(pa.string()), nullable=False),
    pa.field("reason", pa.string(), nullable=False),
    pa.field("prompt", pa.string(), nullable=False),
    pa.field("model", pa.string(), nullable=False),
], metadata=_recall_meta("spot_check"))


def _scores_json(scored) -> str:
    return json.dumps({name: scores for name, scores in scored.scores}, sort_keys=True)


def _doc_cells(doc) -> dict[str, Any]:
    return {"doc_id": doc.doc_id, "url": doc.url, "url_domain": doc.url_domain, "source": doc.source}


def recalled_row(recalled, round_: int = 1) -> dict[str, Any]:
    decision = recalled.decision
    scored = decision.scored
    score = sum(s.get(decision.domain, 0.0) for _, s in scored.scores) / max(1, len(scored.scores))
    return {**_doc_cells(scored.doc), "text": scored.doc.text, "domain": decision.domain,
            "path": list(recalled.path), "path_score": float(recalled.path_score), "score": round(float(score), 6),
            "passing": list(decision.passing), "scores": _scores_json(scored), "round": int(round_)}


def recall_scores_row(decision) -> dict[str, Any]:
    return {**_doc_cells(decision.scored.doc), "domain": decision.domain, "passing": list(decision.passing),
            "best_domain": decision.best_domain, "best_score": float(decision.best_score),
            "scores": _scores_json(decision.scored)}


def recall_filtered_row(row) -> dict[str, Any]:
    return {"doc_id": row.doc_id, "url": row.url, "url_domain": row.url_domain, "source": row.source,
            "stage": row.stage, "reason": row.reason, "best_domain": row.best_domain,
            "best_score": float(row.best_score), "detail": row.detail}


def recall_dead_letter_row(dead) -> dict[str, Any]:
    return dataclasses.asdict(dead)


def recall_url_domain_row(stats) -> dict[str, Any]:
    return {"url_domain": stats.url_domain, "pages": stats.pages,
            "recalled": [{"domain": d, "pages": n} for d, n in stats.recalled], "hot": list(stats.hot)}


def recall_spot_check_row(row) -> dict[str, Any]:
    return {**dataclasses.asdict(row), "path": list(row.path)}


def seed_candidate_json(row) -> str:
    """A seed candidate as a JSONL line `scicurate recall annotate --pool` reads."""
    return json.dumps({"id": row.doc_id, "text": row.text, "url": row.url, "url_domain": row.url_domain,
                       "domains": list(row.domains), "shares": list(row.shares), "round": row.round},
                      ensure_ascii=False, sort_keys=True)


# ---- exam items (`scicurate run exam`) ----------------------------------------------------
# Arrow/Parquet schemas of `scicurate run exam` (the exam-item integrity filter).
#
#     kept/         one row per item the rules (and, for multi-part fill-in-the-blank items, the
#                   LLM completeness check) kept: the normalised item, its type, notes, and the
#                   canonical training `text`
#     filtered/     the same columns plus `reason` (the first) and `reasons` (all, stable codes)
#     dead_letter/  one row per unreadable pool file or row that is no exam item
#
# pipelines/exam_steps.py (ExamOutcome, ExamDeadLetter) by duck typing.

EXAM_SCHEMA_VERSION = "1"

EXAM_OPTION_TYPE = pa.struct([pa.field("label", pa.string(), nullable=False), pa.field("text", pa.string(), nullable=False)])


def _exam_meta(name: str) -> dict[str, str]:
    return {"scicurate.dataset": f"exam/{name}", "scicurate.schema_version": EXAM_SCHEMA_VERSION}


def _exam_item_fields() -> list[pa.Field]:
    return [
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("layout", pa.string(), nullable=False),             # structured | text
        pa.field("item_type", pa.string(), nullable=False),          # multiple_choice | multi_select | fill_in_blank | …
        pa.field("declared_type", pa.string(), nullable=False),      # the item's own type, normalised ("" when none)
        pa.field("raw_type", pa.string(), nullable=False),
        pa.field("stem", pa.large_string(), nullable=False),
        pa.field("options", pa.list_(EXAM_OPTION_TYPE), nullable=False),
        pa.field("answer", pa.large_string(), nullable=False),
        pa.field("answer_parts", pa.list_(pa.string()), nullable=False),
        pa.field("answer_labels", pa.list_(pa.string()), nullable=False),
        pa.field("explanation", pa.large_string(), nullable=False),
        pa.field("explanation_labels", pa.list_(pa.string()), nullable=False),
        pa.field("images", pa.list_(pa.string()), nullable=False),
        pa.field("blanks", pa.int32(), nullable=False),               # fill-in-the-blank only, else 0
        pa.field("notes", pa.list_(pa.string()), nullable=False),
        pa.field("llm_check", pa.string(), nullable=False),           # "" | complete | incomplete | failed:<why> | disabled
        pa.field("llm_missing", pa.list_(pa.string()), nullable=False),
        pa.field("prompt", pa.string(), nullable=False),              # exam_check@N when the LLM was asked
        pa.field("model", pa.string(), nullable=False),
        pa.field("text", pa.large_string(), nullable=False),          # exam_items.render_text
    ]


EXAM_KEPT_SCHEMA = pa.schema(_exam_item_fields(), metadata=_exam_meta("kept"))

EXAM_FILTERED_SCHEMA = pa.schema(_exam_item_fields() + [
    pa.field("reason", pa.string(), nullable=False),
    pa.field("reasons", pa.list_(pa.string()), nullable=False),
], metadata=_exam_meta("filtered"))

EXAM_DEAD_LETTER_SCHEMA = pa.schema([
    pa.field("item_id", pa.string(), nullable=False),
    pa.field("source", pa.string(), nullable=False),
    pa.field("stage", pa.string(), nullable=False),
    pa.field("reason", pa.string(), nullable=False),
    pa.field("message", pa.string(), nullable=False),
], metadata=_exam_meta("dead_letter"))


def exam_kept_row(outcome) -> dict[str, Any]:
    from scicurate.classifiers.exam_items import render_text

    item, check = outcome.item, outcome.check
    return {
        "item_id": item.item_id, "source": item.source, "layout": item.layout, "item_type": check.item_type,
        "declared_type": item.declared_type, "raw_type": item.raw_type, "stem": item.stem,
        "options": [{"label": o.label, "text": o.text} for o in item.options], "answer": item.answer,
        "answer_parts": list(item.answer_parts), "answer_labels": list(check.answer_labels),
        "explanation": item.explanation, "explanation_labels": list(check.explanation_labels),
        "images": list(item.images), "blanks": check.blanks,
        "notes": list(check.notes), "llm_check": outcome.llm_status, "llm_missing": list(outcome.llm_missing),
        "prompt": outcome.prompt, "model": outcome.model, "text": render_text(item),
    }


def exam_filtered_row(outcome) -> dict[str, Any]:
    return {**exam_kept_row(outcome), "reason": outcome.check.reasons[0], "reasons": list(outcome.check.reasons)}


def exam_dead_letter_row(dead) -> dict[str, Any]:
    return {"item_id": dead.item_id, "source": dead.source, "stage": dead.stage, "reason": dead.reason,
            "message": dead.message}




# ---- image-text pairs (`scicurate run images`) -------------------------------------------------
#
# Three datasets under the output directory:
#   kept/         one row per kept pair: caption, image bytes, the image's measures, flags
#   filtered/     one row per filtered pair: every reason, and the measures when the image was
#                 measured (thresholds can be re-applied from them); no image bytes
#   dead_letter/  one row per pair (or file) that could not be processed: stage, reason, message

IMAGES_SCHEMA_VERSION = "1"


def _images_meta(name: str) -> dict[str, str]:
    return {"scicurate.dataset": f"images/{name}", "scicurate.schema_version": IMAGES_SCHEMA_VERSION}


IMAGE_MEASURES_TYPE = pa.struct([
    pa.field("sha256", pa.string(), nullable=False),
    pa.field("n_bytes", pa.int64(), nullable=False),
    pa.field("format", pa.string(), nullable=False),
    pa.field("mode", pa.string(), nullable=False),
    pa.field("width", pa.int64(), nullable=False),
    pa.field("height", pa.int64(), nullable=False),
    pa.field("aspect", pa.float64(), nullable=False),
    pa.field("analysis_width", pa.int64(), nullable=False),
    pa.field("analysis_height", pa.int64(), nullable=False),
    pa.field("gray_std", pa.float64(), nullable=False),
    pa.field("dominant_share", pa.float64(), nullable=False),
    pa.field("white_share", pa.float64(), nullable=False),
    pa.field("laplacian_var", pa.float64(), nullable=False),
])


def _image_pair_fields() -> list[pa.Field]:
    return [pa.field("pair_id", pa.string(), nullable=False), pa.field("source", pa.string(), nullable=False),
            pa.field("where", pa.string(), nullable=False), pa.field("caption", pa.string(), nullable=False),
            pa.field("image_ref", pa.string(), nullable=False)]


IMAGES_KEPT_SCHEMA = pa.schema(_image_pair_fields() + [
    pa.field("image", pa.binary(), nullable=False),
    pa.field("flags", pa.list_(pa.string()), nullable=False),
    pa.field("measures", IMAGE_MEASURES_TYPE, nullable=False),
    pa.field("measured_with", pa.string(), nullable=False),
], metadata=_images_meta("kept"))

IMAGES_FILTERED_SCHEMA = pa.schema(_image_pair_fields() + [
    pa.field("stage", pa.string(), nullable=False),
    pa.field("reason", pa.string(), nullable=False),
    pa.field("reasons", pa.list_(pa.string()), nullable=False),
    pa.field("flags", pa.list_(pa.string()), nullable=False),
    pa.field("detail", pa.string(), nullable=False),
    pa.field("measures", IMAGE_MEASURES_TYPE, nullable=True),
    pa.field("measured_with", pa.string(), nullable=False),
], metadata=_images_meta("filtered"))

IMAGES_DEAD_LETTER_SCHEMA = pa.schema([
    pa.field("pair_id", pa.string(), nullable=False),
    pa.field("source", pa.string(), nullable=False),
    pa.field("stage", pa.string(), nullable=False),
    pa.field("reason", pa.string(), nullable=False),
    pa.field("message", pa.string(), nullable=False),
    pa.field("image_ref", pa.string(), nullable=False),
    pa.field("sha256", pa.string(), nullable=False),
], metadata=_images_meta("dead_letter"))


def _image_measures(measures) -> Optional[dict[str, Any]]:
    if measures is None:
        return None
    from scicurate.classifiers.image_filters import measures_dict

    return measures_dict(measures)


def _image_pair(row) -> dict[str, Any]:
    return {"pair_id": row.pair_id, "source": row.source, "where": row.where, "caption": row.caption,
            "image_ref": row.image_ref}


def images_kept_row(kept, measured_with: str) -> dict[str, Any]:
    return {**_image_pair(kept.row), "image": kept.data, "flags": list(kept.flags), "measures": _image_measures(kept.measures),
            "measured_with": measured_with}


def images_filtered_row(filtered, measured_with: str) -> dict[str, Any]:
    return {**_image_pair(filtered.row), "stage": filtered.stage, "reason": filtered.reason,
            "reasons": list(filtered.reasons), "flags": list(filtered.flags), "detail": filtered.detail,
            "measures": _image_measures(filtered.measures), "measured_with": measured_with if filtered.measures else ""}


def images_dead_letter_row(dead) -> dict[str, Any]:
    return {"pair_id": dead.pair_id, "source": dead.source, "stage": dead.stage, "reason": dead.reason,
            "message": dead.message, "image_ref": dead.image_ref, "sha256": dead.sha256}


# ---- training-ready export (`scicurate export`) ---------------------------------------------
#   shards/        the training corpus: one row per copy of a document, shuffled, cut to size
#   filtered/      one row per input document that is in no shard: the reason (exact or near
#                  duplicate of another source, duplicate within its run, the mixture left it
#                  out, used as another document's label) and the kept document it duplicates
#   dead_letter/   one row per input file or row that could not be read, or PDF the
#                  interleaved export could not open
#   interleaved/   PDF documents as interleaved text and figure images, in reading order
#   interleaved_dropped/  one row per figure the image filters took out, with every reason
# Shards and interleaved/ are the only datasets a training job reads; manifest.json lists them.

EXPORT_SCHEMA_VERSION = "1"


def _export_meta(name: str) -> dict[str, str]:
    return {"scicurate.dataset": f"export/{name}", "scicurate.schema_version": EXPORT_SCHEMA_VERSION}


def _export_doc_fields() -> list[pa.Field]:
    return [
        pa.field("id", pa.string(), nullable=False),              # sha256 of the text (+ "~k" for the k-th repeat)
        pa.field("text", pa.large_string(), nullable=False),
        pa.field("tokens", pa.int64(), nullable=False),           # the training tokenizer's, without BOS/EOS
        pa.field("scistring_tokens", pa.int64(), nullable=False), # of them, inside <SMILES>/<FASTA> tags
        pa.field("domain", pa.string(), nullable=False),          # level-1 taxonomy id, or "unlabelled"
        pa.field("domain_path", pa.list_(pa.string()), nullable=False),
        pa.field("source", pa.string(), nullable=False),          # pdf | web | recall: the pipeline
        pa.field("doc_id", pa.string(), nullable=False),          # the id in its run
        pa.field("origin", pa.string(), nullable=False),          # the PDF path, page URL or pool file
        pa.field("run", pa.string(), nullable=False),             # the run directory it was read from
        pa.field("parser", pa.string(), nullable=False),          # pdf: span parsers; web: extractor
        pa.field("label_from", pa.string(), nullable=False),      # where the domain came from
        pa.field("scores", pa.string(), nullable=False),          # JSON of the run's scores
    ]


EXPORT_SHARD_SCHEMA = pa.schema(_export_doc_fields() + [
    pa.field("repeat", pa.int32(), nullable=False),               # 0 for the first copy
], metadata=_export_meta("shards"))

EXPORT_FILTERED_SCHEMA = pa.schema(_export_doc_fields() + [
    pa.field("reason", pa.string(), nullable=False),
    pa.field("detail", pa.string(), nullable=False),
    pa.field("duplicate_of", pa.string(), nullable=False),        # the kept document's id
], metadata=_export_meta("filtered"))

EXPORT_DEAD_LETTER_SCHEMA = pa.schema([
    pa.field("doc_id", pa.string(), nullable=False),
    pa.field("run", pa.string(), nullable=False),
    pa.field("source", pa.string(), nullable=False),              # the file
    pa.field("stage", pa.string(), nullable=False),
    pa.field("reason", pa.string(), nullable=False),
    pa.field("message", pa.string(), nullable=False),
], metadata=_export_meta("dead_letter"))

FIGURE_META_TYPE = pa.struct([
    pa.field("image_id", pa.string(), nullable=False),            # sha256 of the PNG bytes
    pa.field("page_index", pa.int32(), nullable=False),
    pa.field("kind", pa.string(), nullable=False),                # image | table
    pa.field("caption", pa.string(), nullable=False),
    pa.field("width", pa.int32(), nullable=False),
    pa.field("height", pa.int32(), nullable=False),
    pa.field("bbox", pa.list_(pa.float64()), nullable=False),     # PDF points on its page
    pa.field("flags", pa.list_(pa.string()), nullable=False),
    pa.field("placement", pa.string(), nullable=False),           # the rule that placed it (interleave.py)
])

# OBELICS-style: `texts`, `images` and `image_meta` are aligned lists; at each position either
# texts[i] is a string and images[i], image_meta[i] are null, or the reverse.
INTERLEAVED_SCHEMA = pa.schema([
    pa.field("id", pa.string(), nullable=False),                  # the document's export id
    pa.field("doc_id", pa.string(), nullable=False),
    pa.field("origin", pa.string(), nullable=False),
    pa.field("run", pa.string(), nullable=False),
    pa.field("domain", pa.string(), nullable=False),
    pa.field("texts", pa.list_(pa.large_string()), nullable=False),
    pa.field("images", pa.list_(pa.binary()), nullable=False),
    pa.field("image_meta", pa.list_(FIGURE_META_TYPE), nullable=False),
    pa.field("n_images", pa.int32(), nullable=False),
    pa.field("tokens", pa.int64(), nullable=False),               # of the text segments
], metadata=_export_meta("interleaved"))

INTERLEAVED_DROPPED_SCHEMA = pa.schema([
    pa.field("id", pa.string(), nullable=False),
    pa.field("doc_id", pa.string(), nullable=False),
    pa.field("origin", pa.string(), nullable=False),
    pa.field("page_index", pa.int32(), nullable=False),
    pa.field("kind", pa.string(), nullable=False),
    pa.field("caption", pa.string(), nullable=False),
    pa.field("reason", pa.string(), nullable=False),
    pa.field("reasons", pa.list_(pa.string()), nullable=False),
    pa.field("detail", pa.string(), nullable=False),
    pa.field("measures", IMAGE_MEASURES_TYPE, nullable=True),
], metadata=_export_meta("interleaved_dropped"))


def with_defaults(parquet_schema: pa.Schema, rows: list[dict[str, Any]]) -> pa.Table:
    """`rows` as a table of `parquet_schema`, every missing column filled with its empty value
    ("" / 0 / 0.0 / False / [] ; null where nullable). For tests and benchmarks that write a
    run's datasets without running the pipeline."""
    def empty(f: pa.Field) -> Any:
        t = f.type
        if f.nullable:
            return None
        if pa.types.is_string(t) or pa.types.is_large_string(t):
            return ""
        if pa.types.is_integer(t):
            return 0
        if pa.types.is_floating(t):
            return 0.0
        if pa.types.is_boolean(t):
            return False
        if pa.types.is_list(t):
            return []
        raise ValueError(f"{f.name}: give a value, a {t} column has no empty value")

    return pa.Table.from_pylist([{f.name: row.get(f.name, empty(f)) for f in parquet_schema} for row in rows],
                                schema=parquet_schema)
