"""The domain-centric web triage pipeline. Wiring only: logic lives in the cores (see web_steps).

    WARC / JSONL / Parquet ─ read ─ screen (HTTP status, content type) ─ extract (trafilatura,
    sandboxed) ─ exact dedup ─ domain line dedup ─ language ID ─ rule scores ─ [quality and
    format classifiers] ─ thresholds ─ near dedup ─ group by domain ─ sample N per domain
    ─ triage agent (LLM, one request per sampled page) ─ domain verdicts ─ apply to every page
    (join) ─ rewrite domains: LLM rewrite with guards ─ Parquet: pages/, filtered/,
    dead_letter/, verdicts/, tags/ + summary.json
"""

from __future__ import annotations


import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.ml.inference.base import KeyedModelHandler, RunInference

from scicurate import schema
from scicurate.dedup.documents import MarkNearDuplicates
from scicurate.dedup.lines import DomainLineDedup
from scicurate.pipelines import web_steps as steps
from scicurate.pipelines.outputs import part_path, write_parquet as _write
from scicurate.pipelines.summary import summarize
from scicurate.config import gpu_hinted
from scicurate.web_config import WebConfig




def build(pipeline: beam.Pipeline, input_pattern: str, output_dir: str, config: WebConfig) -> None:
    output_dir = output_dir.rstrip("/")
    filtered = []

    # -> WebPage | failed WebDeadLetter
    read = (
        pipeline
        | "MatchInputs" >> fileio.MatchFiles(input_pattern)
        | "ReadMatches" >> fileio.ReadMatches()
        | "ReadWebInputs" >> beam.ParDo(steps.ReadWebInputs(config)).with_outputs(steps.FAILED, main="pages")
    )
    # -> WebPage with an HTML body and a 2xx status | filtered FilteredPage
    screened = read.pages | "Screen" >> beam.FlatMap(steps.screen).with_outputs(steps.FILTERED, main="pages")
    filtered.append(screened[steps.FILTERED])
    # -> WebDoc with text | filtered (no text, too large) | failed (timeout, crash, error)
    extracted = (
        screened.pages
        | "SpreadPages" >> beam.Reshuffle()
        | "BatchPages" >> beam.BatchElements(min_batch_size=config.extract_batch, max_batch_size=config.extract_batch)
        | "ExtractText" >> beam.ParDo(steps.ExtractText(config)).with_outputs(steps.FAILED, steps.FILTERED, main="docs")
    )
    filtered.append(extracted[steps.FILTERED])
    docs = extracted.docs
    if config.exact_dedup:
        # -> one WebDoc per normalised text | filtered exact_duplicate
        exact = (
            docs
            | "KeyByTextHash" >> beam.Map(steps.exact_key)
            | "GroupByTextHash" >> beam.GroupByKey()
            | "ResolveExact" >> beam.ParDo(steps.ResolveExact()).with_outputs(steps.FILTERED, main="docs")
        )
        filtered.append(exact[steps.FILTERED])
        docs = exact.docs
    if config.line_dedup is not None:
        # -> WebDoc without the lines recurring across its domain | filtered when nothing is left
        stripped = (
            docs
            | "DomainLineDedup" >> DomainLineDedup(
                config.line_dedup, domain=steps.line_dedup_domain, text=steps.line_dedup_text,
                key=steps.line_dedup_key, apply=steps.line_dedup_apply)
            | "DropEmptied" >> beam.FlatMap(steps.drop_emptied).with_outputs(steps.FILTERED, main="docs")
        )
        filtered.append(stripped[steps.FILTERED])
        docs = stripped.docs
    # -> WebDoc with lang, lang_score (fastText lid.176)
    from scicurate.classifiers.web_fasttext import LanguageIdHandler, PageClassifierHandler

    docs = (
        docs
        | "LangText" >> beam.Map(steps.text_of)
        | "IdentifyLanguage" >> RunInference(KeyedModelHandler(LanguageIdHandler()))
        | "ApplyLanguage" >> beam.Map(steps.apply_language)
    )
    # -> WebDoc with TextStats and every failing rule (not applied yet)
    docs = docs | "ScoreRules" >> beam.Map(steps.score_rules, config)
    if config.quality_model:
        # -> WebDoc with quality_score = P(hq) of the project's fastText model
        docs = (
            docs
            | "QualityText" >> beam.Map(steps.text_of)
            | "ScoreQuality" >> RunInference(KeyedModelHandler(PageClassifierHandler(config.quality_model)))
            | "ApplyQuality" >> beam.Map(steps.apply_quality)
        )
    if config.format_model:
        # -> WebDoc with format, format_score
        docs = (
            docs
            | "FormatText" >> beam.Map(steps.text_of)
            | "ScoreFormat" >> RunInference(KeyedModelHandler(PageClassifierHandler(config.format_model)))
            | "ApplyFormat" >> beam.Map(steps.apply_format)
        )
    if config.edu_model:
        # -> WebDoc with edu_score 0-5 of the education scorer (scicurate train edu)
        from scicurate.classifiers.edu import EduScoreHandler

        docs = (
            docs
            | "EduText" >> beam.Map(steps.text_of)
            | "ScoreEducation" >> RunInference(KeyedModelHandler(EduScoreHandler(config.edu_model)))
            | "ApplyEducation" >> beam.Map(steps.apply_edu)
        )
    # -> kept WebDoc | filtered with every failing threshold
    kept = docs | "ApplyPageFilters" >> beam.ParDo(steps.ApplyPageFilters(config)).with_outputs(steps.FILTERED, main="docs")
    filtered.append(kept[steps.FILTERED])
    docs = kept.docs
    if config.near_dedup:
        # -> WebDoc | filtered near_duplicate (all but the cluster's smallest page_id)
        near = (
            docs
            | "NearDuplicates" >> MarkNearDuplicates(key=lambda d: d.page_id, text=lambda d: d.text,
                                                     mark=steps.mark_near_duplicate, config=config.near)
            | "SplitNearDuplicates" >> beam.FlatMap(steps.split_near_duplicates).with_outputs(steps.FILTERED, main="docs")
        )
        filtered.append(near[steps.FILTERED])
        docs = near.docs

    # -> (domain, (pages, lines removed))
    info = docs | "DomainInfo" >> beam.Map(lambda d: (d.domain, d)) | "CountDomainPages" >> beam.CombinePerKey(steps.DomainInfo())
    # -> (domain, [SampledPage]): the sample_per_domain smallest sample keys, rerun-stable
    samples = (
        docs
        | "SampleItems" >> beam.Map(steps.sample_item, config)
        | "SamplePerDomain" >> beam.combiners.Top.PerKey(config.sample_per_domain, key=steps.sample_sort_key, reverse=True)
    )
    # -> keyed triage ChatRequest | info: (domain, DomainPlan)
    planned = (
        {"info": info, "sample": samples}
        | "JoinDomainSamples" >> beam.CoGroupByKey()
        | "PlanDomains" >> beam.ParDo(steps.PlanDomain(config)).with_outputs(steps.INFO, main="requests")
    )
    # -> TagRow per sampled page
    tag_rows = _triage(planned.requests, config, output_dir)
    # -> (domain, DomainTagStats)
    tag_stats = tag_rows | "TagsByDomain" >> beam.Map(lambda r: (r.domain, r)) | "AggregateTags" >> beam.CombinePerKey(steps.TagStats())
    # -> (domain, DomainDecision)
    decisions = (
        {"plan": planned[steps.INFO], "stats": tag_stats}
        | "JoinPlansTags" >> beam.CoGroupByKey()
        | "DecideDomains" >> beam.ParDo(steps.DecideDomain(config))
    )
    # -> retained WebDoc | rewrite: WebDoc | filtered domain_discard; joined on (domain, shard)
    shards = config.join_shards
    applied = (
        {
            "decision": decisions | "CopyDecisionToShards" >> beam.FlatMapTuple(
                lambda domain, decision: (((domain, s), steps.to_apply(decision, config.seed)) for s in range(shards))),
            "pages": docs | "KeyPagesByShard" >> beam.Map(lambda d: ((d.domain, steps.page_shard(d.page_id, shards)), d)),
        }
        | "JoinVerdicts" >> beam.CoGroupByKey()
        | "ApplyVerdicts" >> beam.ParDo(steps.ApplyVerdict(config)).with_outputs(
            steps.FILTERED, steps.REWRITE, steps.FAILED, main="docs")
    )
    filtered.append(applied[steps.FILTERED])
    written = [applied.docs]
    dead = [read[steps.FAILED], extracted[steps.FAILED], applied[steps.FAILED]]
    if config.rewrite and config.agent:
        written.append(_rewrite(applied[steps.REWRITE], config, output_dir))
    pages = written | "AllWritten" >> beam.Flatten() if len(written) > 1 else written[0]
    all_filtered = filtered | "AllFiltered" >> beam.Flatten()
    all_dead = dead | "AllDeadLetters" >> beam.Flatten()

    _write(pages, "Pages", part_path(output_dir, "pages"), schema.WEB_PAGE_SCHEMA, schema.web_page_row, config.num_shards)
    _write(all_filtered, "Filtered", part_path(output_dir, "filtered"), schema.WEB_FILTERED_SCHEMA, schema.web_filtered_row,
           config.num_shards)
    _write(all_dead, "DeadLetter", part_path(output_dir, "dead_letter"), schema.WEB_DEAD_LETTER_SCHEMA, schema.web_dead_letter_row, 1)
    _write(decisions, "Verdicts", part_path(output_dir, "verdicts"), schema.WEB_VERDICT_SCHEMA, schema.web_verdict_row, 1)
    _write(tag_rows, "Tags", part_path(output_dir, "tags"), schema.WEB_TAGS_SCHEMA, schema.web_tag_row, 1)

    # -> summary.json: inputs == written + filtered + dead_letter
    keys = (
        read.pages | "CountPagesRead" >> beam.FlatMap(steps.summary_keys_read),
        read[steps.FAILED] | "CountReadFailures" >> beam.FlatMap(steps.summary_keys_read),
        pages | "CountWritten" >> beam.FlatMap(steps.summary_keys_written),
        all_filtered | "CountFiltered" >> beam.FlatMap(steps.summary_keys_filtered),
        all_dead | "CountDeadLetters" >> beam.FlatMap(steps.summary_keys_dead),
        tag_rows | "CountTags" >> beam.FlatMap(steps.summary_keys_tags),
        decisions | "CountDomains" >> beam.FlatMap(steps.summary_keys_decision),
    )
    summarize(keys, steps.BuildSummary(), output_dir, config, input_pattern)


def _triage(requests, config: WebConfig, output_dir: str):
    """Keyed triage ChatRequests -> TagRow per sampled page (failed batches become tag failures)."""
    from scicurate.llm.handler import chat_handler

    if not config.agent:
        return requests | "NoTriage" >> beam.FlatMap(lambda _: [])
    agent = KeyedModelHandler(chat_handler(config.llm, namespace="web_triage",
                                           resume_dir=output_dir if config.resume else ""))
    answered, failed = requests | "AskTriageAgent" >> gpu_hinted(
        RunInference(agent).with_exception_handling(), config.gpu_accelerator, config.llm)
    return (
        (
            answered | "TagRows" >> beam.Map(steps.tag_row),
            failed.failed_inferences | "TriageExceptions" >> beam.FlatMap(steps.failed_tag_rows, config.triage.prompt),
        )
        | "AllTagRows" >> beam.Flatten()
    )


def _rewrite(docs, config: WebConfig, output_dir: str):
    """WebDocs of rewrite domains -> rewritten (guards passed) or the original, flagged."""
    from scicurate.llm.handler import chat_handler

    asks = docs | "RewriteRequests" >> beam.FlatMap(steps.rewrite_requests, config).with_outputs("done", main="asks")
    rewriter = KeyedModelHandler(chat_handler(config.rewrite_llm, namespace="web_rewrite",
                                              resume_dir=output_dir if config.resume else ""))
    answered, failed = asks.asks | "AskRewriter" >> gpu_hinted(
        RunInference(rewriter).with_exception_handling(), config.gpu_accelerator, config.rewrite_llm)
    return (
        (
            answered | "ApplyRewrites" >> beam.Map(steps.apply_rewrite, config),
            failed.failed_inferences | "RewriteExceptions" >> beam.FlatMap(steps.failed_rewrites),
            asks["done"],
        )
        | "AllRewritten" >> beam.Flatten()
    )


__all__ = ["build"]
