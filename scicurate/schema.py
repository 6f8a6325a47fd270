"""The one place that owns the Arrow/Parquet schemas of the output datasets.

Three datasets are written side by side under the output directory:
  documents/  one row per merged document (DocumentResult)
  pages/      one row per page, failed pages included (PageResult)
  dead_letter/ one row per document or page that could not be processed (DeadLetter)
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pyarrow as pa

from scicurate.records import DeadLetter, DocumentResult, LlmUsage, PageResult, PageSignals

SCHEMA_VERSION = "3"  # 2: VLM provenance (is_fallback, prompt, model, llm usage), page dedup (dedup_cluster, removed)
#                        3: document near-dup (documents.duplicate_of)

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

DOCUMENT_SCHEMA = pa.schema([
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
    pa.field("spans", pa.list_(SPAN_TYPE), nullable=False),
], metadata={"scicurate.dataset": "documents", "scicurate.schema_version": SCHEMA_VERSION})

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
        "spans": [dataclasses.asdict(s) for s in doc.spans],
    }


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
    }


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
