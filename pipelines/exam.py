"""The exam-item integrity filter. Wiring only: logic lives in the cores (exam_items, exam_steps).

    pool JSONL / Parquet ─ read + normalise (ExamItem; rows that are no item: dead letter)
    ─ rules (ExamCheck: keep | filter, reasons) ─ multi-part fill-in-the-blank items the rules
    kept: LLM completeness check (RunInference, `exam_check@1`) ─ kept/ │ filtered/ (reasons)
    │ dead_letter/ ─ summary.json (counts per reason, LLM outcomes, accounted)
"""

from __future__ import annotations

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystems import FileSystems
from apache_beam.ml.inference.base import KeyedModelHandler, RunInference

from scicurate import schema
from scicurate.pipelines import exam_steps as steps
from scicurate.pipelines.outputs import write_parquet as _write
from scicurate.pipelines.summary import summarize




def build(pipeline: beam.Pipeline, input_pattern: str, output_dir: str, config: steps.ExamRunConfig) -> None:
    output_dir = output_dir.rstrip("/")
    out = lambda *parts: FileSystems.join(output_dir, *parts)  # noqa: E731

    # -> ExamItem | failed ExamDeadLetter (unreadable file, not JSON, no exam item, too large)
    read = (
        pipeline
        | "MatchItems" >> fileio.MatchFiles(input_pattern)
        | "ReadItemFiles" >> fileio.ReadMatches()
        | "ReadItems" >> beam.ParDo(steps.ReadItems(config)).with_outputs(steps.FAILED, main="items")
    )
    # -> ExamOutcome(item, ExamCheck) from the rules
    checked = read.items | "Spread" >> beam.Reshuffle() | "CheckRules" >> beam.ParDo(steps.CheckRules(config))
    # -> decided ExamOutcome | to_llm (kept multi-part fill-in-the-blank items, check on)
    routed = checked | "RouteLlm" >> beam.FlatMap(steps.route_llm, config.llm_check).with_outputs(
        steps.TO_LLM, main="decided")
    outcomes = [routed.decided]
    if config.llm_check:
        from scicurate.llm.handler import chat_handler

        # -> ExamOutcome with the LLM's answer applied (incomplete: filtered; no answer: kept, noted)
        checker = KeyedModelHandler(chat_handler(config.llm, namespace="exam_check", resume_dir=output_dir))
        answered, failed = (
            routed[steps.TO_LLM]
            | "CompletenessRequests" >> beam.Map(steps.llm_request, config.completeness)
            | "AskCompleteness" >> RunInference(checker).with_exception_handling()
        )
        outcomes.append(answered | "ApplyCompleteness" >> beam.Map(steps.apply_answer))
        outcomes.append(failed.failed_inferences | "CompletenessFailures" >> beam.FlatMap(steps.failed_checks))
    # -> kept ExamOutcome | filtered ExamOutcome
    split = (
        outcomes
        | "AllOutcomes" >> beam.Flatten()
        | "SplitVerdict" >> beam.FlatMap(steps.split_verdict).with_outputs(steps.FILTERED, main="kept")
    )
    dead = read[steps.FAILED]

    _write(split.kept, "Kept", out("kept", "part"), schema.EXAM_KEPT_SCHEMA, schema.exam_kept_row, config.num_shards)
    _write(split[steps.FILTERED], "Filtered", out("filtered", "part"), schema.EXAM_FILTERED_SCHEMA,
           schema.exam_filtered_row, config.num_shards)
    _write(dead, "DeadLetter", out("dead_letter", "part"), schema.EXAM_DEAD_LETTER_SCHEMA,
           schema.exam_dead_letter_row, 1)

    # -> summary.json: inputs == kept + filtered + dead-lettered rows
    keys = (
        read.items | "CountRead" >> beam.FlatMap(steps.keys_read),
        split.kept | "CountKept" >> beam.FlatMap(steps.keys_kept),
        split[steps.FILTERED] | "CountFiltered" >> beam.FlatMap(steps.keys_filtered),
        dead | "CountDead" >> beam.FlatMap(steps.keys_dead),
    )
    summarize(keys, steps.BuildSummary(), output_dir, config, input_pattern)


__all__ = ["build"]
