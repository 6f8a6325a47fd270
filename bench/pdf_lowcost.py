"""Benchmark: pages/s of `scicurate run pdf` (low-cost path) vs MinerU called directly.

Same PDFs, same MinerU tier, one run: the baseline parses each PDF with
`mineru.parser.MinerUParser(tier=..., parse_mode="txt", image_analysis=False).parse(path)`
in a fresh interpreter per repeat; ours runs the whole Beam pipeline (split into windows, sandboxed parse, signals,
global quantiles, routing, merge, three Parquet datasets and summary.json) on the offline
FnApiRunner. Both sides include their own cold start. Repeats alternate the two sides and
keep each side's fastest run.

    python bench/pdf_lowcost.py [--input GLOB] [--tier flash] [--repeat 2]

Target (issue 2): overhead = ours / baseline - 1 <= 15%.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def default_inputs() -> str:
    corpus = Path(os.environ.get("SCICURATE_CORPUS", ROOT.parent / "shared" / "corpus"))
    if (corpus / "pdf" / "sci").is_dir():
        return str(corpus / "pdf" / "sci" / "*.pdf")
    return str(ROOT / "tests" / "fixtures" / "pdf" / "*.pdf")


def count_pages(paths: list[str]) -> dict[str, int]:
    import pypdfium2 as pdfium

    counts = {}
    for path in paths:
        try:
            doc = pdfium.PdfDocument(path)
        except Exception:  # noqa: BLE001 - unreadable inputs are not benchmarked
            continue
        counts[path] = len(doc)
        doc.close()
    return counts


def run_baseline(paths: list[str], tier: str) -> tuple[float, int]:
    """MinerU on every PDF in a fresh interpreter, so each repeat pays MinerU's import and
    first-call warm-up exactly as each run of ours pays its own start-up."""
    import subprocess

    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, __file__, "--baseline-child", "--tier", tier, *paths],
        check=True, capture_output=True, text=True, timeout=3600,
    ).stdout
    return time.perf_counter() - started, int(out.strip().splitlines()[-1])


def _baseline_in_process(paths: list[str], tier: str) -> tuple[float, int]:
    os.environ.setdefault("MINERU_MODEL_SOURCE", "local")
    from loguru import logger

    logger.remove()
    started = time.perf_counter()
    from mineru.parser import MinerUParser

    parser = MinerUParser(tier=tier, parse_mode="txt" if tier == "flash" else "auto", image_analysis=False)
    pages = 0
    for path in paths:
        pages += len(parser.parse(path).pages)
    return time.perf_counter() - started, pages


def run_ours(pattern: str, tier: str, out: str) -> tuple[float, dict]:
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from scicurate.config import PdfConfig
    from scicurate.pipelines import pdf as pdf_pipeline

    started = time.perf_counter()
    pipeline = beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"]))
    pdf_pipeline.build(pipeline, pattern, out, PdfConfig(tier=tier))
    pipeline.run().wait_until_finish()
    elapsed = time.perf_counter() - started
    with open(os.path.join(out, "summary.json")) as fh:
        return elapsed, json.load(fh)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--baseline-child":
        tier = sys.argv[3]
        _seconds, pages = _baseline_in_process(sys.argv[4:], tier)
        print(pages)
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--input", default=default_inputs(), help="PDF glob (default: corpus pdf/sci, else fixtures)")
    ap.add_argument("--tier", default="flash")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()

    counts = count_pages(sorted(glob.glob(args.input)))
    paths = sorted(counts)
    if not paths:
        print(f"no readable PDFs match {args.input}", file=sys.stderr)
        return 2
    total_pages = sum(counts.values())
    print(f"bench/pdf_lowcost: {len(paths)} PDFs, {total_pages} pages, MinerU tier {args.tier}, "
          f"{args.repeat} alternating repeats, {os.cpu_count()} CPUs", flush=True)

    # Each side gets the same inputs: a folder of links to the readable PDFs.
    work = tempfile.mkdtemp(prefix="bench-pdf-")
    inputs = os.path.join(work, "in")
    os.makedirs(inputs)
    for i, path in enumerate(paths):
        os.symlink(os.path.abspath(path), os.path.join(inputs, f"{i:04d}.pdf"))
    pattern = os.path.join(inputs, "*.pdf")

    base_times, our_times = [], []
    summary: dict = {}
    for r in range(args.repeat):
        t, pages = run_baseline(paths, args.tier)
        assert pages == total_pages, (pages, total_pages)
        base_times.append(t)
        print(f"  repeat {r + 1}: mineru direct  {t:7.2f} s  {pages / t:6.2f} pages/s", flush=True)
        t, summary = run_ours(pattern, args.tier, os.path.join(work, f"out{r}"))
        assert summary["pages"] == total_pages, (summary["pages"], total_pages)
        our_times.append(t)
        print(f"  repeat {r + 1}: scicurate run   {t:7.2f} s  {total_pages / t:6.2f} pages/s", flush=True)

    base, ours = min(base_times), min(our_times)
    ratio = ours / base
    print(json.dumps({
        "pdfs": len(paths), "pages": total_pages, "tier": args.tier,
        "baseline_pages_per_s": round(total_pages / base, 3),
        "scicurate_pages_per_s": round(total_pages / ours, 3),
        "time_ratio_scicurate_over_baseline": round(ratio, 3),
        "overhead_pct": round(100 * (ratio - 1), 1),
        "target_overhead_pct": 15,
        "pages_routed": summary.get("pages_routed"),
    }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
