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

from scicurate.records import DeadLetter, DocumentResult, PageResult, PageSignals

SCHEMA_VERSION = "1"

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
        "removed_lines": doc.removed_lines,
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
    }


def dead_letter_row(dl: DeadLetter) -> dict[str, Any]:
    return dl.to_row()


def validate_row(schema: pa.Schema, row: dict[str, Any]) -> None:
    """Raise if a row does not fit the schema (used by tests and before writing)."""
    pa.Table.from_pylist([row], schema=schema)
