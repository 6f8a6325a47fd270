"""The taxonomy recall pipeline. Wiring only: logic lives in the cores (see recall_steps).

    pool JSONL / Parquet ─ read (id, text, url) ─ score with each model (RunInference: fastText
    or the small-LLM classifier) ─ thresholds (a separate stage) ─ recalled: taxonomy path
    (path model) ─ per-domain Parquet shards │ filtered: below_threshold
    ─ URL-domain recall ─ seed candidates of hot URL domains (next round's pool)
    ─ LLM spot-check of a sample per domain ─ summary.json with the purity report
"""

from __future__ import annotations

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystems import FileSystems
from apache_beam.ml.inference.base import KeyedModelHandler, RunInference

from scicurate import schema
from scicurate.pipelines import recall_steps as steps
from scicurate.pipelines.outputs import write_parquet as _write
from scicurate.pipelines.summary import summarize
from scicurate.recall_records import RecallRunConfig, ScoredDoc




def build(pipeline: beam.Pipeline, input_pattern: str, output_dir: str, config: RecallRunConfig) -> None:
    output_dir = output_dir.rstrip("/")
    out = lambda *parts: FileSystems.join(output_dir, *parts)  # noqa: E731
    targets = config.targets()

    # -> PoolDoc | filtered RecallFiltered (empty text) | failed RecallDeadLetter
    read = (
        pipeline
        | "MatchPool" >> fileio.MatchFiles(input_pattern)
        | "ReadPoolFiles" >> fileio.ReadMatches()
        | "ReadPool" >> beam.ParDo(steps.ReadPool(config)).with_outputs(steps.FILTERED, steps.FAILED, main="docs")
    )
    # -> ScoredDoc with one {label: P} per model | failed (a batch a model raised on)
    scored = read.docs | "Spread" >> beam.Reshuffle() | "StartScores" >> beam.Map(ScoredDoc)
    dead = [read[steps.FAILED]]
    for i, model in enumerate(config.models):
        handler = KeyedModelHandler(steps.RecallScoreHandler(model.model_dir, max_batch_size=config.batch_size))
        answered, failed = (
            scored
            | f"ScoreText{i}" >> beam.Map(steps.text_of)
            | f"Score{i}" >> RunInference(handler).with_exception_handling()
        )
        scored = answered | f"AddScores{i}" >> beam.Map(steps.add_scores)
        dead.append(failed.failed_inferences | f"ScoreFailures{i}" >> beam.FlatMap(steps.failed_scores, "score"))
    # -> Decision (thresholds applied; scores untouched)
    decisions = scored | "ApplyThresholds" >> beam.ParDo(steps.ApplyThresholds(config))
    # -> recalled Decision | filtered below_threshold
    split = decisions | "SplitRecalled" >> beam.FlatMap(steps.split_decision).with_outputs(steps.FILTERED, main="recalled")
    # -> RecalledDoc with its taxonomy path (the first model's path model)
    with_paths, path_failed = (
        split.recalled
        | "PathInput" >> beam.Map(steps.path_input)
        | "FindPaths" >> RunInference(KeyedModelHandler(steps.PathHandler(config.models[0].model_dir))
                                      ).with_exception_handling()
    )
    recalled = with_paths | "AttachPaths" >> beam.Map(steps.attach_path)
    dead.append(path_failed.failed_inferences | "PathFailures" >> beam.FlatMap(steps.failed_scores, "path"))

    # -> (url_domain, UrlDomainStats): pages and recalled pages per URL domain
    url_stats = (
        decisions
        | "WithUrlDomain" >> beam.Filter(lambda d: bool(d.scored.doc.url_domain))
        | "KeyByUrlDomain" >> beam.Map(lambda d: (d.scored.doc.url_domain, d))
        | "CountUrlDomains" >> beam.CombinePerKey(steps.UrlDomainRecall())
        | "UrlDomainStats" >> beam.Map(lambda kv, c: steps.url_domain_stats(kv[0], kv[1], c), config)
    )
    # -> SeedCandidate: the other pages of URL domains hot for a target (next round's pool)
    hot = url_stats | "HotUrlDomains" >> beam.Filter(lambda s: bool(s.hot)) | "KeyHot" >> beam.Map(lambda s: (s.url_domain, s))
    candidates = decisions | "SeedCandidates" >> beam.FlatMap(steps.seed_candidates, beam.pvalue.AsDict(hot), config.round)
    # -> SpotCheck: the annotation prompt re-labels the spot_check smallest-hash texts per domain
    spot = _spot_check(recalled, config, output_dir)

    filtered = (read[steps.FILTERED], split[steps.FILTERED]) | "AllFiltered" >> beam.Flatten()
    all_dead = dead | "AllDeadLetters" >> beam.Flatten()
    by_domain = recalled | "ByDomain" >> beam.Partition(steps.domain_index, len(targets), targets)
    for domain, part in zip(targets, by_domain):
        _write(part, f"Recalled_{domain}", out("recalled", domain, "part"), schema.RECALLED_SCHEMA,
               lambda r: schema.recalled_row(r, config.round), config.num_shards)
    _write(decisions, "Scores", out("scores", "part"), schema.RECALL_SCORES_SCHEMA, schema.recall_scores_row,
           config.num_shards)
    _write(filtered, "Filtered", out("filtered", "part"), schema.RECALL_FILTERED_SCHEMA, schema.recall_filtered_row,
           config.num_shards)
    _write(all_dead, "DeadLetter", out("dead_letter", "part"), schema.RECALL_DEAD_LETTER_SCHEMA,
           schema.recall_dead_letter_row, 1)
    _write(url_stats, "UrlDomains", out("url_domains", "part"), schema.RECALL_URL_DOMAIN_SCHEMA,
           schema.recall_url_domain_row, 1)
    _write(spot, "SpotCheck", out("spot_check", "part"), schema.RECALL_SPOT_CHECK_SCHEMA, schema.recall_spot_check_row, 1)
    _ = (
        candidates
        | "CandidateJson" >> beam.Map(schema.seed_candidate_json)
        | "WriteCandidates" >> beam.io.WriteToText(out("seed_candidates", "part"), file_name_suffix=".jsonl",
                                                   num_shards=1, shard_name_template="-SSSSS-of-NNNNN")
    )

    # -> summary.json: inputs == recalled + filtered + dead-lettered rows; purity per domain
    keys = (
        read.docs | "CountRead" >> beam.FlatMap(steps.keys_read),
        filtered | "CountFiltered" >> beam.FlatMap(steps.keys_filtered),
        all_dead | "CountDead" >> beam.FlatMap(steps.keys_dead),
        recalled | "CountRecalled" >> beam.FlatMap(steps.keys_recalled),
        spot | "CountSpotChecks" >> beam.FlatMap(steps.keys_spot),
        url_stats | "CountUrlDomainKeys" >> beam.FlatMap(steps.keys_url_domain),
        candidates | "CountCandidates" >> beam.FlatMap(steps.keys_candidate),
    )
    summarize(keys, steps.BuildSummary(config), output_dir, config, input_pattern)


def _spot_check(recalled, config: RecallRunConfig, output_dir: str):
    """RecalledDoc -> SpotCheck for a deterministic sample of each domain (none when off)."""
    if not config.spot_check:
        return recalled | "NoSpotCheck" >> beam.FlatMap(lambda _: [])
    from scicurate.llm.handler import chat_handler

    requests = (
        recalled
        | "SpotKeys" >> beam.Map(steps.spot_key, config.seed)
        | "SpotSample" >> beam.combiners.Top.PerKey(config.spot_check, key=lambda item: item[0], reverse=True)
        | "SpotRequests" >> beam.FlatMap(steps.spot_check_requests)
    )
    checker = KeyedModelHandler(chat_handler(config.llm, namespace="recall_spot_check", resume_dir=output_dir))
    answered, failed = requests | "AskSpotCheck" >> RunInference(checker).with_exception_handling()
    return (
        (
            answered | "SpotRows" >> beam.Map(steps.spot_check_row),
            failed.failed_inferences | "SpotExceptions" >> beam.FlatMap(steps.failed_spot_checks),
        )
        | "AllSpotChecks" >> beam.Flatten()
    )


__all__ = ["build"]
