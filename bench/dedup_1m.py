"""Benchmark: end-to-end near-duplicate dedup of N synthetic documents, ours vs datasketch, one run.

    python bench/dedup_1m.py [--docs 1000000] [--baseline-docs K] [--copy-share 0.1]
                             [--edit-min 0.05] [--edit-max 0.2] [--seed 0] [--out FILE.json]

What is compared, both with `MinHashConfig()` as it is at run time (n-gram size, threshold,
bands x rows):
- ours: the common words learned from the first `common_sample` documents
  (`MinHashConfig.common_words`, timed), `minhash.signatures()` in batches of 2000 texts,
  then `near.cluster_indices` (run as
  its three steps `candidate_index_pairs` -> `verify_index_pairs` -> `index_components`, so
  the phases can be timed; that is exactly its body).
- baseline: datasketch, per document `MinHash(num_perm, seed=1).update_batch(shingles)` on
  lowercased, whitespace-split word n-grams with our common-word list removed (learned
  before its clock starts, so both sides index the same shingles); `MinHashLSH(threshold, num_perm, params=(bands,
  rows))`, insert all, query each, keep a candidate when `MinHash.jaccard >= threshold`,
  union-find.

Data: the parent generates the documents once (seeded, see `generate`) into a temporary text
file, one document per line, plus the planted truth (each document's family = the original it
was copied from, itself for originals); each side then runs in its own subprocess
(`--side ours|baseline --input FILE`), so the peak RSS it reports (`ru_maxrss` from inside the
child) and its wall time per phase (read, signatures, banding/candidates, verify+components)
are its own. Both report pair precision/recall against the truth: a predicted pair is two
documents in one cluster, a true positive when both come from one family (counted from the
labels, no pair enumeration), and the recall of copy -> original links per edit-rate band.

The baseline is slow (~2-3k docs/s for signatures alone on 2 CPUs), so `--baseline-docs K` runs
it on the first K documents only. Then the output has the measured figures of both sides (ours
on N, the baseline on K), the per-document time ratio between them (labelled as such: LSH work
grows faster than linearly, so it flatters neither side exactly), and ours re-run on the same K
documents for a like-for-like ratio. Progress goes to stderr every ~100k documents; the final
JSON goes to stdout (and to `--out`).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path

import numpy as np

PROGRESS_EVERY = 100_000
GEN_CHUNK = 10_000
EDIT_BANDS = ((0.0, 0.10), (0.10, 0.15), (0.15, 1.0))


def log(message: str) -> None:
    print(f"[dedup_1m {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---- data --------------------------------------------------------------------------------------

def vocabulary(size: int, rng: random.Random) -> list[str]:
    """`size` distinct pseudo-words of 2-10 lowercase letters."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    words: dict[str, None] = {}
    while len(words) < size:
        words["".join(rng.choice(letters) for _ in range(rng.randint(2, 10)))] = None
    return list(words)


def mutate(tokens: list[int], rate: float, vocab_size: int, rng: random.Random) -> list[int]:
    """`round(rate * len)` token edits (at least one), each a substitution, insertion or
    deletion (equally likely) at a uniform position, with uniform new words."""
    out = list(tokens)
    for _ in range(max(1, round(rate * len(tokens)))):
        op = rng.randrange(3)
        if op == 0 and out:
            out[rng.randrange(len(out))] = rng.randrange(vocab_size)
        elif op == 1 or not out:
            out.insert(rng.randrange(len(out) + 1), rng.randrange(vocab_size))
        else:
            del out[rng.randrange(len(out))]
    return out


def generate(path: Path, docs: int, words: int, vocab_size: int, copy_share: float,
             edit_min: float, edit_max: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Write `docs` documents to `path`, one per line; return (family, edit_rate) per document.

    Seeded (numpy `default_rng(seed)` for token draws, `random.Random(seed)` for vocabulary and
    edits): a vocabulary of `vocab_size` pseudo-words with Zipf weights 1/rank; originals are
    `words` i.i.d. tokens. In chunks of 10k documents, each document after a chunk's first is,
    with probability `copy_share`, a copy of an earlier original of its chunk (uniform) with an
    edit rate drawn uniformly in [edit_min, edit_max] (`mutate`). Copies are never copied
    again, so a family is one original and its copies. Plain lowercase words with single
    spaces: the baseline's lowercase + split and our normalisation see the same shingles, so
    the comparison measures the dedup machinery, not normalisation."""
    rng, np_rng = random.Random(seed), np.random.default_rng(seed)
    vocab = np.array(vocabulary(vocab_size, rng), dtype=object)
    weights = 1.0 / np.arange(1, vocab_size + 1)
    cdf = np.cumsum(weights / weights.sum())
    family = np.arange(docs, dtype=np.int64)
    edit = np.zeros(docs, dtype=np.float32)
    with open(path, "w", encoding="utf-8") as fh:
        for lo in range(0, docs, GEN_CHUNK):
            hi = min(docs, lo + GEN_CHUNK)
            draws = np.minimum(np.searchsorted(cdf, np_rng.random((hi - lo, words))), vocab_size - 1)
            originals: list[int] = []
            lines = []
            for i in range(lo, hi):
                if originals and rng.random() < copy_share:
                    src = originals[rng.randrange(len(originals))]
                    rate = rng.uniform(edit_min, edit_max)
                    toks = mutate(draws[src - lo].tolist(), rate, vocab_size, rng)
                    family[i], edit[i] = src, rate
                else:
                    originals.append(i)
                    toks = draws[i - lo]
                lines.append(" ".join(vocab[toks]))
            fh.write("\n".join(lines) + "\n")
            if hi // PROGRESS_EVERY != lo // PROGRESS_EVERY or hi == docs:
                log(f"generated {hi} documents")
    return family, edit


# ---- scoring -----------------------------------------------------------------------------------

def pairs_within(groups: np.ndarray) -> int:
    """Number of unordered pairs sharing a group value."""
    _values, counts = np.unique(groups, return_counts=True)
    return int((counts * (counts - 1) // 2).sum())


def pair_scores(labels: np.ndarray, family: np.ndarray, edit: np.ndarray) -> dict:
    """Pair precision/recall of cluster `labels` (-1 = singleton) against planted families,
    counted per (cluster, family) cell; plus the share of copies found in their original's
    cluster, per edit-rate band."""
    clustered = labels >= 0
    predicted = pairs_within(labels[clustered])
    true = pairs_within(family)
    n = np.int64(len(labels))
    hits = pairs_within(labels[clustered] * n + family[clustered])
    copies = np.flatnonzero(family != np.arange(len(family)))
    found = (labels[copies] >= 0) & (labels[copies] == labels[family[copies]])
    by_edit = {}
    for lo, hi in EDIT_BANDS:
        band = (edit[copies] >= lo) & (edit[copies] < hi)
        if band.any():
            by_edit[f"{lo:.2f}-{min(hi, 1.0):.2f}"] = round(float(found[band].mean()), 4)
    return {"precision": round(hits / predicted, 4) if predicted else None,
            "recall": round(hits / true, 4) if true else None,
            "predicted_pairs": predicted, "true_pairs": true,
            "clusters": len(np.unique(labels[clustered])),
            "clustered_docs": int(clustered.sum()), "copy_recall_by_edit": by_edit}


# ---- sides (each in its own subprocess) ----------------------------------------------------------

def read_batches(path: str, docs: int, batch: int, phases: dict):
    """Yield lists of up to `batch` texts (the first `docs` lines), timing reads into phases."""
    with open(path, encoding="utf-8") as fh:
        done = 0
        while done < docs:
            started = time.perf_counter()
            texts = [line.rstrip("\n") for line in islice(fh, min(batch, docs - done))]
            phases["read_s"] += time.perf_counter() - started
            if not texts:
                return
            yield done, texts
            done += len(texts)
            if done // PROGRESS_EVERY != (done - len(texts)) // PROGRESS_EVERY:
                log(f"  signatures of {done} documents")


def learn_common_words(path: str, docs: int, config):
    """`config` with the common words learned as the pipeline learns them
    (`MinHashConfig.common_words`), from the first `config.common_sample` documents (the
    generated order is random, so they are a uniform sample)."""
    from scicurate.dedup.near import learned_config

    with open(path, encoding="utf-8") as fh:
        sample = [line.rstrip("\n") for line in islice(fh, min(docs, config.common_sample))]
    return learned_config(sample, config)


def run_ours(path: str, docs: int, batch: int, config) -> tuple[np.ndarray, dict, dict]:
    from scicurate.dedup.minhash import _dtype, signatures
    from scicurate.dedup.near import (
        candidate_index_pairs,
        index_components,
        verify_index_pairs,
    )

    phases = dict.fromkeys(["read_s", "common_words_s", "signatures_s", "candidates_s",
                            "verify_components_s"], 0.0)
    started = time.perf_counter()
    config = learn_common_words(path, docs, config)
    phases["common_words_s"] = time.perf_counter() - started
    log(f"  dropping {len(config.drop_words)} common words: {' '.join(sorted(config.drop_words))}")
    sigs = np.empty((docs, config.num_perm), dtype=_dtype(config.scheme))
    for lo, texts in read_batches(path, docs, batch, phases):
        started = time.perf_counter()
        sigs[lo:lo + len(texts)] = signatures(texts, config)
        phases["signatures_s"] += time.perf_counter() - started
    started = time.perf_counter()
    pairs = candidate_index_pairs(sigs, config)
    phases["candidates_s"] = time.perf_counter() - started
    log(f"  {len(pairs)} candidate pairs")
    started = time.perf_counter()
    edges = verify_index_pairs(sigs, pairs, config)
    labels = index_components(docs, edges)
    phases["verify_components_s"] = time.perf_counter() - started
    return labels, phases, {"candidate_pairs": len(pairs), "edges": len(edges)}


def run_baseline(path: str, docs: int, batch: int, config) -> tuple[np.ndarray, dict, dict]:
    from datasketch import MinHash, MinHashLSH

    n = config.ngram
    # the same shingles as ours: our common-word list, learned before the clock (not timed)
    drop = learn_common_words(path, docs, config).drop_words
    phases = dict.fromkeys(["read_s", "signatures_s", "candidates_s", "verify_components_s"], 0.0)
    sketches: list[MinHash] = []
    for _lo, texts in read_batches(path, docs, batch, phases):
        started = time.perf_counter()
        for text in texts:
            tokens = text.lower().split()
            tokens = [t for t in tokens if t not in drop] or tokens
            mh = MinHash(num_perm=config.num_perm, seed=1)
            mh.update_batch([" ".join(tokens[i:i + n]).encode("utf-8")
                             for i in range(max(1, len(tokens) - n + 1))])
            sketches.append(mh)
        phases["signatures_s"] += time.perf_counter() - started
    started = time.perf_counter()
    lsh = MinHashLSH(threshold=config.threshold, num_perm=config.num_perm, params=(config.bands, config.rows))
    for i, mh in enumerate(sketches):
        lsh.insert(i, mh)
    candidates: list[tuple[int, int]] = []
    for i, mh in enumerate(sketches):
        candidates.extend((i, j) for j in lsh.query(mh) if j > i)
        if (i + 1) % PROGRESS_EVERY == 0:
            log(f"  queried {i + 1} documents")
    phases["candidates_s"] = time.perf_counter() - started
    started = time.perf_counter()
    parent = list(range(len(sketches)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    linked = np.zeros(len(sketches), dtype=bool)
    edges = 0
    for i, j in candidates:
        if sketches[i].jaccard(sketches[j]) >= config.threshold:
            edges += 1
            linked[i] = linked[j] = True
            ri, rj = find(i), find(j)
            if ri != rj:
                parent[max(ri, rj)] = min(ri, rj)
    labels = np.array([find(i) for i in range(len(sketches))], dtype=np.int64)
    labels[~linked] = -1
    phases["verify_components_s"] = time.perf_counter() - started
    return labels, phases, {"candidate_pairs": len(candidates), "edges": edges}


def side_main(args) -> int:
    """Child process: run one side on the first `--docs` lines, print its JSON to stdout. Imports
    and the config (whose band/row choice integrates ~1.4k curves) are made before the clock
    starts: they are start-up, not dedup."""
    from scicurate.dedup.config import MinHashConfig

    if args.side == "ours":
        from scicurate.dedup import minhash, near  # noqa: F401
        run = run_ours
    else:
        import datasketch  # noqa: F401
        run = run_baseline
    config = MinHashConfig()
    log(f"{args.side}: {args.docs} documents")
    started = time.perf_counter()
    labels, phases, counts = run(args.input, args.docs, args.batch, config)
    seconds = time.perf_counter() - started
    truth = np.load(args.truth)
    family, edit = truth["family"][:args.docs], truth["edit"][:args.docs]
    result = {"side": args.side, "docs": len(labels), "seconds": round(seconds, 2),
              "docs_per_s": round(len(labels) / seconds, 1),
              "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
              "phases": {k: round(v, 2) for k, v in phases.items()}, **counts,
              **pair_scores(labels, family, edit)}
    print(json.dumps(result))
    return 0


# ---- parent ------------------------------------------------------------------------------------

def run_side(side: str, text_path: Path, truth_path: Path, docs: int, batch: int) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--side", side, "--input", str(text_path),
           "--truth", str(truth_path), "--docs", str(docs), "--batch", str(batch)]
    done = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=1_000_000)
    ap.add_argument("--baseline-docs", type=int, default=None, help="run the baseline on the first K docs")
    ap.add_argument("--words", type=int, default=200)
    ap.add_argument("--vocab", type=int, default=50_000)
    ap.add_argument("--copy-share", type=float, default=0.10)
    ap.add_argument("--edit-min", type=float, default=0.05)
    ap.add_argument("--edit-max", type=float, default=0.20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=2000)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--side", choices=["ours", "baseline"], help=argparse.SUPPRESS)
    ap.add_argument("--input", help=argparse.SUPPRESS)
    ap.add_argument("--truth", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.side:
        return side_main(args)

    from scicurate.dedup.config import MinHashConfig

    config = MinHashConfig()
    base_docs = min(args.docs, args.baseline_docs or args.docs)
    with tempfile.TemporaryDirectory(prefix="dedup_1m_") as tmp:
        text_path, truth_path = Path(tmp) / "texts.txt", Path(tmp) / "truth.npz"
        started = time.perf_counter()
        family, edit = generate(text_path, args.docs, args.words, args.vocab, args.copy_share,
                                args.edit_min, args.edit_max, args.seed)
        np.savez(truth_path, family=family, edit=edit)
        generate_s = time.perf_counter() - started
        ours = run_side("ours", text_path, truth_path, args.docs, args.batch)
        log(f"ours: {ours['seconds']} s, {ours['peak_rss_mib']} MiB")
        baseline = run_side("baseline", text_path, truth_path, base_docs, args.batch)
        log(f"baseline: {baseline['seconds']} s, {baseline['peak_rss_mib']} MiB")
        ours_same = ours if base_docs == args.docs else run_side("ours", text_path, truth_path, base_docs, args.batch)
    ratio = {"same_docs": base_docs,
             "time_baseline_over_ours_same_docs": round(baseline["seconds"] / ours_same["seconds"], 2),
             "peak_rss_baseline_over_ours_same_docs": round(baseline["peak_rss_mib"] / ours_same["peak_rss_mib"], 2)}
    if base_docs < args.docs:
        ratio["per_doc_time_baseline_on_k_over_ours_on_n"] = round(
            (baseline["seconds"] / base_docs) / (ours["seconds"] / args.docs), 2)
        ratio["note"] = (f"baseline measured on the first {base_docs} docs only, ours on all {args.docs}; "
                         f"the per-doc ratio compares those two runs; 'ours_at_baseline_docs' is ours "
                         f"on the same {base_docs} docs, which the *_same_docs ratios use")
    log(f"ours {ours['docs']} docs: {ours['seconds']} s, {ours['peak_rss_mib']} MiB peak | baseline "
        f"{baseline['docs']} docs: {baseline['seconds']} s, {baseline['peak_rss_mib']} MiB peak | "
        f"time ratio (baseline/ours, {base_docs} docs each) {ratio['time_baseline_over_ours_same_docs']}x")
    result = {"docs": args.docs, "baseline_docs": base_docs,
              "config": {"num_perm": config.num_perm, "ngram": config.ngram, "threshold": config.threshold,
                         "bands": config.bands, "rows": config.rows, "max_bucket": config.max_bucket,
                         "hash": config.hash},
              "data": {"words": args.words, "vocab": args.vocab, "copy_share": args.copy_share,
                       "edit_rate": [args.edit_min, args.edit_max], "seed": args.seed,
                       "copies": int((family != np.arange(len(family))).sum()),
                       "generate_s": round(generate_s, 2)},
              "cpus": os.cpu_count(), "ours": ours, "baseline": baseline, "ratio": ratio}
    if base_docs < args.docs:
        result["ours_at_baseline_docs"] = ours_same
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
