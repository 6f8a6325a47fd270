"""Config, records, cores and thin Beam steps of `scicurate run exam` (wiring in pipelines/exam.py).

    pool row ─ ExamItem (exam_items.parse_item) ─ ExamOutcome(item, rules' ExamCheck)
        ─ multi-part fill-in-the-blank items the rules kept: the LLM completeness check
        ─ kept: ExamOutcome | filtered: ExamOutcome with reasons
    unreadable files and rows that are no exam item: ExamDeadLetter (stage, reason, message)

Every pool row ends in exactly one of kept/, filtered/ or dead_letter/. An item the LLM could
not judge (invalid answer, server unavailable, RunInference raised) is KEPT with the note
`llm_unchecked:<why>` and the `llm_check` column `failed:<why>`: the rules already passed it,
the LLM check only adds a reason to filter, and a server's trouble is not a property of the
item (with `--no-llm-check` the same items are kept with `llm_unchecked:disabled`). Select
`llm_check LIKE 'failed:%'` to re-run them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, BinaryIO, Iterable, Iterator

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.metrics import Metrics
from apache_beam.pvalue import TaggedOutput

from scicurate.classifiers import exam_items as ex
from scicurate.config import EMBEDDED_LLM, ConfigError, LlmConfig
from scicurate.parsers.pool_input import PoolRowError, iter_pool_rows, pool_format
from scicurate.pipelines.inference import failed_examples
from scicurate.pipelines.summary import CountSummary

NAMESPACE = "exam"
FAILED = "failed"
FILTERED = "filtered"
TO_LLM = "to_llm"
STAGE_READ = "read"
STAGE_PARSE = "parse"
DEFAULT_MAX_ROW_BYTES = 16 * 1024 * 1024
# The completeness answer is one small JSON object; the annotation default (80 tokens) is too
# tight for a few `missing` notes.
EXAM_LLM = EMBEDDED_LLM.replace(max_tokens=ex.CompletenessConfig().max_tokens)


# ---- config and records ----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ExamRunConfig:
    """One validated config for an exam run. `check`: the rules' thresholds
    (`exam_items.ExamCheckConfig`, presets default/strict). `llm_check`: ask the LLM about
    multi-part fill-in-the-blank items the rules kept (off: they are kept, noted
    `llm_unchecked:disabled`). `max_row_bytes`: a larger row (JSON line, or a Parquet row's
    strings and bytes) is dead-lettered `too_large` before parsing."""

    check: ex.ExamCheckConfig = ex.PRESETS["default"]
    llm_check: bool = True
    llm: LlmConfig = EXAM_LLM
    completeness: ex.CompletenessConfig = ex.CompletenessConfig()
    max_row_bytes: int = DEFAULT_MAX_ROW_BYTES
    num_shards: int = 1

    def __post_init__(self) -> None:
        if self.max_row_bytes < 1 or self.num_shards < 1:
            raise ConfigError("max_row_bytes and num_shards must be >= 1")

    def replace(self, **changes: Any) -> "ExamRunConfig":
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True, slots=True)
class ExamDeadLetter:
    item_id: str                # "" when the row gave none (or a whole file failed)
    source: str                 # input file
    stage: str                  # read | parse
    reason: str                 # bad_record | too_large | corrupt_input | bad_encoding | unreadable | unsupported_input
    message: str


@dataclass(frozen=True, slots=True)
class ExamOutcome:
    """An item with its verdict. `llm_status`: "" (not asked), complete, incomplete,
    failed:<why> or disabled; `prompt`/`model` name what answered."""

    item: ex.ExamItem
    check: ex.ExamCheck
    llm_status: str = ""
    llm_missing: tuple[str, ...] = ()
    prompt: str = ""
    model: str = ""


ROW_FAILURES = ("bad_record", "too_large")     # dead letters that stand for one pool row


# ---- read ------------------------------------------------------------------------------------

def item_or_dead(row: Any, path: str, where: str, size: int, max_row_bytes: int) -> ex.ExamItem | ExamDeadLetter:
    """One parsed row -> its ExamItem, or a dead letter (too large, no exam item)."""
    raw_id = next((row.get(k) for k in ex.ID_KEYS if isinstance(row, dict) and row.get(k) not in (None, "")), "")
    item_id = str(raw_id) if isinstance(raw_id, (str, int)) else ""
    if size > max_row_bytes:
        return ExamDeadLetter(item_id, path, STAGE_READ, "too_large",
                              f"{where}: row of {size} bytes is over the {max_row_bytes}-byte limit")
    try:
        return ex.parse_item(row, source=path)
    except ex.ItemError as exc:
        return ExamDeadLetter(item_id, path, STAGE_PARSE, "bad_record", f"{where}: {exc}")


def read_items(stream: BinaryIO, path: str, *, max_row_bytes: int) -> Iterator[ex.ExamItem | ExamDeadLetter]:
    """Every row of one pool file (JSONL, JSONL.gz or Parquet; `stream` is its raw bytes),
    one outcome per row; a file that breaks mid-way yields the rows before the break and one
    file-level dead letter. Pure Python."""
    for got in iter_pool_rows(stream, path):
        if isinstance(got, PoolRowError):
            yield ExamDeadLetter("", path, STAGE_READ, got.reason, got.message)
        else:
            yield item_or_dead(got.row, path, got.where, got.size, max_row_bytes)


class ReadItems(beam.DoFn):
    """ReadableFile -> ExamItem | failed ExamDeadLetter (streamed, one per row; a bad file adds one)."""

    def __init__(self, config: ExamRunConfig) -> None:
        self.max_row_bytes = config.max_row_bytes

    def process(self, readable) -> Iterator[Any]:
        path = readable.metadata.path
        try:
            pool_format(path)
        except ValueError as exc:
            Metrics.counter(NAMESPACE, "read_failed").inc()
            yield TaggedOutput(FAILED, ExamDeadLetter("", path, STAGE_READ, "unsupported_input", str(exc)))
            return
        try:
            with readable.open(compression_type=CompressionTypes.UNCOMPRESSED) as stream:
                for item in read_items(stream, path, max_row_bytes=self.max_row_bytes):
                    if isinstance(item, ExamDeadLetter):
                        Metrics.counter(NAMESPACE, "read_failed").inc()
                        yield TaggedOutput(FAILED, item)
                    else:
                        Metrics.counter(NAMESPACE, "read_items").inc()
                        yield item
        except Exception as exc:  # noqa: BLE001 - one bad file never stops the run
            Metrics.counter(NAMESPACE, "read_failed").inc()
            yield TaggedOutput(FAILED, ExamDeadLetter("", path, STAGE_READ, "unreadable", f"{type(exc).__name__}: {exc}"))


# ---- rules, the LLM check, the verdict -------------------------------------------------------

def _count(name: str) -> None:
    Metrics.counter(NAMESPACE, name).inc()


class CheckRules(beam.DoFn):
    """ExamItem -> ExamOutcome with the rules' ExamCheck (one counter per reason and note)."""

    def __init__(self, config: ExamRunConfig) -> None:
        self.config = config.check

    def process(self, item: ex.ExamItem) -> Iterator[ExamOutcome]:
        yield ExamOutcome(item, ex.check(item, self.config, _count))


def route_llm(outcome: ExamOutcome, llm_check: bool) -> Iterator[Any]:
    """ExamOutcome -> to_llm (a multi-part fill-in-the-blank item the rules kept, check on) |
    decided (everything else; with the check off, such items get `llm_unchecked:disabled`)."""
    if not outcome.check.needs_llm:
        yield outcome
    elif llm_check:
        _count("llm_asked")
        yield TaggedOutput(TO_LLM, outcome)
    else:
        _count("llm_disabled")
        yield dataclasses.replace(outcome, check=ex.apply_completeness(outcome.check, None), llm_status="disabled")


def llm_request(outcome: ExamOutcome, config: ex.CompletenessConfig) -> tuple[ExamOutcome, Any]:
    """(outcome, ChatRequest) for KeyedModelHandler(chat_handler(…))."""
    return outcome, ex.completeness_request(outcome.item, outcome.check, config)


def with_answer(outcome: ExamOutcome, answer: ex.LlmCompleteness | ex.LlmCheckFailure) -> ExamOutcome:
    """The cheap stage after the LLM (exam_items.apply_completeness), with provenance."""
    check = ex.apply_completeness(outcome.check, answer)
    if isinstance(answer, ex.LlmCompleteness):
        status = "complete" if answer.complete else "incomplete"
        _count(f"llm_{status}")
        return dataclasses.replace(outcome, check=check, llm_status=status, llm_missing=answer.missing,
                                   prompt=answer.prompt, model=answer.model)
    _count("llm_failed")
    return dataclasses.replace(outcome, check=check, llm_status=f"failed:{answer.reason}",
                               prompt=answer.prompt, model=answer.model)


def apply_answer(item) -> ExamOutcome:
    outcome, prediction = item
    return with_answer(outcome, ex.completeness_from_result(prediction.inference))


def failed_checks(failure) -> Iterator[ExamOutcome]:
    """A batch RunInference gave up on (a bug, not a bad answer) -> each item kept, noted
    `llm_unchecked:llm_exception`."""
    examples, exc = failed_examples(failure)
    for example in examples:
        try:
            outcome, request = example
        except (TypeError, ValueError):
            continue
        yield with_answer(outcome, ex.LlmCheckFailure(outcome.item.item_id, "llm_exception",
                                                      f"{type(exc).__name__}: {exc}"[:300], request.prompt))


def split_verdict(outcome: ExamOutcome) -> Iterator[Any]:
    """ExamOutcome -> kept | filtered."""
    if outcome.check.verdict == ex.KEEP:
        _count("kept")
        yield outcome
    else:
        _count("filtered")
        yield TaggedOutput(FILTERED, outcome)


# ---- summary ---------------------------------------------------------------------------------

def keys_read(item: ex.ExamItem) -> Iterable[str]:
    return ("inputs",)


def keys_dead(dead: ExamDeadLetter) -> Iterable[str]:
    # a file-level failure (unreadable, corrupt, unsupported) is counted but is not a pool row
    return (("inputs",) if dead.reason in ROW_FAILURES else ()) + ("dead_letter", f"dead_letter_by_reason.{dead.reason}")


def _llm_keys(outcome: ExamOutcome) -> tuple[str, ...]:
    if not outcome.llm_status:
        return ()
    status = outcome.llm_status.split(":", 1)[0]
    asked = ("llm_calls_items",) if status != "disabled" else ()
    return asked + (f"llm_check.{outcome.llm_status}",)


def keys_kept(outcome: ExamOutcome) -> Iterable[str]:
    return (("kept", f"kept_by_type.{outcome.check.item_type}") + tuple(f"notes.{n}" for n in outcome.check.notes)
            + _llm_keys(outcome))


def keys_filtered(outcome: ExamOutcome) -> Iterable[str]:
    reasons = outcome.check.reasons
    return (("filtered", f"filtered_by_type.{outcome.check.item_type}", f"filtered_by_first_reason.{reasons[0]}")
            + tuple(f"filtered_by_reason.{r}" for r in reasons) + _llm_keys(outcome))


class BuildSummary(CountSummary):
    """The counts: `filtered_by_reason` counts every reason an item has (an item with two
    reasons is in both), `filtered_by_first_reason` sums to `filtered`. `llm_check`: items
    per LLM outcome; `llm_items_per_1000` = items sent to the LLM per 1,000 inputs (each is
    one call, plus the client's retries). `accounted`: inputs == kept + filtered + dead-lettered rows."""

    TOP = ("inputs", "kept", "filtered", "dead_letter", "llm_calls_items")
    GROUPS = ("kept_by_type", "filtered_by_type", "filtered_by_reason", "filtered_by_first_reason",
              "dead_letter_by_reason", "notes", "llm_check")

    def finish(self, summary: dict[str, Any]) -> dict[str, Any]:
        row_dead = sum(v for k, v in summary["dead_letter_by_reason"].items() if k in ROW_FAILURES)
        summary["dead_letter_rows"] = row_dead
        summary["accounted"] = summary["inputs"] == summary["kept"] + summary["filtered"] + row_dead
        inputs = summary["inputs"]
        summary["llm_items"] = summary.pop("llm_calls_items")
        summary["llm_items_per_1000"] = round(1000 * summary["llm_items"] / inputs, 1) if inputs else 0.0
        checked = summary["kept"] + summary["filtered"]
        summary["kept_share"] = round(summary["kept"] / checked, 4) if checked else 0.0
        return summary


__all__ = ["BuildSummary", "CheckRules", "ExamDeadLetter", "ExamOutcome", "ExamRunConfig", "ReadItems",
           "apply_answer", "failed_checks", "item_or_dead", "llm_request", "read_items", "route_llm",
           "split_verdict", "with_answer"]
