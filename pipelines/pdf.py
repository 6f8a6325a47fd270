"""The page-level PDF pipeline on the low-cost path. Wiring only: logic lives in the cores.

    PDFs (any Beam file system) ─ read ─ split into page windows ─ parse every page (MinerU)
    ─ page signals + score ─ global quantile ─ route within budget ─ merge per document
    ─ Parquet: documents/, pages/, dead_letter/ + summary.json
"""

from __future__ import annotations

import dataclasses

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystems import FileSystems
from apache_beam.io.parquetio import WriteToParquet
from apache_beam.transforms.stats import ApproximateQuantiles

from scicurate import schema
from scicurate.classifiers import router
from scicurate.config import PdfConfig
from scicurate.pipelines import pdf_steps as steps
from scicurate.records import DeadLetter, DocumentResult, PageResult


def _write(pcoll, label: str, output_dir: str, name: str, parquet_schema, to_row, shards: int):
    # Deterministic shard names: <dir>/<name>/part-00000-of-00001.parquet
    return (
        pcoll
        | f"{label}Rows" >> beam.Map(to_row)
        | f"{label}Parquet" >> WriteToParquet(
            FileSystems.join(output_dir, name, "part"),
            parquet_schema,
            file_name_suffix=".parquet",
            num_shards=shards,
            shard_name_template="-SSSSS-of-NNNNN",
        )
    )


def build(pipeline: beam.Pipeline, input_pattern: str, output_dir: str, config: PdfConfig) -> None:
    output_dir = output_dir.rstrip("/")
    epsilon = config.quantile_epsilon

    # -> ReadableFile
    files = (
        pipeline
        | "MatchPdfs" >> fileio.MatchFiles(input_pattern)
        | "ReadMatches" >> fileio.ReadMatches()
    )
    # -> PdfInput | failed DeadLetter
    read = files | "ReadPdfs" >> beam.ParDo(steps.ReadPdf(config)).with_outputs(steps.FAILED, main="pdfs")
    # -> PageWindow | failed DeadLetter
    split = read.pdfs | "SplitPages" >> beam.ParDo(steps.SplitPdf(config)).with_outputs(steps.FAILED, main="windows")
    # -> PageParse, one per page; windows spread over workers first
    parsed = (
        split.windows
        | "SpreadWindows" >> beam.Reshuffle()
        | "ParseLowCost" >> beam.ParDo(steps.ParseWindow(config))
    )
    # -> (PageParse, PageSignals, score, markdown, rules, top signals)
    signalled = parsed | "DetectSignals" >> beam.Map(steps.signal_page, min_text_chars=config.min_text_chars)
    # -> [route key quantiles], one global list
    quantiles = (
        signalled
        | "RouteKeys" >> beam.Map(lambda s: router.route_key(s[0].page_id, s[2]))
        | "GlobalQuantiles" >> ApproximateQuantiles.Globally(router.num_quantiles(epsilon))
    )
    # -> PageResult with route and reason
    routed = signalled | "RoutePages" >> beam.ParDo(
        steps.RoutePage(config), quantiles=beam.pvalue.AsSingleton(quantiles, default_value=[])
    )
    if config.high_cost_parser:
        # -> routed pages re-parsed by the high-cost parser, the rest unchanged
        sent = routed | "SendToHighCost" >> beam.FlatMap(steps.send_to_high_cost).with_outputs(
            steps.HIGH_COST, main="kept")
        reparsed = (
            sent[steps.HIGH_COST]
            | "KeyBySource" >> beam.Map(lambda p: ((p.doc_id, p.source), p))
            | "GroupRouted" >> beam.GroupByKey()
            | "ParseHighCost" >> beam.ParDo(steps.ParseHighCost(config))
        )
        routed = (sent.kept, reparsed) | "AllPages" >> beam.Flatten()
    # -> DocumentResult | pages: PageResult | failed: DeadLetter
    merged = (
        routed
        | "KeyByDoc" >> beam.Map(lambda p: (p.doc_id, p))
        | "GroupPages" >> beam.GroupByKey()
        | "MergeDocuments" >> beam.ParDo(steps.MergeDocument()).with_outputs(steps.FAILED, "pages", main="documents")
    )
    # -> DeadLetter (documents and pages)
    page_failures = merged.pages | "PageFailures" >> beam.FlatMap(steps.page_dead_letters)
    dead = (
        (read[steps.FAILED], split[steps.FAILED], merged[steps.FAILED], page_failures)
        | "AllDeadLetters" >> beam.Flatten()
    )

    _write(merged.documents, "Documents", output_dir, "documents", schema.DOCUMENT_SCHEMA, schema.document_row, config.num_shards)
    _write(merged.pages, "Pages", output_dir, "pages", schema.PAGE_SCHEMA, schema.page_row, config.num_shards)
    _write(dead, "DeadLetter", output_dir, "dead_letter", schema.DEAD_LETTER_SCHEMA, schema.dead_letter_row, 1)

    # -> summary.json: counts that must add up (inputs == documents + dead_letter)
    counts = (
        (
            files | "CountInputs" >> beam.FlatMap(steps.summary_keys_input),
            merged.documents | "CountDocuments" >> beam.FlatMap(steps.summary_keys_document),
            merged.pages | "CountPages" >> beam.FlatMap(steps.summary_keys_page),
            dead | "CountDeadLetters" >> beam.FlatMap(steps.summary_keys_dead_letter),
        )
        | "AllCounts" >> beam.Flatten()
        | "PairOnes" >> beam.Map(lambda k: (k, 1))
        | "SumCounts" >> beam.CombinePerKey(sum)
        | "BuildSummary" >> beam.CombineGlobally(steps.BuildSummary())
    )
    config_dict = dataclasses.asdict(config)
    config_dict["input"] = input_pattern
    _ = counts | "WriteSummary" >> beam.Map(steps.write_summary, FileSystems.join(output_dir, "summary.json"), config_dict)


__all__ = ["build", "DocumentResult", "PageResult", "DeadLetter"]
