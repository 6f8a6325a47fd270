"""Benchmark: documents/s of batch `dedup.minhash.signatures()` vs a per-document datasketch loop.

Same texts, one run, repeats interleaved (A B, B A, ...), medians. The baseline is the loop
`bench/run.py` times: lowercase, whitespace split, word n-gram shingles (`--ngram`, default
`MinHashConfig().ngram`), `MinHash(128, seed=1).update_batch(...)` per document. Ours also does
NFKC and punctuation stripping, in batches of `--batch` documents (as a Beam DoFn would see
them after BatchElements).

    python bench/minhash_batch.py [--docs 20000] [--words 200] [--corpus] [--repeat 3]
                                  [--hash sha1|wordmix|both] [--batch 2000] [--ngram N]

`--corpus` uses text/labeled_texts.dev.jsonl from the shared corpus instead of synthetic
documents. A phase split (normalise / shingle hashing / permute+reduce) of ours is printed
after the timings.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def synthetic_docs(n: int, words: int = 200, seed: int = 0) -> list[str]:
    """`n` documents of `words` words drawn from a Zipf-like 20k-word vocabulary, with
    capitals and punctuation so normalisation has work to do."""
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = ["".join(rng.choice(letters) for _ in range(rng.randint(2, 10))) for _ in range(20_000)]
    weights = [1.0 / (i + 1) for i in range(len(vocab))]
    docs = []
    for _ in range(n):
        toks = rng.choices(vocab, weights, k=words)
        for i in range(0, words, 17):
            toks[i] = toks[i].capitalize() + rng.choice([",", ".", ";", ""])
        docs.append(" ".join(toks))
    return docs


def corpus_texts(corpus: Path) -> list[str] | None:
    path = corpus / "text" / "labeled_texts.dev.jsonl"
    if not path.exists():
        return None
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line)["text"] for line in fh if line.strip()]


def run_baseline(texts: list[str], num_perm: int = 128, ngram: int = 5) -> int:
    from datasketch import MinHash

    for text in texts:
        tokens = text.lower().split()
        mh = MinHash(num_perm=num_perm, seed=1)
        mh.update_batch([" ".join(tokens[i:i + ngram]).encode("utf-8")
                         for i in range(max(1, len(tokens) - ngram + 1))])
    return len(texts)


def run_ours(texts: list[str], config=None, batch: int = 2000) -> int:
    from scicurate.dedup.config import MinHashConfig
    from scicurate.dedup.minhash import signatures

    config = config or MinHashConfig()
    rows = 0
    for i in range(0, len(texts), batch):
        rows += len(signatures(texts[i:i + batch], config))
    return rows


def one_group(texts: list[str]) -> list[str]:
    """The first texts that `signatures()` would process as one internal group."""
    from scicurate.dedup.minhash import _GROUP_CHARS

    chars, n = 0, 0
    while n < len(texts) and (n == 0 or chars + len(texts[n]) <= _GROUP_CHARS):
        chars += len(texts[n])
        n += 1
    return texts[:n]


def phase_split(texts: list[str], config) -> dict[str, float]:
    """Seconds per phase of `signatures()` on `texts` (one group: the phases as one call)."""
    import numpy as np

    from scicurate.dedup import minhash as mh

    t0 = time.perf_counter()
    norm = [(mh.normalise if config.hash == "sha1" else mh._clean)(t, config) for t in texts]
    t1 = time.perf_counter()
    hv, doc = mh._sha1_hashes(norm, config.ngram) if config.hash == "sha1" else mh._wordmix_hashes(norm, config.ngram)
    t2 = time.perf_counter()
    mh._min_hash_into(np.empty((len(norm), config.num_perm), np.uint32), hv, doc,
                      *mh._permutations(config.num_perm, config.seed, config.scheme), config)
    t3 = time.perf_counter()
    return {"normalise_s": t1 - t0, "hash_s": t2 - t1, "permute_reduce_s": t3 - t2, "shingles": int(len(hv))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=20_000)
    ap.add_argument("--words", type=int, default=200)
    ap.add_argument("--corpus", action="store_true", help="use text/labeled_texts.dev.jsonl")
    ap.add_argument("--corpus-dir", default=os.environ.get("SCICURATE_CORPUS", str(ROOT.parent / "shared" / "corpus")))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--batch", type=int, default=2000)
    ap.add_argument("--hash", choices=["sha1", "wordmix", "both"], default="both")
    ap.add_argument("--ngram", type=int, help="word n-gram size (default: MinHashConfig's)")
    args = ap.parse_args(argv)

    from scicurate.dedup.config import MinHashConfig

    ngram = args.ngram or MinHashConfig().ngram

    if args.corpus:
        texts = corpus_texts(Path(args.corpus_dir))
        if texts is None:
            print(f"no text/labeled_texts.dev.jsonl under {args.corpus_dir}", file=sys.stderr)
            return 2
        source = "corpus labeled_texts.dev.jsonl"
    else:
        texts = synthetic_docs(args.docs, args.words)
        source = f"synthetic {args.words}-word documents"
    words = sum(len(t.split()) for t in texts)
    print(f"bench/minhash_batch: {len(texts)} {source} ({words / len(texts):.0f} words/doc), "
          f"128 perm, {ngram}-gram, batch {args.batch}, {args.repeat} interleaved repeats, {os.cpu_count()} CPUs",
          flush=True)

    hashes = ["sha1", "wordmix"] if args.hash == "both" else [args.hash]
    sides = {"baseline": lambda: run_baseline(texts, 128, ngram)}
    for h in hashes:
        cfg = MinHashConfig(hash=h, ngram=ngram)
        sides[f"ours_{h}"] = lambda cfg=cfg: run_ours(texts, cfg, args.batch)
    times: dict[str, list[float]] = {k: [] for k in sides}
    for r in range(args.repeat):
        order = list(sides) if r % 2 == 0 else list(reversed(sides))
        for key in order:
            started = time.perf_counter()
            n = sides[key]()
            seconds = time.perf_counter() - started
            assert n == len(texts), (key, n)
            times[key].append(seconds)
            print(f"  repeat {r + 1} {key:13s} {seconds:8.2f} s  {n / seconds:10.0f} docs/s", flush=True)

    base = statistics.median(times["baseline"])
    result = {"docs": len(texts), "source": source, "ngram": ngram, "baseline_docs_per_s": round(len(texts) / base, 1)}
    for h in hashes:
        ours = statistics.median(times[f"ours_{h}"])
        result[f"ours_{h}_docs_per_s"] = round(len(texts) / ours, 1)
        result[f"speedup_{h}"] = round(base / ours, 2)
        split = phase_split(one_group(texts), MinHashConfig(hash=h, ngram=ngram))
        total = split["normalise_s"] + split["hash_s"] + split["permute_reduce_s"]
        result[f"phases_{h}_pct"] = {k[:-2]: round(100 * v / total, 1) for k, v in split.items() if k.endswith("_s")}
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
