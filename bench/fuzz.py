"""Fuzz `scicurate run pdf` and `scicurate run web` with seeded mutations of the fixtures.

    python bench/fuzz.py [--pdf-cases 1000] [--html-cases 1000] [--container-cases 100] [--seed 0]
                         [--out DIR] [--pdf-batch 250] [--web-batch 500] [--no-hooks] [--result PATH]

Writes the cases (`scicurate.fuzz`), runs both pipelines on them as subprocesses in batches,
and checks that every input ends as exactly one output, filtered or dead-letter row and that no
run crashes (non-zero exit, a Python traceback on stderr, or a hang past --timeout). Prints a
summary and writes the report (counts, outcome per reason code, outcomes per mutation kind,
every case's outcome and mutations, wall time) to --result (default bench/results/fuzz.json).
A failing case is reproduced from (seed, kind, index): `scicurate.fuzz.pdf_case(seed, index,
load_seeds())`. Exit status 1 when there was a crash or an unaccounted input.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scicurate.fuzz import FuzzConfig, run_fuzz, summary_line  # noqa: E402


def dumps(report: dict) -> str:
    """The report as indented JSON, but one line per case in its `cases` table."""
    cases = report.get("cases")
    head = json.dumps({k: v for k, v in report.items() if k != "cases"}, indent=1)
    if not cases:
        return head
    parts = []
    for kind, table in cases.items():
        rows = ",\n".join(f"   {json.dumps(k)}: {json.dumps(v, separators=(',', ':'))}" for k, v in table.items())
        parts.append(f"  {json.dumps(kind)}: {{\n{rows}\n  }}")
    return head[:-2] + ',\n "cases": {\n' + ",\n".join(parts) + "\n }\n}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pdf-cases", type=int, default=1000)
    ap.add_argument("--html-cases", type=int, default=1000)
    ap.add_argument("--container-cases", type=int, help="mutated JSONL/WARC/Parquet files (default html-cases/10)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", help="work directory for cases and outputs (default: a temporary one, removed)")
    ap.add_argument("--pdf-batch", type=int, default=250, help="PDFs per `run pdf`")
    ap.add_argument("--web-batch", type=int, default=500, help="HTML cases per `run web`")
    ap.add_argument("--max-pages", type=int, default=300, help="--max-pages of run pdf (many_pages goes past it)")
    ap.add_argument("--timeout", type=float, default=7200.0, help="seconds per pipeline run before it counts as a hang")
    ap.add_argument("--no-hooks", action="store_true",
                    help="leave SCICURATE_EXTRACT_TEST_HOOKS unset: <!--scicurate: markers are plain comments")
    ap.add_argument("--result", default=str(ROOT / "bench" / "results" / "fuzz.json"))
    ap.add_argument("--no-details", action="store_true", help="leave the per-case table out of the report")
    args = ap.parse_args(argv)

    config = FuzzConfig(
        pdf_cases=args.pdf_cases, html_cases=args.html_cases,
        container_cases=args.container_cases if args.container_cases is not None else max(1, args.html_cases // 10),
        seed=args.seed, pdf_batch=args.pdf_batch, web_batch=args.web_batch, max_pages=args.max_pages,
        hooks=not args.no_hooks, timeout_s=args.timeout, details=not args.no_details,
        log=lambda m: print(f"[{time.strftime('%H:%M:%S')}] {m}", file=sys.stderr, flush=True),
    )
    if args.out:
        report = run_fuzz(args.out, config)
    else:
        with tempfile.TemporaryDirectory(prefix="scicurate-fuzz-") as tmp:
            report = run_fuzz(tmp, config)
    report["machine"] = {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()}
    Path(args.result).parent.mkdir(parents=True, exist_ok=True)
    Path(args.result).write_text(dumps(report) + "\n")
    print(summary_line(report))
    for key in ("pdf_outcomes", "html_outcomes", "container_outcomes"):
        print(f"{key}: {json.dumps(report[key])}")
    for problem in report["problems"][:50]:
        print(f"PROBLEM {problem}")
    bad = report["crashes"] or any(report["unaccounted"].values()) or report["canary_hits"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
