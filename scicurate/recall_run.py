"""`scicurate run recall`: score a pool with recall models and keep each target domain's texts.

    scicurate run recall --input 'POOL*.jsonl' --output DIR --model MODEL_DIR [--model DIR2 --combine all|any]
        [--domains physics,chemistry] [--threshold physics=0.8 …] [--allow-unmet-thresholds]
        [--spot-check 8 | 0] [--llm-endpoint URL --llm-model NAME] [--candidate-share 0.1]
        [--candidate-min-pages 5] [--round 1] [--seed 0] [--shards 1] [Beam flags]

`--model` is a `scicurate train recall` (fastText) or `scicurate train recall-llm` output; the
thresholds recorded in its card are applied in a stage of their own, and `--threshold` moves
one without re-training (scores are written to scores/ either way). Writes recalled/<domain>/,
scores/, filtered/, dead_letter/, url_domains/, spot_check/, seed_candidates/*.jsonl and
summary.json (counts, purity per domain). The iterative loop: annotate the seed candidates
(`scicurate recall annotate --pool DIR/seed_candidates/part-00000-of-00001.jsonl`), add them to
the training labels, re-train, run again with `--round 2`.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from typing import Any

from scicurate.config import LLM_BACKENDS, ConfigError
from scicurate.recall import add_llm_arguments


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input", required=True, help="pool file pattern: JSONL(.gz) or Parquet rows with text "
                                                  "(and id/doc_id/page_id, url) — quote the glob")
    p.add_argument("--output", required=True, help="output directory (any Beam file system)")
    p.add_argument("--model", action="append", required=True,
                   help="a recall model directory (repeat for several; the first gives taxonomy paths)")
    p.add_argument("--combine", choices=("all", "any"), default="all",
                   help="several models: recall when all pass (default) or any passes")
    p.add_argument("--domains", help="comma-separated target domains to recall (default: all the models score)")
    p.add_argument("--threshold", action="append", default=[], metavar="DOMAIN=VALUE",
                   help="override a card threshold (repeatable); scores are not recomputed")
    p.add_argument("--allow-unmet-thresholds", action="store_true",
                   help="also recall domains whose card threshold missed its target precision")
    p.add_argument("--spot-check", type=int, default=8,
                   help="recalled texts per domain the LLM re-labels for the purity report (default 8; 0: off)")
    add_llm_arguments(p, "the spot-check")
    p.add_argument("--llm-backend", choices=LLM_BACKENDS, help="embedded (default), endpoint, vllm")
    p.add_argument("--candidate-share", type=float, default=0.1,
                   help="URL domains with more than this share recalled for a target give seed candidates (0.1)")
    p.add_argument("--candidate-min-pages", type=int, default=5, help="least pages of such a URL domain (default 5)")
    p.add_argument("--round", type=int, default=1, help="iteration number recorded in the rows (default 1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the spot-check sample (default 0)")
    p.add_argument("--batch-size", type=int, default=256, help="texts per model call (default 256)")
    p.add_argument("--max-text-bytes", type=int, help="larger texts are dead-lettered (default 16 MiB)")
    p.add_argument("--shards", type=int, default=1, help="Parquet shards per dataset (default 1)")


def _thresholds(values: list[str]) -> tuple[tuple[str, float], ...]:
    out = {}
    for value in values:
        domain, sep, number = value.partition("=")
        try:
            out[domain.strip()] = float(number)
        except ValueError:
            raise ConfigError(f"--threshold {value!r}: expected DOMAIN=NUMBER") from None
        if not sep or not domain.strip():
            raise ConfigError(f"--threshold {value!r}: expected DOMAIN=NUMBER")
    return tuple(sorted(out.items()))


def recall_config(args: argparse.Namespace):
    """Flags -> RecallRunConfig; reads every model's card (a missing model fails here)."""
    from scicurate.pipelines.recall_steps import model_info
    from scicurate.recall import _llm_config
    from scicurate.recall_records import DEFAULT_MAX_TEXT_BYTES, RecallRunConfig

    models = tuple(model_info(m) for m in args.model)
    llm = _llm_config(args)
    domains = tuple(d.strip() for d in (args.domains or "").split(",") if d.strip())
    return RecallRunConfig(
        models=models, domains=domains, combine=args.combine, thresholds=_thresholds(args.threshold),
        allow_unmet=args.allow_unmet_thresholds, max_text_bytes=args.max_text_bytes or DEFAULT_MAX_TEXT_BYTES,
        batch_size=args.batch_size, spot_check=args.spot_check, llm=llm, seed=args.seed,
        candidate_share=args.candidate_share, candidate_min_pages=args.candidate_min_pages, round=args.round,
        num_shards=args.shards)


def run(args: argparse.Namespace, beam_args: list[str]) -> int:
    import contextlib

    import apache_beam as beam

    from scicurate import __version__
    from scicurate.cli import _print_summary, _write_run_info, require_reachable_llm
    from scicurate.llm.client import check_endpoint
    from scicurate.llm.embedded import serving
    from scicurate.pipelines import recall as recall_pipeline
    from scicurate.runner import match_inputs, pipeline_options, runner_name

    config = recall_config(args)
    matches = match_inputs(args.input)
    if not matches:
        print(f"scicurate: no files match --input {args.input!r}", file=sys.stderr)
        return 2
    options = pipeline_options(beam_args)
    require_reachable_llm(bool(config.spot_check) and config.llm.backend == "embedded", options, "--spot-check 0")
    held = config.held_back()
    print(f"scicurate: {len(matches)} pool files; models {', '.join(m.name for m in config.models)} "
          f"(combine {config.combine}); recalling {', '.join(d for d in config.targets() if d not in held) or 'nothing'}"
          f"; runner {runner_name(options)}", file=sys.stderr)
    for domain, why in sorted(held.items()):
        print(f"scicurate: warning: {domain} is held back: {why} (train on more labels, pass "
              f"--threshold {domain}=VALUE or --allow-unmet-thresholds)", file=sys.stderr)
    if config.spot_check and config.llm.backend == "embedded":
        print(f"scicurate: note: the spot-check asks the embedded CPU model {config.llm.model or 'smollm2'} "
              f"({config.spot_check} texts per domain); its answers are not a real judgement: serve a strong "
              "model and pass --llm-endpoint URL --llm-model NAME", file=sys.stderr)
    from scicurate.resume import RunOutput

    started = time.perf_counter()
    with RunOutput(args.output, [m.path for m in matches]) as run_output, contextlib.ExitStack() as stack:
        if config.spot_check:
            served = stack.enter_context(serving(config.llm))
            if served.backend == "endpoint":
                check_endpoint(served)
            config = dataclasses.replace(config, llm=served)
        with beam.Pipeline(options=options) as pipeline:
            recall_pipeline.build(pipeline, args.input, args.output, config)
    info: dict[str, Any] = {
        "wall_seconds": round(time.perf_counter() - started, 3), "runner": runner_name(options),
        "inputs_files": len(matches), "input": args.input, "models": [m.model_dir for m in config.models],
        "spot_check_model": config.llm.model if config.spot_check else "", "scicurate_version": __version__,
        "resumed_units": run_output.resumed_units,
    }
    _write_run_info(args.output, info)
    return _print_summary(args.output, ("recalled", "filtered", "dead_letter rows"))
