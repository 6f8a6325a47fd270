"""The page-level PDF pipeline. Wiring only: logic lives in the cores.

    PDFs (any Beam file system) ─ read ─ split into page windows ─ one copy of byte-identical
    inputs ─ parse every page (MinerU)
    ─ page signals + score ─ global quantile ─ route within budget
    ─ routed pages: high-cost parser (VLM via RunInference, [small-LLM cleanup]) or fallback
    ─ global page dedup: pages repeated across documents (copyright, licence) left out
    ─ quality per page: SMILES/sequence tags, garble score, KaTeX formula check; garbled pages left out
    ─ merge per document ─ [education score] ─ document thresholds (garbled, low education)
    ─ Parquet: documents/, filtered/, pages/, dead_letter/ + summary.json (tokens removed per control)

`build_reparse` starts from an earlier run's pages instead, and re-parses those flagged
`needs_high_cost`.
"""

from __future__ import annotations


import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystems import FileSystems
from apache_beam.io.parquetio import ReadFromParquet
from apache_beam.ml.inference.base import RunInference
from apache_beam.transforms.stats import ApproximateQuantiles

from scicurate import schema
from scicurate.classifiers import router
from scicurate.config import PdfConfig, gpu_hinted
from scicurate.dedup.documents import MarkNearDuplicates
from scicurate.dedup.pages import RepeatedPages
from scicurate.pipelines import pdf_steps as steps
from scicurate.pipelines import quality_steps as quality
from scicurate.pipelines.outputs import part_path, write_parquet as _write
from scicurate.pipelines.summary import summarize
from scicurate.records import DeadLetter, DocumentResult, PageResult




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
    # -> one PageWindow per (doc_id, first page), spread over workers | failed: duplicate_input
    #    DeadLetter for byte-identical inputs under other paths
    unique = (
        split.windows
        | "KeyWindows" >> beam.Map(steps.window_key)
        | "GroupCopies" >> beam.GroupByKey()
        | "OneCopyPerWindow" >> beam.ParDo(steps.OneCopyPerWindow()).with_outputs(steps.FAILED, main="windows")
    )
    # -> PageParse, one per page
    parsed = unique.windows | "ParseLowCost" >> beam.ParDo(steps.ParseWindow(config, _parse_store(output_dir, config)))
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
    _finish(routed, (read[steps.FAILED], split[steps.FAILED], unique[steps.FAILED]),
            files | "CountInputs" >> beam.FlatMap(steps.summary_keys_input), output_dir, config, input_pattern)


def build_reparse(pipeline: beam.Pipeline, previous_dir: str, output_dir: str, config: PdfConfig) -> None:
    """`run pdf --reparse-flagged PREVIOUS_RUN`: send the pages an earlier run flagged
    `needs_high_cost` to the high-cost parser, and write updated datasets to `output_dir`.
    Document-level dead letters of the read and split stages are carried over unchanged, so
    the new summary still accounts for every input of the earlier run."""
    previous_dir = previous_dir.rstrip("/")
    # -> PageResult of the earlier run
    pages = (
        pipeline
        | "ReadPreviousPages" >> ReadFromParquet(FileSystems.join(previous_dir, "pages", "*.parquet"))
        | "PageRecords" >> beam.Map(schema.page_from_row)
    )
    # -> DeadLetter of documents that never reached the page stages
    carried = (
        pipeline
        | "ReadPreviousDeadLetters" >> ReadFromParquet(FileSystems.join(previous_dir, "dead_letter", "*.parquet"))
        | "KeepEarlyDeadLetters" >> beam.Filter(steps.carried_dead_letter)
        | "DeadLetterRecords" >> beam.Map(schema.dead_letter_from_row)
    )
    # -> one "inputs" key per earlier input: its documents plus its early dead letters
    inputs = (
        (pages | "DocIds" >> beam.Map(lambda p: p.doc_id) | "DistinctDocs" >> beam.Distinct(),
         carried | "DeadIds" >> beam.Map(lambda d: d.source))
        | "AllInputs" >> beam.Flatten()
        | "CountInputs" >> beam.FlatMap(steps.summary_keys_input)
    )
    # only the pages flagged needs_high_cost go back to the high-cost parser
    _finish(pages, (carried,), inputs, output_dir, config, f"reparse:{previous_dir}", only_flagged=True)


def _parse_store(output_dir: str, config: PdfConfig):
    """Where parsed windows wait for a rerun of a killed run (None with --no-resume)."""
    from scicurate.resume import WorkStore

    return WorkStore.for_stage(output_dir, "parse", steps.parse_settings(config)) if config.resume else None


def _high_cost(routed, config: PdfConfig, only_flagged: bool, output_dir: str):
    """Routed pages through the configured high-cost parser; -> (all pages, dead letters)."""
    sent = routed | "SendToHighCost" >> beam.FlatMap(steps.send_to_high_cost, only_flagged).with_outputs(
        steps.HIGH_COST, main="kept")
    # -> ((doc_id, source), [routed PageResult]): one source read per document
    grouped = (
        sent[steps.HIGH_COST]
        | "KeyBySource" >> beam.Map(lambda p: ((p.doc_id, p.source), p))
        | "GroupRouted" >> beam.GroupByKey()
    )
    if config.high_cost_parser != "vlm":
        reparsed = grouped | "ParseHighCost" >> beam.ParDo(steps.ParseHighCost(config))
        return (sent.kept, reparsed) | "AllPages" >> beam.Flatten(), []

    from apache_beam.ml.inference.base import KeyedModelHandler

    from scicurate.llm.handler import chat_handler
    from scicurate.parsers.vlm import vlm_problems

    # -> ((page, text layer), ChatRequest with the page image) | done: fallback pages
    rendered = grouped | "RenderRouted" >> beam.ParDo(steps.RenderRouted(config)).with_outputs(steps.DONE, main="requests")
    # -> ((page, text layer), PredictionResult(ChatResult)) | failed batches
    resume_dir = output_dir if config.resume else ""
    vlm = KeyedModelHandler(chat_handler(config.llm, validator=vlm_problems, namespace="pdf_vlm",
                                         resume_dir=resume_dir))
    answered, failed = rendered.requests | "AskVlm" >> gpu_hinted(
        RunInference(vlm).with_exception_handling(), config.gpu_accelerator, config.llm)
    # -> PageResult: VLM text after its rules, or the low-cost text flagged is_fallback
    parsed = answered | "ApplyVlm" >> beam.Map(steps.apply_vlm_prediction)
    lost = failed.failed_inferences | "VlmExceptions" >> beam.FlatMap(
        steps.failed_inference_pages, "pdf_vlm").with_outputs(steps.FAILED, main="pages")
    pages = (parsed, lost.pages) | "VlmPages" >> beam.Flatten()
    dead = [lost[steps.FAILED]]
    if config.vlm_cleanup:
        # -> (page, cleanup ChatRequest) | done: pages with nothing to clean
        asks = pages | "CleanupRequests" >> beam.ParDo(steps.MakeCleanupRequest(config)).with_outputs(steps.DONE, main="asks")
        cleaner = KeyedModelHandler(chat_handler(config.cleanup_llm, namespace="pdf_cleanup", resume_dir=resume_dir))
        cleaned, cleanup_failed = asks.asks | "AskCleanup" >> gpu_hinted(
            RunInference(cleaner).with_exception_handling(), config.gpu_accelerator, config.cleanup_llm)
        kept = cleanup_failed.failed_inferences | "CleanupExceptions" >> beam.FlatMap(
            steps.failed_inference_pages, "pdf_cleanup").with_outputs(steps.FAILED, main="pages")
        pages = (
            (cleaned | "ApplyCleanup" >> beam.Map(steps.apply_cleanup_prediction), asks[steps.DONE], kept.pages)
            | "CleanedPages" >> beam.Flatten()
        )
        dead.append(kept[steps.FAILED])
    all_pages = (sent.kept, rendered[steps.DONE], pages) | "AllPages" >> beam.Flatten()
    return all_pages, dead


def _page_quality(pages, config: PdfConfig):
    """Garble score, formula check and scientific-string tags per page, then the page
    threshold (garbled pages leave the document, their rows stay)."""
    if config.scistrings:
        # -> the page text with <SMILES>/<FASTA> tags, the strings in quality.scistrings
        pages = pages | "TagSciStrings" >> beam.Map(quality.tag_scistrings)
    if config.garble:
        # -> mojibake undone (ftfy) -> PredictionResult(page, GarbleScore) -> page with
        #    quality.garble, reasons, language
        pages = (
            pages
            | "RepairMojibake" >> beam.Map(quality.repair_mojibake)
            | "ScoreGarble" >> RunInference(quality.GarbleHandler(quality.garble_config(config)))
            | "ApplyGarbleScore" >> beam.Map(quality.apply_garble)
        )
    if config.formula_check:
        # -> page with quality.formulas / formulas_broken / formula_issues, reparse_reason
        pages = pages | "CheckFormulas" >> beam.ParDo(quality.CheckFormulas())
    # -> removed="garbled" at or above the garble threshold
    return pages | "PageThresholds" >> beam.Map(quality.apply_page_thresholds, config)


def _finish(routed, early_dead: tuple, input_keys, output_dir: str, config: PdfConfig, input_label: str,
            only_flagged: bool = False) -> None:
    """High-cost parsing, merge, the three datasets and summary.json."""
    extra_dead: list = []
    if config.high_cost_parser:
        # -> routed pages re-parsed by the high-cost parser, the rest unchanged
        routed, extra_dead = _high_cost(routed, config, only_flagged, output_dir)
    if config.page_dedup:
        # -> the same pages; those repeated across >= K documents marked removed="repeated_page"
        routed = routed | "RepeatedPages" >> RepeatedPages(
            config.page_dedup_min_documents, config.page_dedup_threshold, config.page_dedup_min_words)
    routed = _page_quality(routed, config)
    # -> DocumentResult | pages: PageResult | failed: DeadLetter
    merged = (
        routed
        | "KeyByDoc" >> beam.Map(lambda p: (p.doc_id, p))
        | "GroupPages" >> beam.GroupByKey()
        | "MergeDocuments" >> beam.ParDo(steps.MergeDocument(
            config.max_fallback_rate, config.min_fallback_pages, config.page_dedup_max_doc_share))
        .with_outputs(steps.FAILED, "pages", main="documents")
    )
    documents = merged.documents
    if config.doc_dedup:
        # -> the same documents; near-duplicates of a smaller doc_id get duplicate_of set
        documents = documents | "NearDuplicateDocuments" >> MarkNearDuplicates(
            key=lambda d: d.doc_id, text=lambda d: d.text, mark=steps.mark_duplicate)
    if config.edu_model:
        # -> the same documents with edu_score / edu_model (RunInference on the fast edu model)
        documents = (
            documents
            | "EduInputs" >> beam.Map(quality.edu_input)
            | "ScoreEducation" >> RunInference(quality.edu_handler(config))
            | "ApplyEduScore" >> beam.Map(quality.apply_edu)
        )
    # -> kept DocumentResult | filtered: (DocumentResult, reason)
    decided = documents | "DocumentThresholds" >> beam.ParDo(
        quality.ApplyDocumentThresholds(config)).with_outputs(quality.FILTERED, main="kept")
    documents, filtered = decided.kept, decided[quality.FILTERED]
    # -> DeadLetter (documents and pages)
    page_failures = merged.pages | "PageFailures" >> beam.FlatMap(steps.page_dead_letters)
    dead = (tuple(early_dead) + (merged[steps.FAILED], page_failures) + tuple(extra_dead)) | "AllDeadLetters" >> beam.Flatten()

    _write(documents, "Documents", part_path(output_dir, "documents"), schema.DOCUMENT_SCHEMA, schema.document_row, config.num_shards)
    _write(merged.pages, "Pages", part_path(output_dir, "pages"), schema.PAGE_SCHEMA, schema.page_row, config.num_shards)
    _write(dead, "DeadLetter", part_path(output_dir, "dead_letter"), schema.DEAD_LETTER_SCHEMA, schema.dead_letter_row, 1)
    _write(filtered, "Filtered", part_path(output_dir, "filtered"), schema.FILTERED_DOCUMENT_SCHEMA,
           lambda item: schema.filtered_document_row(*item, quality.filter_detail(*item, config)), 1)

    # -> summary.json: counts that must add up (inputs == documents + dead_letter)
    keys = (
        input_keys,
        documents | "CountDocuments" >> beam.FlatMap(steps.summary_keys_document),
        merged.pages | "CountPages" >> beam.FlatMap(steps.summary_keys_page),
        dead | "CountDeadLetters" >> beam.FlatMap(steps.summary_keys_dead_letter),
        filtered | "CountFiltered" >> beam.FlatMap(steps.summary_keys_filtered),
        (merged.pages | "TagPages" >> beam.Map(lambda p: ("page", p)),
         documents | "TagDocuments" >> beam.Map(lambda d: ("document", d)),
         filtered | "TagFiltered" >> beam.Map(lambda f: ("filtered", f)))
        | "TokenRecords" >> beam.Flatten()
        | "CountTokens" >> beam.ParDo(quality.TokenSummaryKeys(config.tokenizer)),
    )
    summarize(keys, steps.BuildSummary(), output_dir, config, input_label)


__all__ = ["build", "DocumentResult", "PageResult", "DeadLetter"]
