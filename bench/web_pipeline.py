"""`run web` without the LLM stage vs a plain trafilatura + rule filter + MinHash loop, one run.

    python bench/web_pipeline.py [--copies 4] [--repeat 2] [--workers 2] [--corpus DIR]

Inputs: the HTML pages of `corpus/html/trafilatura_eval` (real pages, ~150), each written
`--copies` times under distinct URLs (…?copy=k) into one JSONL file, so Beam's start-up is
amortised over several hundred pages. Both sides read that same file.

- baseline: for each row, `trafilatura.extract(html, url=url)` (defaults), the Gopher/C4/
  FineWeb rules of `classifiers.web_rules` (the same rule cost as ours), and a datasketch
  MinHash (128 permutations, word 5-grams) inserted into a MinHashLSH at 0.8 after a query:
  the loop a data engineer writes first. One process.
- ours: `scicurate run web --no-agent` on the FnApiRunner: sandboxed extraction in
  `--workers` child processes, exact dedup, domain line dedup, lid.176, rule scores,
  thresholds, MinHash-LSH near dedup, domain grouping and verdicts, Parquet output of five
  datasets and summary.json — everything but the LLM calls.

Prints pages/s of each side and the time ratio; `bench/run.py --only web_pipeline` records it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def eval_rows(corpus: Path) -> list[tuple[str, str]] | None:
    """(url, html) of the corpus's trafilatura eval pages; None without the corpus."""
    truth = corpus / "html" / "trafilatura_eval" / "subset_groundtruth.jsonl"
    if not truth.is_file():
        return None
    rows = []
    for line in truth.read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        path = corpus / item["local_file"]
        if path.is_file():
            url = item.get("url") or f"http://unknown.invalid/{path.name}"
            rows.append((url, path.read_bytes().decode("utf-8", errors="replace")))
    return rows


def write_inputs(corpus: Path, copies: int, out_dir: str) -> tuple[str, int] | None:
    """(JSONL path, rows) of the eval pages repeated `copies` times; None without the corpus."""
    rows = eval_rows(corpus)
    if rows is None:
        return None
    target = os.path.join(out_dir, "pages.jsonl")
    return target, write_jsonl(rows, copies, target)


def write_jsonl(rows: list[tuple[str, str]], copies: int, path: str) -> int:
    """{url, html} rows repeated `copies` times (copy k > 0 gets ?copy=k on its URL, so exact
    dedup by URL does not fold them); returns the rows written."""
    n = 0
    with open(path, "w", encoding="utf-8") as fh:
        for k in range(copies):
            for url, html in rows:
                sep = "&" if "?" in url else "?"
                fh.write(json.dumps({"url": f"{url}{sep}copy={k}" if k else url, "html": html}) + "\n")
                n += 1
    return n


def baseline(path: str) -> int:
    import trafilatura
    from datasketch import MinHash, MinHashLSH

    from scicurate.classifiers import web_rules

    lsh = MinHashLSH(threshold=0.8, num_perm=128)
    kept = n = 0
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            n += 1
            text = trafilatura.extract(row["html"], url=row["url"])
            if not text:
                continue
            stats = web_rules.text_stats(text)
            if web_rules.rule_failures(stats, web_rules.PRESETS["default"]):
                continue
            words = text.lower().split()
            m = MinHash(num_perm=128)
            m.update_batch([" ".join(words[i:i + 5]).encode("utf-8") for i in range(max(1, len(words) - 4))])
            if lsh.query(m):
                continue
            lsh.insert(str(n), m)
            kept += 1
    return n


def ours(path: str, workers: int) -> int:
    import apache_beam as beam

    from scicurate.parsers.html_extract import ExtractConfig
    from scicurate.pipelines import web
    from scicurate.runner import pipeline_options
    from scicurate.web_config import WebConfig

    out = tempfile.mkdtemp(prefix="bench-web-")
    config = WebConfig(agent=False, extract=ExtractConfig(workers=workers))
    with beam.Pipeline(options=pipeline_options([])) as pipeline:
        web.build(pipeline, path, out, config)
    summary = json.loads(Path(out, "summary.json").read_text())
    if not summary["accounted"]:
        raise RuntimeError(f"run web lost pages: {summary}")
    return summary["inputs"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--copies", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--corpus", default=str(ROOT.parent / "shared" / "corpus"))
    args = ap.parse_args(argv)
    work = tempfile.mkdtemp(prefix="bench-web-in-")
    made = write_inputs(Path(args.corpus), args.copies, work)
    if made is None:
        print(f"no trafilatura_eval pages under {args.corpus}", file=sys.stderr)
        return 1
    path, rows = made
    times: dict[str, list[float]] = {"baseline": [], "ours": []}
    for r in range(args.repeat):
        for side in (("baseline", "ours") if r % 2 == 0 else ("ours", "baseline")):
            started = time.perf_counter()
            n = baseline(path) if side == "baseline" else ours(path, args.workers)
            seconds = time.perf_counter() - started
            assert n == rows, (side, n, rows)
            times[side].append(seconds)
            print(f"repeat {r + 1} {side:8s} {seconds:7.1f} s  {rows / seconds:6.1f} pages/s", flush=True)
    best = {k: sorted(v)[len(v) // 2] for k, v in times.items()}
    print(json.dumps({"pages": rows, "baseline_pages_per_s": rows / best["baseline"],
                      "ours_pages_per_s": rows / best["ours"],
                      "throughput_ratio_ours_over_baseline": best["baseline"] / best["ours"],
                      "workers": args.workers, "cpus": os.cpu_count()}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
