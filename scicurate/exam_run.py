"""`scicurate run exam`: the exam-item integrity filter over a pool of exam-style problems.

    scicurate run exam --input 'POOL*.jsonl' --output DIR [--require-explanation]
        [--llm-endpoint URL --llm-model NAME | --no-llm-check] [--llm-concurrency N]
        [--llm-timeout S] [--llm-backend embedded|endpoint|vllm] [--shards 1] [Beam flags]

The pool is JSONL(.gz) or Parquet rows, each an item either structured (question/stem,
options, answer, explanation/solution/analysis, type, images; or 题干/选项/答案/解析/题型) or a
free text in `text`. Writes kept/, filtered/ (with reasons), dead_letter/ and summary.json.
Items with two or more blanks that the rules kept go to the LLM completeness check: the
embedded CPU model by default (a smoke test, not a judgement), a served model with
--llm-endpoint, none with --no-llm-check. Until `run exam` is wired into scicurate/cli.py,
`python -m scicurate.exam_run --input … --output …` runs the same command.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from typing import Any, Sequence

from scicurate.config import LLM_BACKENDS, ConfigError
from scicurate.recall import add_llm_arguments


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input", required=True, help="pool file pattern: JSONL(.gz) or Parquet exam items — quote the glob")
    p.add_argument("--output", required=True, help="output directory (any Beam file system)")
    p.add_argument("--preset", choices=("default", "strict"), default="default",
                   help="rule thresholds (strict: explanation required)")
    p.add_argument("--require-explanation", action="store_true",
                   help="filter items without an explanation (default: keep them, noted missing_explanation)")
    p.add_argument("--no-llm-check", action="store_true",
                   help="no LLM completeness check of multi-part fill-in-the-blank items (they are kept, noted)")
    add_llm_arguments(p, "the completeness check of multi-part fill-in-the-blank items")
    p.add_argument("--llm-backend", choices=LLM_BACKENDS, help="embedded (default), endpoint, vllm")
    p.add_argument("--max-row-bytes", type=int, help="larger rows are dead-lettered (default 16 MiB)")
    p.add_argument("--shards", type=int, default=1, help="Parquet shards per dataset (default 1)")


def exam_config(args: argparse.Namespace):
    """Flags -> ExamRunConfig (a contradiction or a bad value is a ConfigError)."""
    from scicurate.classifiers import exam_items as ex
    from scicurate.pipelines.exam_steps import DEFAULT_MAX_ROW_BYTES, ExamRunConfig
    from scicurate.recall import _llm_config

    if args.no_llm_check and (args.llm_endpoint or args.llm_model or args.llm_backend):
        raise ConfigError("--no-llm-check turns the LLM check off; drop --llm-endpoint/--llm-model/--llm-backend "
                          "or the --no-llm-check flag")
    check = ex.PRESETS[args.preset]
    if args.require_explanation:
        check = dataclasses.replace(check, require_explanation=True)
    llm = _llm_config(args)
    llm = llm.replace(max_tokens=ex.CompletenessConfig().max_tokens)
    return ExamRunConfig(check=check, llm_check=not args.no_llm_check, llm=llm,
                         max_row_bytes=args.max_row_bytes or DEFAULT_MAX_ROW_BYTES, num_shards=args.shards)


def run(args: argparse.Namespace, beam_args: list[str]) -> int:
    import contextlib

    import apache_beam as beam

    from scicurate import __version__, prompts
    from scicurate.cli import _print_summary, _write_run_info, require_reachable_llm
    from scicurate.llm.client import check_endpoint
    from scicurate.llm.embedded import serving
    from scicurate.pipelines import exam as exam_pipeline
    from scicurate.runner import match_inputs, pipeline_options, runner_name

    config = exam_config(args)
    matches = match_inputs(args.input)
    if not matches:
        print(f"scicurate: no files match --input {args.input!r}", file=sys.stderr)
        return 2
    options = pipeline_options(beam_args)
    if config.llm_check:
        try:
            prompts.load(config.completeness.prompt)
        except prompts.PromptError as exc:
            raise ConfigError(str(exc)) from None
    require_reachable_llm(config.llm_check and config.llm.backend == "embedded", options, "--no-llm-check")
    print(f"scicurate: {len(matches)} pool files; explanation {'required' if config.check.require_explanation else 'optional'}"
          f"; LLM check {'off' if not config.llm_check else config.llm.model or config.llm.backend}"
          f"; runner {runner_name(options)}", file=sys.stderr)
    if config.llm_check and config.llm.backend == "embedded":
        print(f"scicurate: note: the completeness check asks the embedded CPU model {config.llm.model or 'smollm2'}; "
              "its answers are not a real judgement: serve a strong model and pass --llm-endpoint URL "
              "--llm-model NAME (or --no-llm-check)", file=sys.stderr)
    from scicurate.resume import RunOutput

    started = time.perf_counter()
    with RunOutput(args.output, [m.path for m in matches]) as run_output, contextlib.ExitStack() as stack:
        if config.llm_check:
            served = stack.enter_context(serving(config.llm))
            if served.backend == "endpoint":
                check_endpoint(served)
            config = config.replace(llm=served)
        with beam.Pipeline(options=options) as pipeline:
            exam_pipeline.build(pipeline, args.input, args.output, config)
    info: dict[str, Any] = {
        "wall_seconds": round(time.perf_counter() - started, 3), "runner": runner_name(options),
        "inputs_files": len(matches), "input": args.input,
        "llm_model": config.llm.model if config.llm_check else "", "scicurate_version": __version__,
        "resumed_units": run_output.resumed_units,
    }
    _write_run_info(args.output, info)
    return _print_summary(args.output, ("kept", "filtered", "dead_letter rows"))


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m scicurate.exam_run …`: the same command outside scicurate/cli.py."""
    parser = argparse.ArgumentParser(prog="scicurate run exam", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    args, rest = parser.parse_known_args(argv)
    typos = [a for a in rest if a.startswith("--") and "-" in a.split("=", 1)[0][2:]]
    if typos:
        parser.error(f"unrecognised arguments: {' '.join(typos)}")
    try:
        return run(args, rest)
    except ConfigError as exc:
        print(f"scicurate: configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
