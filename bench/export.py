"""Benchmark: `scicurate export` against a straightforward in-memory baseline, side by side, one run.

    python bench/export.py [--docs 20000] [--seed 0] [--out bench/results/export.json]

Data (made once by the parent, seeded): a pdf run, a web run and a recall run written with the
project's schemas. A document is 12-60 real sentences drawn at random from the abstracts and
claims of ../shared/corpus/text (synthetic sentences when the corpus is absent); 10% of the web pages are copies of
pdf documents (half exact with other spacing and case, half with 5% of the words changed), and
the recall run labels every pdf and web document with a domain drawn from skewed natural shares
(life science 40% ... materials science 3%), as a crawl has them.

Both sides do the same job with the same tokenizer (SmolLM2-135M's, shipped) and the same
mixture (the shipped default: six domains in even parts, at most 2 copies, budget the largest
every domain fills):
- ours: `scicurate.export.run_export` (two streamed passes, batch MinHash, spills per shard).
- baseline: what a data engineer writes with the usual libraries: read every dataset into memory
  with pyarrow, `Tokenizer.encode_batch`, sha256 of normalised text for exact duplicates,
  datasketch `MinHash` + `MinHashLSH` with the same bigram shingles, bands and rows for near
  duplicates, pandas `sample(frac, replace=...)` per domain for the mixture, `random.shuffle`,
  `pyarrow.parquet.write_table` per 50M-token shard.
Each side runs in its own subprocess, so its wall time and peak RSS are its own; the output gives
tokens per second for each (tokens of the pdf and web documents over the wall time; ours also
reads and counts the recall run's copy of every text, which the baseline only joins by id) and
the ratio. Quality is compared too: documents kept after
dedup on both sides, and each side's recall of the planted copies.
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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS_TEXT = ROOT.parent / "shared" / "corpus" / "text" / "labeled_texts.dev.jsonl"
NATURAL = {"life_science": 0.40, "physics": 0.22, "chemistry": 0.15, "earth_science": 0.12, "mathematics": 0.08,
           "materials_science": 0.03}


def log(message: str) -> None:
    print(f"[export {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def sentences(seed: int) -> list[str]:
    """Real sentences (the corpus texts split at full stops), or synthetic ones without it."""
    if CORPUS_TEXT.is_file():
        out = []
        for line in CORPUS_TEXT.read_text(encoding="utf-8").splitlines():
            out.extend(s.strip() + "." for s in json.loads(line)["text"].split(". ") if len(s.split()) >= 6)
        return out
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(20000)]
    return [" ".join(rng.choice(vocab) for _ in range(rng.randint(8, 30))) for _ in range(20000)]


def document(rng: random.Random, pool: list[str]) -> str:
    """12-60 sentences drawn from the whole pool: two documents share a sentence rarely, so the
    only near duplicates are the planted ones."""
    return " ".join(rng.choice(pool) for _ in range(rng.randint(12, 60)))


def edit(text: str, rng: random.Random, share: float) -> str:
    words = text.split()
    for i in rng.sample(range(len(words)), max(1, int(len(words) * share))):
        words[i] = words[i][::-1]
    return " ".join(words)


def generate(root: Path, docs: int, seed: int) -> dict:
    import pyarrow.parquet as pq

    from scicurate import schema

    rng = random.Random(seed)
    pool = sentences(seed)
    n_pdf = docs // 2
    pdf = [{"doc_id": f"pdf-{i}", "source": f"in/{i}.pdf",
            "text": document(rng, pool)} for i in range(n_pdf)]
    web, planted = [], 0
    for i in range(docs - n_pdf):
        if rng.random() < 0.10:
            original = pdf[rng.randrange(n_pdf)]["text"]
            text = ("  " + original.upper()) if rng.random() < 0.5 else edit(original, rng, 0.05)
            planted += 1
        else:
            text = document(rng, pool)
        web.append({"page_id": f"web-{i}", "url": f"https://site{i % 300}.example/p{i}", "text": text})
    names, weights = list(NATURAL), list(NATURAL.values())
    labels = [{"doc_id": d.get("doc_id") or d["page_id"], "text": d["text"], "domain": rng.choices(names, weights)[0],
               "score": round(rng.random(), 3)} for d in pdf + web]
    for row in labels:
        row["path"] = [row["domain"]]

    def write(path: Path, parquet_schema, rows) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # row groups of 1,000 rows, as the pipelines' WriteToParquet (64 MB buffers) gives about
        pq.write_table(schema.with_defaults(parquet_schema, rows), path, row_group_size=1000)

    write(root / "pdf" / "documents" / "part-00000-of-00001.parquet", schema.DOCUMENT_SCHEMA, pdf)
    write(root / "web" / "pages" / "part-00000-of-00001.parquet", schema.WEB_PAGE_SCHEMA, web)
    (root / "web" / "verdicts").mkdir(parents=True)
    for domain in names:
        write(root / "recall" / "recalled" / domain / "part-00000-of-00001.parquet", schema.RECALLED_SCHEMA,
              [r for r in labels if r["domain"] == domain])
    for run in ("pdf", "web", "recall"):
        (root / run / "summary.json").write_text("{}")
    return {"documents": docs, "pdf": n_pdf, "web": docs - n_pdf, "planted_copies": planted}


def run_ours(root: Path, out: Path) -> dict:
    from scicurate.export import ExportConfig, run_export
    from scicurate.export_run import DEFAULT_MIXTURE
    from scicurate.mixture import load_mixture
    from scicurate.tokens import load_tokenizer

    load_tokenizer()                         # the one-time GGUF conversion is not export work
    mixture, digest = load_mixture(DEFAULT_MIXTURE)
    started = time.perf_counter()
    manifest = run_export([str(root / r) for r in ("pdf", "web", "recall")], str(out),
                          ExportConfig(mixture=mixture, mixture_sha256=digest, interleaved=False), progress=log)
    wall = time.perf_counter() - started
    filtered = manifest["counts"]["filtered"]
    documents = sum(r["tokens"] for r in manifest["inputs"] if r["pipeline"] != "recall")
    return {"wall_s": wall, "tokens_read": documents, "rows": manifest["counts"]["rows"],
            "tokens_written": manifest["counts"]["tokens"],
            "web_copies_removed": _web_copies_removed(out),
            "kept_after_dedup": manifest["counts"]["documents_read"] - sum(
                filtered.get(k, 0) for k in ("exact_duplicate", "near_duplicate", "used_as_label", "second_label",
                                             "duplicate_in_run", "empty_text")),
            "shares": {d["domain"]: d["achieved_share"] for d in manifest["shares"]["domains"]}}


def _web_copies_removed(out: Path) -> int:
    import pyarrow.parquet as pq

    t = pq.read_table(out / "filtered", columns=["source", "reason"]).to_pylist()
    return sum(1 for r in t if r["source"] == "web" and r["reason"] in ("exact_duplicate", "near_duplicate"))


def run_baseline(root: Path, out: Path) -> dict:
    import hashlib
    import math

    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq
    from datasketch import MinHash, MinHashLSH

    from scicurate.dedup.config import MinHashConfig
    from scicurate.dedup.exact import normalise_text
    from scicurate.export_run import DEFAULT_MIXTURE
    from scicurate.mixture import load_mixture
    from scicurate.tokens import load_tokenizer

    counter = load_tokenizer()
    mixture, _ = load_mixture(DEFAULT_MIXTURE)
    config = MinHashConfig()
    started = time.perf_counter()
    pdf = pq.read_table(root / "pdf" / "documents").to_pandas()[["doc_id", "text"]].assign(source="pdf")
    web = pq.read_table(root / "web" / "pages").to_pandas()[["page_id", "text"]].rename(columns={"page_id": "doc_id"})
    web["source"] = "web"
    labels = pq.read_table(root / "recall" / "recalled").to_pandas()[["doc_id", "domain"]]
    docs = pd.concat([pdf, web], ignore_index=True).merge(labels.drop_duplicates("doc_id"), on="doc_id", how="left")
    docs["domain"] = docs["domain"].fillna("unlabelled")
    docs["tokens"] = [len(e.ids) for e in counter.tokenizer.encode_batch(docs["text"].tolist(), add_special_tokens=False)]
    tokens_read = int(docs["tokens"].sum())
    docs["hash"] = [hashlib.sha256(normalise_text(t).encode()).hexdigest() for t in docs["text"]]
    docs["rank"] = docs["source"].map({"pdf": 0, "web": 1})
    docs = docs.sort_values(["rank", "tokens"], ascending=[True, False]).drop_duplicates("hash")
    lsh = MinHashLSH(threshold=config.threshold, num_perm=config.num_perm, params=(config.bands, config.rows))
    sigs, keep = {}, []
    for idx, text in zip(docs.index, docs["text"]):
        words = text.lower().split()
        m = MinHash(num_perm=config.num_perm, seed=config.seed)
        m.update_batch([" ".join(words[i:i + 2]).encode() for i in range(max(1, len(words) - 1))])
        dup = any(m.jaccard(sigs[c]) >= config.threshold for c in lsh.query(m))
        if not dup:
            lsh.insert(idx, m)
            sigs[idx] = m
            keep.append(idx)
    docs = docs.loc[keep]
    kept_after_dedup = len(docs)
    shares = dict(mixture.domains)
    available = docs.groupby("domain")["tokens"].sum()
    budget = min(mixture.max_repeats * available[d] / s for d, s in shares.items() if d in available and s > 0)
    parts = []
    for domain, group in docs.groupby("domain"):
        frac = shares.get(domain, 0) * budget / available[domain]
        if frac > 0:
            parts.append(group.sample(frac=min(frac, mixture.max_repeats), replace=frac > 1,
                                      random_state=mixture.seed))
    rows = pd.concat(parts).to_dict("records")
    random.Random(mixture.seed).shuffle(rows)
    out.mkdir(parents=True, exist_ok=True)
    shard, size, n = [], 0, 0
    for row in rows + [None]:
        if row is None or (size + row["tokens"] > mixture.shard.target_tokens and shard):
            pq.write_table(pa.Table.from_pylist(shard), out / f"part-{n:05d}.parquet", compression="zstd")
            shard, size, n = [], 0, n + 1
        if row is not None:
            shard.append({k: row[k] for k in ("doc_id", "text", "tokens", "domain", "source")})
            size += row["tokens"]
    wall = time.perf_counter() - started
    web_removed = int((web.shape[0]) - (docs["source"] == "web").sum())
    return {"wall_s": wall, "tokens_read": tokens_read, "rows": len(rows),
            "tokens_written": int(sum(r["tokens"] for r in rows)), "kept_after_dedup": kept_after_dedup,
            "web_copies_removed": web_removed, "budget": math.floor(budget)}


def peak_rss_mib() -> float:
    """This process's peak RSS: VmHWM, which belongs to the process's own memory map. ru_maxrss
    is not used: after fork + exec it also holds the parent's peak (the parent holds the
    generated corpus when it starts the sides)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def child(args) -> None:
    fn = run_ours if args.side == "ours" else run_baseline
    result = fn(Path(args.data), Path(args.output))
    result["peak_rss_mib"] = peak_rss_mib()
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "export.json"))
    parser.add_argument("--ours-only", action="store_true",
                        help="skip the baseline (a scale check: it holds every text in memory, ~0.2 GB per 1,000 documents)")
    parser.add_argument("--side", choices=("ours", "baseline"), help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        return child(args)
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        root = Path(tmp)
        log(f"generating {args.docs:,} documents")
        data = generate(root / "data", args.docs, args.seed)
        results = {}
        for side in ("ours",) if args.ours_only else ("ours", "baseline"):
            log(f"running {side}")
            proc = subprocess.run([sys.executable, __file__, "--side", side, "--data", str(root / "data"),
                                   "--output", str(root / side)], capture_output=True, text=True, check=False)
            if proc.returncode:
                sys.stderr.write(proc.stderr)
                raise SystemExit(f"{side} failed")
            results[side] = json.loads(proc.stdout.strip().splitlines()[-1])
    for side in results.values():
        side["tokens_read_per_s"] = round(side["tokens_read"] / side["wall_s"], 1)
    ours, base = results["ours"], results.get("baseline")
    report = {"data": data, "cpus": os.cpu_count(), **results}
    if base:
        report.update(speedup=round(base["wall_s"] / ours["wall_s"], 2),
                      memory_ratio=round(base["peak_rss_mib"] / ours["peak_rss_mib"], 2))
    text = json.dumps(report, indent=2, sort_keys=True)
    print(text)
    Path(args.out).write_text(text + "\n")
    line = f"export: ours {ours['tokens_read_per_s']:,.0f} tokens/s, peak RSS {ours['peak_rss_mib']} MiB"
    if base:
        line += (f"; baseline {base['tokens_read_per_s']:,.0f} tokens/s, {base['peak_rss_mib']} MiB: "
                 f"{report['speedup']}x faster, {report['memory_ratio']}x less memory")
    print(line, file=sys.stderr)


if __name__ == "__main__":
    main()
