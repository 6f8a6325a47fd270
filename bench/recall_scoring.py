"""fastText recall scoring: raw `predict` vs our model wrapper vs the whole `run recall` pipeline.

    python bench/recall_scoring.py [--copies 4] [--corpus DIR]

One recall model (`train_recall` on the labelled dev texts, seeded, the default RecallConfig)
scores the same texts three ways:

- baseline: read the pool JSONL, join each text's whitespace, `model.predict(texts, k=-1)` in
  one call: the loop a data engineer writes first, with nothing kept but the predictions;
- ours (handler): `RecallScoreHandler.run_inference` in batches of 256, as RunInference calls
  it: our text normalisation (lowercase, digits, punctuation split) and a score per label;
- ours (pipeline): `scicurate run recall --spot-check 0` on the FnApiRunner: read, score,
  thresholds, taxonomy paths, url-domain stats, seven Parquet/JSONL datasets and summary.json.

The texts are the dev corpus's labelled texts repeated `--copies` times under new ids, so
Beam's start-up (about 14 s for a one-text pool here) is spread over many texts (16 copies =
43k in `bench/run.py`). `bench/run.py --only recall_scoring recall_pipeline`
records both ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def prepare(rows: list[dict], copies: int = 4) -> dict:
    """Train the model and write the pool; returns paths and texts."""
    from scicurate.classifiers import recall_fasttext as rf

    work = tempfile.mkdtemp(prefix="bench-recall-")
    model_dir = os.path.join(work, "model")
    labelled = [{"id": r["id"], "text": r["text"], "domain": r["domain"]} for r in rows]
    rf.train_recall(labelled[::2], model_dir, validation=labelled[1::2])
    pool = os.path.join(work, "pool.jsonl")
    texts = []
    with open(pool, "w", encoding="utf-8") as fh:
        for k in range(copies):
            for r in rows:
                fh.write(json.dumps({"id": f"{r['id']}#{k}", "text": r["text"]}) + "\n")
                texts.append(r["text"])
    return {"work": work, "model_dir": model_dir, "pool": pool, "texts": texts}


def run_baseline(state: dict) -> int:
    import fasttext

    model = fasttext.load_model(os.path.join(state["model_dir"], "recall.bin"))
    with open(state["pool"], encoding="utf-8") as fh:
        texts = [" ".join(json.loads(line)["text"].split()) for line in fh]
    model.predict(texts, k=-1, threshold=0.0)
    return len(texts)


def run_handler(state: dict) -> int:
    from scicurate.pipelines.recall_steps import RecallScoreHandler

    handler = RecallScoreHandler(state["model_dir"])
    model = handler.load_model()
    texts = state["texts"]
    done = 0
    for at in range(0, len(texts), 256):
        done += len(list(handler.run_inference(texts[at:at + 256], model)))
    return done


def run_pipeline(state: dict) -> int:
    out = tempfile.mkdtemp(prefix="bench-recall-run-", dir=state["work"])
    proc = subprocess.run([sys.executable, "-m", "scicurate.cli", "run", "recall", "--input", state["pool"],
                           "--output", out, "--model", state["model_dir"], "--spot-check", "0"],
                          capture_output=True, text=True, cwd=ROOT)
    if proc.returncode:
        raise RuntimeError(f"run recall failed ({proc.returncode}): {proc.stderr[-2000:]}")
    summary = json.loads(proc.stdout)
    return summary["inputs"]


def dev_rows(corpus: str | Path) -> list[dict] | None:
    """The labelled dev texts, or None (said on stderr) without the corpus."""
    path = Path(corpus) / "text" / "labeled_texts.dev.jsonl"
    if not path.is_file():
        print(f"no {path}: nothing to measure", file=sys.stderr)
        return None
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--copies", type=int, default=4)
    parser.add_argument("--corpus", default=str(ROOT.parent / "shared" / "corpus"))
    args = parser.parse_args()
    rows = dev_rows(args.corpus)
    if rows is None:
        return 0
    state = prepare(rows, args.copies)
    for label, fn in (("raw predict", run_baseline), ("handler", run_handler), ("pipeline", run_pipeline)):
        started = time.perf_counter()
        n = fn(state)
        seconds = time.perf_counter() - started
        print(f"{label:12s} {n} texts in {seconds:.2f} s = {n / seconds:,.0f} texts/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
