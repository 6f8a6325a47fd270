"""The issue's acceptance check on the development corpus: export the runs over ../shared/corpus
(PDF + web + recall) and measure what the export promises.

    python bench/export_corpus.py [--work DIR] [--out bench/results/export_corpus.json]

Steps (each pipeline through the CLI, as a user runs it):
1. `run pdf` on corpus/pdf/*/*.pdf; `run web --no-agent --preset science` on the trafilatura
   eval pages; a fastText recall model from the labelled dev texts (`recall annotate
   --seed-labels` + `train recall`); `run recall` over the pdf run's documents, the web run's
   pages, and the labelled texts as a pool of their own.
2. `export` of the five runs with MIXTURE below (six domains in even parts, 200k-token budget,
   at most 2 copies), twice into two folders: every file but run_info.json must be identical.
3. `export` of the pdf run alone with `domains: natural`, for the interleaved image-text rows of
   every corpus paper.
Checks and figures: shard rows and tokens equal the manifest's; achieved vs target share per
domain (tolerance 0.02), which domains ran short; tokens/s; interleaved documents, images kept
and dropped. Written to `--out`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"
SCICURATE = [sys.executable, "-m", "scicurate.cli"]
MIXTURE = """seed: 0
budget_tokens: 200000
max_repeats: 2
tolerance: 0.02
domains: {mathematics: 0.1667, physics: 0.1667, chemistry: 0.1667, life_science: 0.1667,
          earth_science: 0.1666, materials_science: 0.1666}
shard: {target_tokens: 50000, row_group_rows: 256}
"""


def log(message: str) -> None:
    print(f"[export_corpus {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def cli(*args: str) -> None:
    log("scicurate " + " ".join(args))
    proc = subprocess.run([*SCICURATE, *args], cwd=ROOT, capture_output=True, text=True, check=False)
    if proc.returncode:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise SystemExit(f"scicurate {args[0]} failed ({proc.returncode})")


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != "run_info.json"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", default="/tmp/scicurate-export-corpus")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "export_corpus.json"))
    args = parser.parse_args()
    if not CORPUS.is_dir():
        raise SystemExit(f"{CORPUS} is absent: this benchmark needs the development corpus")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(ROOT / "bench"))
    from web_pipeline import eval_rows, write_jsonl

    if not (work / "pdf" / "summary.json").exists():
        cli("run", "pdf", "--input", str(CORPUS / "pdf" / "*" / "*.pdf"), "--output", str(work / "pdf"))
    if not (work / "web" / "summary.json").exists():
        write_jsonl(eval_rows(CORPUS), 1, str(work / "web_pool.jsonl"))
        cli("run", "web", "--input", str(work / "web_pool.jsonl"), "--output", str(work / "web"), "--no-agent",
            "--preset", "science")
    if not (work / "model" / "recall_card.json").exists():
        cli("recall", "annotate", "--seed-labels", str(CORPUS / "text" / "labeled_texts.dev.jsonl"),
            "--output", str(work / "silver.jsonl"))
        cli("train", "recall", "--labels", str(work / "silver.jsonl"), "--output", str(work / "model"))
    pools = {"recall_pdf": str(work / "pdf" / "documents" / "*.parquet"),
             "recall_web": str(work / "web" / "pages" / "*.parquet"),
             "recall_pool": str(CORPUS / "text" / "labeled_texts.dev.jsonl")}
    for name, pattern in pools.items():
        if not (work / name / "summary.json").exists():
            cli("run", "recall", "--input", pattern, "--output", str(work / name), "--model", str(work / "model"),
                "--spot-check", "0", "--allow-unmet-thresholds")
    mixture = work / "mixture.yaml"
    mixture.write_text(MIXTURE)
    inputs = [str(work / n) for n in ("pdf", "web", "recall_pdf", "recall_web", "recall_pool")]
    walls = []
    for name in ("export_a", "export_b"):
        started = time.perf_counter()
        cli("export", "--inputs", *inputs, "--mixture", str(mixture), "--output", str(work / name))
        walls.append(time.perf_counter() - started)
    a, b = work / "export_a", work / "export_b"
    identical = files(a) == files(b)
    manifest = json.loads((a / "manifest.json").read_text())
    table = pq.read_table(a / "shards", columns=["tokens"])
    adds_up = table.num_rows == manifest["counts"]["rows"] and sum(table["tokens"].to_pylist()) == manifest["counts"]["tokens"]
    info = json.loads((a / "run_info.json").read_text())
    cli("export", "--inputs", str(work / "pdf"), "--mixture", "scicurate/mixtures/natural.yaml",
        "--output", str(work / "export_pdf"))
    pdf_manifest = json.loads((work / "export_pdf" / "manifest.json").read_text())
    pdf_info = json.loads((work / "export_pdf" / "run_info.json").read_text())
    result = {
        "mixture": MIXTURE, "rerun_identical": identical, "manifest_adds_up": adds_up,
        "accounted": manifest["accounted"], "counts": manifest["counts"], "shares": manifest["shares"],
        "shards": len(manifest["shards"]), "wall_s_cli": [round(w, 2) for w in walls],
        "export_wall_s": info["wall_seconds"], "tokens_read_per_s": info["tokens_read_per_second"],
        "tokens_read": info["tokens_read"],
        "pdf_natural": {"counts": pdf_manifest["counts"], "interleaved": {k: v for k, v in pdf_manifest["interleaved"].items()
                                                                           if k != "files"},
                        "wall_s": pdf_info["wall_seconds"], "tokens_read_per_s": pdf_info["tokens_read_per_second"]},
    }
    text = json.dumps(result, indent=2, sort_keys=True)
    Path(args.out).write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
