"""`scicurate` command line: `run pdf` (the Beam pipeline) and `parse` (one document)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from typing import Any, Sequence

from scicurate import __version__
from scicurate.config import PRESETS, TIERS, ConfigError, PdfConfig


def _pdf_config(args: argparse.Namespace) -> PdfConfig:
    config = PRESETS[args.preset]
    changes: dict[str, Any] = {}
    for flag, field in (
        ("tier", "tier"), ("route_budget", "route_budget"), ("window_pages", "window_pages"),
        ("page_timeout", "page_timeout_s"), ("max_pages", "max_pages"), ("max_bytes", "max_bytes"),
        ("shards", "num_shards"), ("min_text_chars", "min_text_chars"),
        ("high_cost_parser", "high_cost_parser"),
    ):
        value = getattr(args, flag, None)
        if value is not None:
            changes[field] = value
    if getattr(args, "no_ocr", False):
        changes["ocr_without_text_layer"] = False
    if getattr(args, "allow_model_download", False):
        changes["allow_model_download"] = True
    return config.replace(**changes)


def _add_pdf_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", choices=sorted(PRESETS), default="flash", help="named configuration (default: flash)")
    p.add_argument("--tier", choices=TIERS, help="MinerU tier; flash needs no models, basic needs the ONNX set")
    p.add_argument("--window-pages", type=int, help="pages per split window (default 8)")
    p.add_argument("--page-timeout", type=float, help="seconds allowed per page before it is dead-lettered")
    p.add_argument("--max-pages", type=int, help="documents with more pages are dead-lettered")
    p.add_argument("--max-bytes", type=int, help="files larger than this are dead-lettered unread")
    p.add_argument("--min-text-chars", type=int, help="fewer text-layer chars than this = no text layer")
    p.add_argument("--no-ocr", action="store_true", help="do not OCR pages without a text layer")
    p.add_argument("--allow-model-download", action="store_true",
                   help="let MinerU download its models (off: models load from local paths only)")
    p.add_argument("--high-cost-parser", help="high-cost page parser (none available yet)")


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


def _preflight(config: PdfConfig) -> None:
    """Start the parser once here, so a missing model set fails before any input is read."""
    from scicurate.parsers.sandbox import SandboxedParser

    sandbox = SandboxedParser(config)
    try:
        sandbox.start()
    finally:
        sandbox.close()


def _cmd_run_pdf(args: argparse.Namespace, beam_args: list[str]) -> int:
    import apache_beam as beam
    from apache_beam.io.filesystems import FileSystems

    from scicurate.pipelines import pdf as pdf_pipeline
    from scicurate.runner import pipeline_options, runner_name

    config = _pdf_config(args)
    matches = FileSystems.match([args.input])[0].metadata_list
    if not matches:
        print(f"scicurate: no files match --input {args.input!r}", file=sys.stderr)
        return 2
    options = pipeline_options(beam_args)
    _preflight(config)
    print(f"scicurate: {len(matches)} input files; low-cost parser MinerU tier '{config.tier}'"
          f" ({'no models needed' if config.tier == 'flash' else 'local models required'});"
          f" route budget {100 * config.route_budget:g}% of pages; runner {runner_name(options)}",
          file=sys.stderr)
    started = time.perf_counter()
    with beam.Pipeline(options=options) as pipeline:
        pdf_pipeline.build(pipeline, args.input, args.output, config)
    _write_run_info(args.output, {
        "wall_seconds": round(time.perf_counter() - started, 3), "runner": runner_name(options),
        "tier": config.tier, "inputs": len(matches), "input": args.input,
        "scicurate_version": __version__,
    })
    summary_path = FileSystems.join(args.output.rstrip("/"), "summary.json")
    try:
        with FileSystems.open(summary_path) as fh:
            summary = json.loads(fh.read().decode("utf-8"))
    except Exception as exc:  # noqa: BLE001 - remote runners may finish after we return
        print(f"scicurate: pipeline finished; summary not readable yet at {summary_path}: {exc}", file=sys.stderr)
        return 0
    summary.pop("config", None)
    print(json.dumps(summary, indent=2, sort_keys=True))
    if not summary.get("accounted", False):
        print("scicurate: WARNING inputs != documents + dead_letter", file=sys.stderr)
        return 3
    return 0


def _cmd_parse(args: argparse.Namespace) -> int:
    from scicurate.parse_one import ParseFailed, parse_document

    config = _pdf_config(args)
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
        return "apitools not found" not in record.getMessage()


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
    pdf.add_argument("--input", required=True, help="file pattern: local, gs://, s3:// (quote the glob)")
    pdf.add_argument("--output", required=True, help="output directory (any Beam file system)")
    pdf.add_argument("--route-budget", type=float, help="fraction of pages for the high-cost parser (0.05)")
    pdf.add_argument("--shards", type=int, help="Parquet shards per dataset (default 1)")
    _add_pdf_flags(pdf)

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
        if rest:
            parser.error(f"unrecognised arguments: {' '.join(rest)}")
        if args.command == "eval":
            return _cmd_eval(args, evals[args.eval_name])
        if args.command == "report":
            return _cmd_report(args)
        return _cmd_parse(args)
    except ConfigError as exc:
        print(f"scicurate: configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
