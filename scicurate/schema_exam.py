"""Arrow/Parquet schemas of `scicurate run exam` (the exam-item integrity filter).

    kept/         one row per item the rules (and, for multi-part fill-in-the-blank items, the
                  LLM completeness check) kept: the normalised item, its type, notes, and the
                  canonical training `text`
    filtered/     the same columns plus `reason` (the first) and `reasons` (all, stable codes)
    dead_letter/  one row per unreadable pool file or row that is no exam item

To be folded into scicurate/schema.py; the row functions take the records of
pipelines/exam_steps.py (ExamOutcome, ExamDeadLetter) by duck typing.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

EXAM_SCHEMA_VERSION = "1"

OPTION_TYPE = pa.struct([pa.field("label", pa.string(), nullable=False), pa.field("text", pa.string(), nullable=False)])


def _meta(name: str) -> dict[str, str]:
    return {"scicurate.dataset": f"exam/{name}", "scicurate.schema_version": EXAM_SCHEMA_VERSION}


def _item_fields() -> list[pa.Field]:
    return [
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("layout", pa.string(), nullable=False),             # structured | text
        pa.field("item_type", pa.string(), nullable=False),          # multiple_choice | multi_select | fill_in_blank | …
        pa.field("declared_type", pa.string(), nullable=False),      # the item's own type, normalised ("" when none)
        pa.field("raw_type", pa.string(), nullable=False),
        pa.field("stem", pa.large_string(), nullable=False),
        pa.field("options", pa.list_(OPTION_TYPE), nullable=False),
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


EXAM_KEPT_SCHEMA = pa.schema(_item_fields(), metadata=_meta("kept"))

EXAM_FILTERED_SCHEMA = pa.schema(_item_fields() + [
    pa.field("reason", pa.string(), nullable=False),
    pa.field("reasons", pa.list_(pa.string()), nullable=False),
], metadata=_meta("filtered"))

EXAM_DEAD_LETTER_SCHEMA = pa.schema([
    pa.field("item_id", pa.string(), nullable=False),
    pa.field("source", pa.string(), nullable=False),
    pa.field("stage", pa.string(), nullable=False),
    pa.field("reason", pa.string(), nullable=False),
    pa.field("message", pa.string(), nullable=False),
], metadata=_meta("dead_letter"))


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


__all__ = ["EXAM_DEAD_LETTER_SCHEMA", "EXAM_FILTERED_SCHEMA", "EXAM_KEPT_SCHEMA", "EXAM_SCHEMA_VERSION",
           "exam_dead_letter_row", "exam_filtered_row", "exam_kept_row"]
