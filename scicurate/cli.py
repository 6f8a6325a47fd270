"""`scicurate` command line: `run pdf` (the Beam pipeline) and `parse` (one document)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
import time
from typing import Any, Sequence

from scicurate import __version__
from scicurate.config import EMBEDDED_LLM, HIGH_COST_PARSERS, LLM_BACKENDS, PRESETS, TIERS, ConfigError, PdfConfig
from scicurate.resume import RunOutput


def _llm_changes(args: argparse.Namespace, prefix: str) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for flag, field in (("endpoint", "endpoint"), ("model", "model"), ("backend", "backend"),
                        ("concurrency", "max_concurrency"), ("timeout", "timeout_s"), ("max_tokens", "max_tokens"),
                        ("structured", "structured")):
        value = getattr(args, f"{prefix}_{flag}", None)
        if value is not None:
            changes[field] = value
    if changes.get("endpoint") and "backend" not in changes:
        changes["backend"] = "endpoint"
    return changes


def _pdf_config(args: argparse.Namespace) -> PdfConfig:
    config = PRESETS[args.preset]
    changes: dict[str, Any] = {}
    llm = _llm_changes(args, "llm")
    if llm:
        changes["llm"] = config.llm.replace(**llm)
    cleanup = _llm_changes(args, "cleanup")
    if cleanup:
        changes["cleanup_llm"] = config.cleanup_llm.replace(**cleanup)
    if getattr(args, "vlm_cleanup", False):
        changes["vlm_cleanup"] = True
    for flag, field in (
        ("tier", "tier"), ("route_budget", "route_budget"), ("window_pages", "window_pages"),
        ("page_timeout", "page_timeout_s"), ("max_pages", "max_pages"), ("max_bytes", "max_bytes"),
        ("parser_memory_mb", "parser_memory_mb"),
        ("shards", "num_shards"), ("min_text_chars", "min_text_chars"),
        ("high_cost_parser", "high_cost_parser"), ("vlm_dpi", "vlm_dpi"), ("max_fallback_rate", "max_fallback_rate"),
    ):
        value = getattr(args, flag, None)
        if value is not None:
            changes[field] = value
    if getattr(args, "no_ocr", False):
        changes["ocr_without_text_layer"] = False
    for flag, field in (("no_garble", "garble"), ("no_formula_check", "formula_check"), ("no_scistrings", "scistrings")):
        if getattr(args, flag, False):
            changes[field] = False
    for flag, field in (("garble_threshold", "garble_threshold"), ("garble_document_share", "garble_document_share"),
                        ("edu_model", "edu_model"), ("edu_threshold", "edu_threshold"), ("tokenizer", "tokenizer")):
        value = getattr(args, flag, None)
        if value is not None:
            changes[field] = value
    if getattr(args, "allow_model_download", False):
        changes["allow_model_download"] = True
    if getattr(args, "no_resume", False):
        changes["resume"] = False
    if getattr(args, "gpu_accelerator", None):
        changes["gpu_accelerator"] = args.gpu_accelerator
    return config.replace(**changes)


def _add_pdf_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", choices=sorted(PRESETS), default="flash", help="named configuration (default: flash)")
    p.add_argument("--tier", choices=TIERS, help="MinerU tier; flash needs no models, basic needs the ONNX set")
    p.add_argument("--window-pages", type=int, help="pages per split window (default 8)")
    p.add_argument("--page-timeout", type=float, help="seconds allowed per page before it is dead-lettered")
    p.add_argument("--parser-memory-mb", type=int,
                   help="address-space cap of each PDFium/MinerU process in MiB (default 4096; 0 = none)")
    p.add_argument("--max-pages", type=int, help="documents with more pages are dead-lettered")
    p.add_argument("--max-bytes", type=int, help="files larger than this are dead-lettered unread")
    p.add_argument("--min-text-chars", type=int, help="fewer text-layer chars than this = no text layer")
    p.add_argument("--no-ocr", action="store_true", help="do not OCR pages without a text layer")
    p.add_argument("--allow-model-download", action="store_true",
                   help="let MinerU download its models (off: models load from local paths only)")
    p.add_argument("--high-cost", "--high-cost-parser", dest="high_cost_parser", choices=HIGH_COST_PARSERS,
                   help="parser for routed pages: vlm (any OpenAI-compatible VLM server), mineru-vlm "
                        "(MinerU2.5 served by vLLM), rapidocr (OCR). Default: none, pages are flagged")
    p.add_argument("--llm-endpoint", help="OpenAI-compatible base URL of the VLM server, e.g. http://gpu:8000/v1")
    p.add_argument("--llm-model", help="model name at --llm-endpoint (or a local model dir with --llm-backend vllm)")
    p.add_argument("--llm-backend", choices=LLM_BACKENDS, help="endpoint (default), vllm (in-worker, GPU), embedded")
    p.add_argument("--llm-concurrency", type=int, help="requests in flight per worker (default 4)")
    p.add_argument("--llm-timeout", type=float, help="seconds per request before it is retried (default 120)")
    p.add_argument("--llm-max-tokens", type=int, help="answer length cap per page (default 2048)")
    p.add_argument("--llm-structured", choices=("auto", "json_schema", "llama_cpp", "guided_json", "none"),
                   help="how JSON schemas reach the server (default auto)")
    p.add_argument("--vlm-dpi", type=int, help="render resolution of pages sent to the VLM (default 144)")
    p.add_argument("--max-fallback-rate", type=float,
                   help="dead-letter a document when the VLM fails on more than this share of its routed pages")
    p.add_argument("--vlm-cleanup", action="store_true",
                   help="small-LLM pass deleting header/footer lines from VLM pages (embedded Gemma-3-270M by default)")
    p.add_argument("--cleanup-endpoint", help="OpenAI-compatible server for the cleanup pass (default: embedded)")
    p.add_argument("--cleanup-model", help="model for the cleanup pass (embedded: gemma3 (default), smollm2 or a .gguf path)")
    q = p.add_argument_group("quality controls")
    q.add_argument("--no-garble", action="store_true", help="do not score pages for garbled text")
    q.add_argument("--garble-threshold", type=float,
                   help="pages scoring at least this leave the document as garbled (default 0.5)")
    q.add_argument("--garble-document-share", type=float,
                   help="documents whose garbled pages hold this share of their text go to filtered/ (default 0.5)")
    q.add_argument("--no-formula-check", action="store_true", help="do not parse formulas with KaTeX (Node.js)")
    q.add_argument("--no-scistrings", action="store_true", help="do not tag SMILES and sequences")
    q.add_argument("--edu-model", help="education scorer directory (`scicurate train edu`): score documents 0-5 and "
                                       "filter those below --edu-threshold; for web-crawled PDFs, off by default")
    q.add_argument("--edu-threshold", type=float, help="minimum education score kept (default 2.5)")
    q.add_argument("--tokenizer", help="tokens in summary.json: smollm2 (default, shipped), words, or a tokenizer.json path")
    p.add_argument("--no-resume", action="store_true",
                   help="do not keep finished work under OUTPUT/_resume (a rerun of a killed run then starts over)")
    p.add_argument("--gpu-accelerator", metavar="HINT",
                   help="with --llm-backend vllm: Beam accelerator hint for the VLM stages only, e.g. "
                        "'type:nvidia-l4;count:1;install-nvidia-driver' (Dataflow right fitting)")


def _write_run_info(output: str, info: dict[str, Any]) -> None:
    """Run metadata beside the datasets (wall time varies per run, so it is not in the data)."""
    from apache_beam.io.filesystems import FileSystems

    try:
        with FileSystems.create(FileSystems.join(output.rstrip("/"), "run_info.json")) as fh:
            fh.write(json.dumps(info, indent=2, sort_keys=True).encode("utf-8"))
    except Exception as exc:  # noqa: BLE001 - metadata must not fail a finished run
        logging.getLogger("scicurate").warning("could not write run_info.json: %s", exc)


def _cmd_eval(args: argparse.Namespace, command) -> int:
    report = command.run(args)
    if args.json:
        print(json.dumps(report.to_json(), ensure_ascii=False, indent=2, default=str))
    else:
        print(report.to_text())
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from scicurate.report import ReportError, write_report

    try:
        path = write_report(args.run_dir, args.output)
    except ReportError as exc:
        print(f"scicurate: report: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


def preflight_quality(config: PdfConfig) -> None:
    """Load what the quality stages need once, here: the tokenizer, lid.176, KaTeX under Node
    and the education model, so a missing one fails before any input is read, with the fix."""
    from scicurate.pipelines.quality_steps import load_counter

    try:
        load_counter(config.tokenizer)
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure here is a set-up problem
        raise ConfigError(f"cannot load the tokenizer {config.tokenizer!r} for the summary's token counts: {exc}. "
                          "Pass --tokenizer words (whitespace words) or a tokenizer.json path.") from None
    if config.garble:
        from scicurate.classifiers.garble import GarbleDetector

        GarbleDetector().load()
    if config.formula_check:
        from scicurate.parsers.formula_check import FormulaChecker, check_text

        try:
            with FormulaChecker() as checker:
                check_text("$x^2$", checker)
        except ConfigError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise ConfigError(f"the formula check (KaTeX under Node.js) does not start: {exc}. "
                              "Run `make install` (it runs `npm ci`), or pass --no-formula-check.") from None
    if config.edu_model:
        from scicurate.classifiers.edu import read_edu_card

        read_edu_card(config.edu_model)


def _preflight(config: PdfConfig) -> None:
    """Start the parser once here, so a missing model set fails before any input is read; check
    that a configured LLM endpoint answers and serves the model."""
    from scicurate import prompts
    from scicurate.llm.client import check_endpoint
    from scicurate.parsers.sandbox import SandboxedParser

    sandbox = SandboxedParser(config)
    try:
        sandbox.start()
    finally:
        sandbox.close()
    if config.vlm_endpoint:
        check_endpoint(config.llm)
    preflight_quality(config)
    if config.high_cost_parser == "vlm":
        try:
            prompts.load(config.vlm_prompt)
            if config.vlm_cleanup:
                prompts.load(config.cleanup_prompt)
        except prompts.PromptError as exc:
            raise ConfigError(str(exc)) from None


def _cmd_run_pdf(args: argparse.Namespace, beam_args: list[str]) -> int:
    import apache_beam as beam
    from apache_beam.io.filesystems import FileSystems

    from scicurate.pipelines import pdf as pdf_pipeline
    from scicurate.runner import match_inputs, pipeline_options, runner_name, workers_are_local

    import contextlib

    from scicurate.llm.client import check_endpoint
    from scicurate.llm.embedded import serving

    config = _pdf_config(args)
    if args.reparse_flagged:
        if not config.high_cost_parser:
            print("scicurate: --reparse-flagged needs --high-cost PARSER", file=sys.stderr)
            return 2
        source = FileSystems.join(args.reparse_flagged.rstrip("/"), "pages", "*.parquet")
        if not FileSystems.match([source])[0].metadata_list:
            print(f"scicurate: {args.reparse_flagged} holds no pages dataset (pages/*.parquet)", file=sys.stderr)
            return 2
        described = f"pages flagged needs_high_cost in {args.reparse_flagged}"
        inputs = 0
    else:
        if not args.input:
            print("scicurate: run pdf needs --input (or --reparse-flagged PREVIOUS_RUN)", file=sys.stderr)
            return 2
        matches = match_inputs(args.input)
        if not matches:
            print(f"scicurate: no files match --input {args.input!r}", file=sys.stderr)
            return 2
        described, inputs = f"{len(matches)} input files", len(matches)
    options = pipeline_options(beam_args)
    if config.vlm_cleanup and config.cleanup_llm.backend == "embedded" and not workers_are_local(options):
        raise ConfigError("--vlm-cleanup runs its embedded model on this machine, which the workers of "
                          f"{runner_name(options)} cannot reach: pass --cleanup-endpoint URL --cleanup-model NAME")
    _preflight(config)
    print(f"scicurate: {described}; low-cost parser MinerU tier '{config.tier}'"
          f" ({'no models needed' if config.tier == 'flash' else 'local models required'});"
          f" route budget {100 * config.route_budget:g}% of pages;"
          f" high-cost {config.high_cost_parser or 'none (pages flagged)'}; runner {runner_name(options)}",
          file=sys.stderr)
    started = time.perf_counter()
    inputs_read = [args.reparse_flagged] if args.reparse_flagged else [m.path for m in matches]
    with RunOutput(args.output, inputs_read, resume=config.resume) as run_output, contextlib.ExitStack() as stack:
        if config.vlm_cleanup:
            # The embedded cleanup model runs for the length of the run and stops with it.
            cleanup = stack.enter_context(serving(config.cleanup_llm))
            if config.cleanup_llm.backend == "endpoint":
                check_endpoint(cleanup)
            config = config.replace(cleanup_llm=cleanup)
        with beam.Pipeline(options=options) as pipeline:
            if args.reparse_flagged:
                pdf_pipeline.build_reparse(pipeline, args.reparse_flagged, args.output, config)
            else:
                pdf_pipeline.build(pipeline, args.input, args.output, config)
    _write_run_info(args.output, {
        "wall_seconds": round(time.perf_counter() - started, 3), "runner": runner_name(options),
        "tier": config.tier, "inputs": inputs, "input": args.input or f"reparse:{args.reparse_flagged}",
        # where relative input paths start: `scicurate export` reopens the PDFs for their figures
        "cwd": os.getcwd(),
        "high_cost": config.high_cost_parser, "llm_model": config.llm.model if config.high_cost_parser else "",
        "scicurate_version": __version__, "resumed_units": run_output.resumed_units,
    })
    return _print_summary(args.output, ("documents", "dead_letter"))


def _web_config(args: argparse.Namespace):
    from scicurate.classifiers.web_rules import PRESETS as RULE_PRESETS
    from scicurate.web_config import WEB_PRESETS

    config = WEB_PRESETS[args.preset]
    changes: dict[str, Any] = {}
    llm = _llm_changes(args, "llm")
    if llm:
        changes["llm"] = config.llm.replace(**llm)
    rewrite = _llm_changes(args, "rewrite")
    if rewrite:
        changes["rewrite_llm"] = config.rewrite_llm.replace(**rewrite)
    elif llm:
        # One model server for both LLM stages unless the rewriter is given its own.
        changes["rewrite_llm"] = config.rewrite_llm.replace(**{k: v for k, v in llm.items() if k != "max_tokens"})
    if args.rules:
        changes["rules"], changes["rules_preset"] = RULE_PRESETS[args.rules], args.rules
    if args.languages is not None:
        changes["languages"] = tuple(code.strip() for code in args.languages.split(",") if code.strip())
    if args.drop_formats is not None:
        changes["drop_formats"] = tuple(f.strip() for f in args.drop_formats.split(",") if f.strip())
    for flag, field in (("min_lang_score", "min_lang_score"), ("quality_model", "quality_model"),
                        ("min_quality", "min_quality"), ("format_model", "format_model"),
                        ("edu_model", "edu_model"), ("min_edu", "min_edu"),
                        ("sample_per_domain", "sample_per_domain"), ("sample_share", "sample_share"),
                        ("sample_min", "sample_min"), ("min_domain_pages", "min_domain_pages"),
                        ("small_domain_verdict", "small_domain_verdict"), ("seed", "seed"),
                        ("max_body_bytes", "max_body_bytes"), ("shards", "num_shards")):
        value = getattr(args, flag, None)
        if value is not None:
            changes[field] = value
    extract = {}
    if args.extract_timeout is not None:
        extract["timeout_s"] = args.extract_timeout
    if args.extract_workers is not None:
        extract["workers"] = args.extract_workers
    if extract:
        import dataclasses

        changes["extract"] = dataclasses.replace(config.extract, **extract)
    for flag, field in (("no_agent", "agent"), ("no_rewrite", "rewrite"), ("no_exact_dedup", "exact_dedup"),
                        ("no_near_dedup", "near_dedup"), ("no_resume", "resume")):
        if getattr(args, flag, False):
            changes[field] = False
    if args.no_line_dedup:
        changes["line_dedup"] = None
    return config.replace(**changes)


def _add_web_flags(p: argparse.ArgumentParser) -> None:
    from scicurate.classifiers.web_rules import PRESETS as RULE_PRESETS
    from scicurate.web_config import SMALL_DOMAIN_VERDICTS, WEB_PRESETS

    p.add_argument("--input", required=True,
                   help="file pattern of WARC/WARC.gz, JSONL(.gz) rows {url, html} or Parquet (quote the glob)")
    p.add_argument("--output", required=True, help="output directory (any Beam file system)")
    p.add_argument("--preset", choices=sorted(WEB_PRESETS), default="default",
                   help="default: datatrove's rule thresholds; science: lenient rules for formulas and code")
    p.add_argument("--rules", choices=sorted(RULE_PRESETS), help="rule filter preset (overrides --preset's)")
    p.add_argument("--languages", help="comma-separated lid.176 codes to keep, e.g. en,zh (default: all)")
    p.add_argument("--min-lang-score", type=float, help="least lid.176 probability for --languages (default 0)")
    p.add_argument("--quality-model", help="fastText quality model from `scicurate train web-classifiers`")
    p.add_argument("--min-quality", type=float, help="drop pages whose P(hq) is below this (default 0)")
    p.add_argument("--format-model", help="fastText format model from `scicurate train web-classifiers`")
    p.add_argument("--edu-model", help="education scorer directory from `scicurate train edu`: pages scored "
                                       "below --min-edu on the 0-5 scale go to filtered/ (low_education)")
    p.add_argument("--min-edu", type=float, help="least education score kept (default 2.5)")
    p.add_argument("--drop-formats", help="comma-separated formats to drop (default: navigation)")
    p.add_argument("--sample-per-domain", type=int, help="most pages the agent reads per domain (default 200)")
    p.add_argument("--sample-share", type=float, help="share of a domain's pages the agent reads (default 0.1)")
    p.add_argument("--sample-min", type=int, help="least pages the agent reads per triaged domain (default 16)")
    p.add_argument("--min-domain-pages", type=int, help="smaller domains skip the agent (default 5)")
    p.add_argument("--small-domain-verdict", choices=SMALL_DOMAIN_VERDICTS,
                   help="verdict of domains under --min-domain-pages (default retain)")
    p.add_argument("--seed", type=int, help="seed of the per-domain sample (default 0)")
    p.add_argument("--no-agent", action="store_true", help="no LLM calls: no triage, no rewrite")
    p.add_argument("--no-rewrite", action="store_true", help="rewrite domains keep their text (flagged)")
    p.add_argument("--no-exact-dedup", action="store_true")
    p.add_argument("--no-near-dedup", action="store_true")
    p.add_argument("--no-line-dedup", action="store_true")
    p.add_argument("--extract-timeout", type=float, help="seconds per page for trafilatura (default 30)")
    p.add_argument("--extract-workers", type=int, help="trafilatura child processes per Beam worker (default: local runs the CPU count up to 8, else 1)")
    p.add_argument("--max-body-bytes", type=int, help="larger records are dead-lettered unread (default 10 MiB)")
    p.add_argument("--shards", type=int, help="Parquet shards of pages/ and filtered/ (default 1)")
    p.add_argument("--llm-endpoint", help="OpenAI-compatible base URL of the agent's server (default: embedded)")
    p.add_argument("--llm-model", help="model at --llm-endpoint; embedded: smollm2 (default), gemma3 or a .gguf")
    p.add_argument("--llm-backend", choices=LLM_BACKENDS, help="embedded (default), endpoint, vllm (in-worker, GPU)")
    p.add_argument("--llm-concurrency", type=int, help="requests in flight per worker")
    p.add_argument("--llm-timeout", type=float, help="seconds per request before it is retried")
    p.add_argument("--llm-structured", choices=("auto", "json_schema", "llama_cpp", "guided_json", "none"),
                   help="how the tag schema reaches the server (default auto)")
    p.add_argument("--rewrite-endpoint", help="server for the rewriter (default: the agent's)")
    p.add_argument("--rewrite-model", help="model for the rewriter (default: the agent's)")
    p.add_argument("--no-resume", action="store_true",
                   help="do not keep model answers under OUTPUT/_resume (a rerun of a killed run asks again)")
    p.add_argument("--gpu-accelerator", metavar="HINT",
                   help="with --llm-backend vllm: Beam accelerator hint for the agent and rewriter stages only")


def _cmd_run_web(args: argparse.Namespace, beam_args: list[str]) -> int:
    import contextlib

    import apache_beam as beam

    from scicurate.llm.client import check_endpoint
    from scicurate.llm.embedded import serving
    from scicurate.pipelines import web as web_pipeline
    from scicurate.runner import local_cpu_share, match_inputs, pipeline_options, runner_name, workers_are_local

    config = _web_config(args)
    matches = match_inputs(args.input)
    if not matches:
        print(f"scicurate: no files match --input {args.input!r}", file=sys.stderr)
        return 2
    options = pipeline_options(beam_args)
    uses_llm = config.agent
    require_reachable_llm(uses_llm and "embedded" in (config.llm.backend, config.rewrite_llm.backend), options,
                          "--no-agent")
    if args.extract_workers is None and workers_are_local(options):
        # a local run is one Beam worker: give its extractor this machine's CPUs (a cluster
        # worker keeps one child per DoFn, its runner already runs one DoFn per core)
        config = dataclasses.replace(config, extract=dataclasses.replace(
            config.extract, workers=local_cpu_share(options)))
    _preflight_web(config)
    print(f"scicurate: {len(matches)} input files; rules '{config.rules_preset}'; languages "
          f"{','.join(config.languages) or 'all'}; agent "
          f"{(config.llm.backend + ':' + (config.llm.model or config.llm.endpoint)) if uses_llm else 'off'}; "
          f"runner {runner_name(options)}; {config.extract.workers} extraction processes", file=sys.stderr)
    if uses_llm and config.llm.backend == "embedded":
        print(f"scicurate: note: the agent is the embedded CPU model {config.llm.model or 'smollm2'}; it runs "
              "everywhere, but its tags are not a real judgement of a page: for triage, serve a strong "
              "model (vllm serve …) and pass --llm-endpoint URL --llm-model NAME", file=sys.stderr)
    started = time.perf_counter()
    with RunOutput(args.output, [m.path for m in matches], resume=config.resume) as run_output, \
            contextlib.ExitStack() as stack:
        if uses_llm:
            agent = stack.enter_context(serving(config.llm))
            if agent.backend == "endpoint":
                check_endpoint(agent)
            rewrite = config.rewrite_llm
            if rewrite.backend == "embedded" and config.llm.backend == "embedded" and rewrite.model == config.llm.model:
                rewrite = rewrite.replace(backend="endpoint", endpoint=agent.endpoint, model=agent.model,
                                          structured=agent.structured)
            elif config.rewrite:
                rewrite = stack.enter_context(serving(rewrite))
                if rewrite.backend == "endpoint":
                    check_endpoint(rewrite)
            config = config.replace(llm=agent, rewrite_llm=rewrite)
        with beam.Pipeline(options=options) as pipeline:
            web_pipeline.build(pipeline, args.input, args.output, config)
    _write_run_info(args.output, {
        "wall_seconds": round(time.perf_counter() - started, 3), "runner": runner_name(options),
        "inputs_files": len(matches), "input": args.input, "agent_model": config.llm.model if uses_llm else "",
        "scicurate_version": __version__, "resumed_units": run_output.resumed_units,
    })
    return _print_summary(args.output, ("written", "filtered", "dead_letter"))


def require_reachable_llm(uses_embedded: bool, options, off_flag: str) -> None:
    """The embedded model server runs on this machine: fail at start-up when the runner's
    workers are elsewhere, naming the flags that fix it."""
    from scicurate.runner import runner_name, workers_are_local

    if uses_embedded and not workers_are_local(options):
        raise ConfigError("the embedded model runs on this machine, which the workers of "
                          f"{runner_name(options)} cannot reach: pass --llm-endpoint URL --llm-model NAME "
                          f"(or {off_flag})")


def _preflight_web(config) -> None:
    """Fail before reading input: prompts, lid.176 and any classifier models must load."""
    from scicurate import prompts
    from scicurate.classifiers.web_fasttext import LanguageIdentifier, PageClassifier

    LanguageIdentifier().load()
    for path in (config.quality_model, config.format_model):
        if path:
            PageClassifier(path).load()
    if config.edu_model:
        from scicurate.classifiers.edu import read_edu_card

        read_edu_card(config.edu_model)
    if config.agent:
        try:
            prompts.load(config.triage.prompt)
            if config.rewrite:
                prompts.load(config.rewriter.prompt)
        except prompts.PromptError as exc:
            raise ConfigError(str(exc)) from None


def _print_summary(output: str, parts: tuple[str, ...]) -> int:
    from apache_beam.io.filesystems import FileSystems

    summary_path = FileSystems.join(output.rstrip("/"), "summary.json")
    try:
        with FileSystems.open(summary_path) as fh:
            summary = json.loads(fh.read().decode("utf-8"))
    except Exception as exc:  # noqa: BLE001 - remote runners may finish after we return
        print(f"scicurate: pipeline finished; summary not readable yet at {summary_path}: {exc}", file=sys.stderr)
        return 0
    summary.pop("config", None)
    print(json.dumps(summary, indent=2, sort_keys=True))
    if not summary.get("accounted", False):
        print(f"scicurate: WARNING inputs != {' + '.join(parts)}", file=sys.stderr)
        return 3
    return 0


def _cmd_llm_serve(args: argparse.Namespace) -> int:
    import signal

    from scicurate.llm.embedded import EmbeddedServer

    server = EmbeddedServer(args.model, port=args.port, n_ctx=args.ctx)
    stop = {"now": False}

    def _stop(signum, frame):  # noqa: ARG001 - signal handler signature
        stop["now"] = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    with server:
        print(json.dumps({"endpoint": server.url, "model": server.model.alias, "gguf": str(server.model.path),
                          "pid": server.process.pid if server.process else None}), flush=True)
        print(f"scicurate: serving {server.model.alias} at {server.url}; use --llm-endpoint {server.url} "
              f"--llm-model {server.model.alias}; Ctrl-C stops it", file=sys.stderr, flush=True)
        while not stop["now"]:
            if server.process is None or server.process.poll() is not None:
                print(f"scicurate: the model server exited: {server.log_tail()}", file=sys.stderr)
                return 1
            time.sleep(0.2)
    print("scicurate: model server stopped", file=sys.stderr)
    return 0


def _cmd_parse(args: argparse.Namespace) -> int:
    from scicurate.parse_one import ParseFailed, parse_document

    config = _pdf_config(args)
    if config.vlm_endpoint:
        from scicurate.llm.client import check_endpoint

        check_endpoint(config.llm)
    try:
        result = parse_document(args.file, config, progress=not args.quiet)
    except ParseFailed as exc:
        print(f"scicurate: {args.file}: {exc.reason}: {exc.message.splitlines()[0][:300]}", file=sys.stderr)
        return 1
    if args.json:
        text = json.dumps(result.to_json(), ensure_ascii=False, indent=2)
    else:
        text = result.document.text + "\n"
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)
    return 0


class _DropKnownNoise(logging.Filter):
    """Beam logs a warning about optional GCP client libraries on import; it is not ours to show."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return "apitools not found" not in message and "Resource module is not available" not in message


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(_DropKnownNoise())
    for noisy in ("apache_beam", "absl"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(prog="scicurate", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a pipeline; unknown flags go to Beam (--runner, --project, …)")
    run_sub = run.add_subparsers(dest="pipeline", required=True)
    pdf = run_sub.add_parser("pdf", help="PDFs -> Parquet documents/pages/dead_letter + summary.json")
    pdf.add_argument("--input", help="file pattern: local, gs://, s3:// (quote the glob)")
    pdf.add_argument("--reparse-flagged", metavar="PREVIOUS_RUN",
                     help="instead of --input: re-parse only the pages an earlier run flagged needs_high_cost")
    pdf.add_argument("--output", required=True, help="output directory (any Beam file system)")
    pdf.add_argument("--route-budget", type=float, help="fraction of pages for the high-cost parser (0.05)")
    pdf.add_argument("--shards", type=int, help="Parquet shards per dataset (default 1)")
    _add_pdf_flags(pdf)

    web = run_sub.add_parser("web", help="web pages -> Parquet pages/filtered/dead_letter/verdicts/tags + summary.json")
    _add_web_flags(web)
    from scicurate import recall_run

    recall_run.add_arguments(run_sub.add_parser(
        "recall", help="score a pool with recall models -> recalled/<domain>/, scores/, filtered/ + summary.json"))

    from scicurate import exam_run, images_run

    images_run.add_arguments(run_sub.add_parser(
        "images", help="filter image-text pairs (blank, blurry, tiny, extreme aspect, missing images) "
                       "-> kept/, filtered/, dead_letter/ + summary.json"))

    exam_run.add_arguments(run_sub.add_parser(
        "exam", help="exam-item integrity filter: JSONL/Parquet items -> kept/, filtered/ (reasons), dead_letter/ "
                     "+ summary.json"))

    one = sub.add_parser("parse", help="parse one PDF to Markdown on stdout")
    one.add_argument("file")
    one.add_argument("-o", "--output", help="write here instead of stdout")
    one.add_argument("--json", action="store_true", help="page records as JSON instead of Markdown")
    one.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    one.add_argument("--route-budget", type=float, help="fraction of this document's pages to mark for the VLM")
    _add_pdf_flags(one)

    from scicurate.evals import commands as eval_commands

    evaluate = sub.add_parser("eval", help="score a stage against a published ground-truth format")
    eval_sub = evaluate.add_subparsers(dest="eval_name", required=True)
    evals = eval_commands()
    for name, command in evals.items():
        ep = eval_sub.add_parser(name, help=command.help)
        command.add_arguments(ep)
        ep.add_argument("--json", action="store_true", help="print the full report as JSON")

    llm = sub.add_parser("llm", help="the embedded CPU language model server")
    llm_sub = llm.add_subparsers(dest="llm_command", required=True)
    serve = llm_sub.add_parser("serve", help="serve a shipped GGUF model on loopback (OpenAI API) until Ctrl-C")
    serve.add_argument("--model", default=EMBEDDED_LLM.model, help="smollm2 (default), gemma3, or a .gguf path")
    serve.add_argument("--port", type=int, default=0, help="TCP port (default: a free one)")
    serve.add_argument("--ctx", type=int, default=4096, help="context window in tokens (default 4096)")

    from scicurate import train as train_module

    train = sub.add_parser("train", help="train the project's classifiers on labels a run produced")
    train_sub = train.add_subparsers(dest="train_name", required=True)
    web_classifiers = train_sub.add_parser("web-classifiers",
                                           help="fastText quality and format models from a web run's tags/")
    train_module.add_arguments(web_classifiers)
    recall = train_sub.add_parser("recall", help="fastText recall model over the taxonomy's target domains, "
                                                 "from a seed or silver labels JSONL")
    train_module.add_recall_arguments(recall)
    train_module.add_recall_llm_arguments(train_sub.add_parser(
        "recall-llm", help="small-LLM recall classifier: a linear head on a frozen causal LM (SmolLM2-135M by "
                           "default), from a seed or silver labels JSONL"))

    from scicurate import edu as edu_module

    edu_module.add_train_arguments(train_sub.add_parser(
        "edu", help="education scorer (0-5): fastText or a MiniLM-embedding head, from `scicurate edu annotate` labels"))
    edu_cmd = sub.add_parser("edu", help="education-level scoring: LLM labels on a pool sample")
    edu_sub = edu_cmd.add_subparsers(dest="edu_command", required=True)
    edu_module.add_annotate_arguments(edu_sub.add_parser(
        "annotate", help="an LLM scores a deterministic sample of a pool with the additive 0-5 rubric (prompts/edu)"))

    from scicurate import recall as recall_module

    recall_cmd = sub.add_parser("recall", help="taxonomy recall: silver annotation and prompt refinement")
    recall_sub = recall_cmd.add_subparsers(dest="recall_command", required=True)
    recall_module.add_arguments(recall_sub.add_parser(
        "annotate", help="silver labels: an LLM (or a seed corpus) labels a pool sample against the taxonomy"))
    recall_module.add_refine_arguments(recall_sub.add_parser(
        "refine-prompt", help="revise a recall_<domain> prompt from its validation errors; keep only what scores better"))

    from scicurate import plan as plan_module

    plan_module.add_arguments(sub.add_parser(
        "plan", help="estimate worker-hours, GPU-hours and cost per million pages from the measured stage rates"))

    from scicurate import export_run

    export_run.add_arguments(sub.add_parser(
        "export", help="earlier runs -> deduplicated, mixed, tokenised, shuffled training shards + manifest.json"))

    rep = sub.add_parser("report", help="HTML report of a pipeline run (plots, dead letters, top pages)")
    rep.add_argument("run_dir", help="a `scicurate run pdf --output` directory")
    rep.add_argument("-o", "--output", help="where to write the HTML (default RUN_DIR/report.html)")

    args, rest = parser.parse_known_args(argv)
    # Beam's own flags are --snake_case; a leftover --kebab-case flag is a typo of ours, and
    # Beam would only log a warning and run with the default.
    typos = [a for a in rest if a.startswith("--") and "-" in a.split("=", 1)[0][2:]]
    if typos:
        parser.error(f"unrecognised arguments: {' '.join(typos)}")
    try:
        if args.command == "run" and args.pipeline == "pdf":
            return _cmd_run_pdf(args, rest)
        if args.command == "run" and args.pipeline == "web":
            return _cmd_run_web(args, rest)
        if args.command == "run" and args.pipeline == "recall":
            return recall_run.run(args, rest)
        if args.command == "run" and args.pipeline == "images":
            return images_run.run(args, rest)
        if args.command == "run" and args.pipeline == "exam":
            return exam_run.run(args, rest)
        if rest:
            parser.error(f"unrecognised arguments: {' '.join(rest)}")
        if args.command == "eval":
            return _cmd_eval(args, evals[args.eval_name])
        if args.command == "report":
            return _cmd_report(args)
        if args.command == "plan":
            return plan_module.run(args)
        if args.command == "export":
            return export_run.run(args)
        if args.command == "recall":
            return recall_module.run_refine(args) if args.recall_command == "refine-prompt" \
                else recall_module.run_annotate(args)
        if args.command == "edu":
            return edu_module.run_annotate(args)
        if args.command == "train":
            if args.train_name == "edu":
                return edu_module.run_train(args)
            if args.train_name == "recall-llm":
                return train_module.run_recall_llm(args)
            return train_module.run_recall(args) if args.train_name == "recall" else train_module.run(args)
        if args.command == "llm":
            return _cmd_llm_serve(args)
        return _cmd_parse(args)
    except ConfigError as exc:
        print(f"scicurate: configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
