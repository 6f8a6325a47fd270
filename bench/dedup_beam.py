"""Measure `dedup.transforms.NearDuplicateClusters` on the Beam FnApiRunner: time, peak
memory, the pipeline's own counters and the bytes each shuffle carries, for the written
Dataflow estimate (`bench/results/dedup_dataflow_estimate.md`).

    python bench/dedup_beam.py [--docs 20000] [--dup-share 0.1] [--strict] [--common-words K]
                               [--no-count] [--out FILE.json]

Documents: `minhash_batch.synthetic_docs` (~200 words, Zipf over a 20k-word vocabulary), of
which a seeded `--dup-share` are replaced by mutated copies (5-20% mixed token edits, via
`scicurate.evals.dedup.mutate`) of an earlier document. Ids are 16 hex characters, as content
hashes are in the pipelines.

Shuffle bytes are counted, not guessed: every element entering each GroupByKey-like step is
encoded with the coder Beam would use for it (a `beam.Map` that sums `len(coder.encode(x))`
into a counter just before the step), so the figures are the serialized record bytes a
runner's shuffle moves, before its own framing and compression. The FnApiRunner runs the
pipeline in this process (shuffle included), so time and memory here are an upper bound for
one Dataflow worker doing the same share of the work.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))


def planted_docs(n: int, dup_share: float, seed: int = 0) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """(id, text) pairs and {copy id: original id} for the planted near-duplicates."""
    from minhash_batch import synthetic_docs

    from scicurate.evals.dedup import mutate

    texts = synthetic_docs(n, 200, seed)
    rng = random.Random(seed)
    truth: dict[str, str] = {}
    ids = [hashlib.sha1(f"{seed}/{i}".encode()).hexdigest()[:16] for i in range(n)]
    for i in range(1, n):
        if rng.random() < dup_share:
            j = rng.randrange(0, i)
            words = texts[j].split()
            texts[i] = " ".join(mutate(words, rng.uniform(0.05, 0.20), random.Random(f"{seed}/{i}"), "mix", words))
            truth[ids[i]] = truth.get(ids[j], ids[j])
    return list(zip(ids, texts)), truth


class _Bytes:
    """A Map that counts the encoded size of every element under `dedup_bench/<name>_bytes`."""

    def __init__(self, name: str) -> None:
        from apache_beam.coders import registry
        from apache_beam.metrics import Metrics

        self.coder = registry.get_coder(object)
        self.bytes = Metrics.counter("dedup_bench", f"{name}_bytes")
        self.elements = Metrics.counter("dedup_bench", f"{name}_elements")

    def __call__(self, element):
        self.bytes.inc(len(self.coder.encode(element)))
        self.elements.inc()
        return element


def run(items: list[tuple[str, str]], config=None, count_bytes: bool = True) -> dict:
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner

    from scicurate.dedup import transforms
    from scicurate.dedup.config import MinHashConfig

    config = config or MinHashConfig()
    # Count what enters each shuffle by wrapping GroupByKey/CoGroupByKey inputs: patch the
    # transforms module's beam reference so the real NearDuplicateClusters is what runs.
    original_gbk, original_cogbk = beam.GroupByKey, beam.CoGroupByKey

    class CountedGBK(beam.PTransform):
        def __init__(self, *a, **k):
            super().__init__()

        def expand(self, pcoll):
            name = self.label.split("/")[-1]
            return pcoll | f"Count{name}" >> beam.Map(_Bytes(name)) | original_gbk()

    class CountedCoGBK(beam.PTransform):
        def expand(self, inputs):
            name = self.label.split("/")[-1]
            counted = {tag: pc | f"Count{name}_{tag}" >> beam.Map(_Bytes(f"{name}_{tag}"))
                       for tag, pc in inputs.items()}
            return counted | original_cogbk()

    class CountedDistinct(beam.PTransform):
        # Distinct and CombinePerKey are combiner-lifted: a runner shuffles per-bundle partial
        # results, so the bytes counted here (their inputs) are an upper bound.
        def expand(self, pcoll):
            name = self.label.split("/")[-1]
            return pcoll | f"Count{name}" >> beam.Map(_Bytes(f"{name}_precombine")) | original_distinct()

    class CountedCombinePerKey(beam.PTransform):
        def __init__(self, fn, *a, **k):
            super().__init__()
            self.fn, self.a, self.k = fn, a, k

        def expand(self, pcoll):
            name = self.label.split("/")[-1]
            return (pcoll | f"Count{name}" >> beam.Map(_Bytes(f"{name}_precombine"))
                    | original_combine(self.fn, *self.a, **self.k))

    original_distinct, original_combine = beam.Distinct, beam.CombinePerKey
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        if count_bytes:
            beam.GroupByKey, beam.CoGroupByKey = CountedGBK, CountedCoGBK
            beam.Distinct, beam.CombinePerKey = CountedDistinct, CountedCombinePerKey
        try:
            p = beam.Pipeline(runner=FnApiRunner(), options=PipelineOptions(["--direct_num_workers=1"]))
            # items come from a file, as in a real run: beam.Create would pickle and bz2-compress
            # the whole list into the pipeline graph (measured: a third of the CPU at 20k docs)
            source = Path(tmp) / "items.jsonl"
            source.write_text("".join(json.dumps(item) + "\n" for item in items))
            labels = (p | beam.io.ReadFromText(str(source)) | "Parse" >> beam.Map(lambda line: tuple(json.loads(line)))
                      | transforms.NearDuplicateClusters(config))
            labels | beam.Map(json.dumps) | beam.io.WriteToText(str(Path(tmp) / "labels"))
            result = p.run()
            result.wait_until_finish()
        finally:
            beam.GroupByKey, beam.CoGroupByKey = original_gbk, original_cogbk
            beam.Distinct, beam.CombinePerKey = original_distinct, original_combine
        seconds = time.perf_counter() - started
        labels_out = {}
        for path in sorted(Path(tmp).glob("labels*")):
            for line in path.read_text().splitlines():
                node, label = json.loads(line)
                labels_out[node] = label
    counters: dict[str, int] = {}
    for c in result.metrics().query()["counters"]:       # one result per step: sum same names
        key = f"{c.key.metric.namespace}/{c.key.metric.name}"
        counters[key] = counters.get(key, 0) + c.committed
    return {"seconds": seconds, "labels": labels_out, "counters": counters}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=20_000)
    ap.add_argument("--dup-share", type=float, default=0.1)
    ap.add_argument("--strict", action="store_true", help="dedup.config.STRICT instead of MinHashConfig()")
    ap.add_argument("--common-words", type=int, help="override MinHashConfig.common_words (0 = keep all words)")
    ap.add_argument("--no-count", action="store_true",
                    help="time the pipeline alone (the byte-counting Maps encode every shuffled element)")
    ap.add_argument("--out")
    args = ap.parse_args(argv)

    from scicurate.dedup.config import STRICT, MinHashConfig

    config = STRICT if args.strict else MinHashConfig()
    if args.common_words is not None:
        config = config.replace(common_words=args.common_words, bands=config.bands, rows=config.rows)
    items, truth = planted_docs(args.docs, args.dup_share)
    print(f"bench/dedup_beam: {len(items)} docs, {len(truth)} planted copies, "
          f"{config.ngram}-gram {config.bands}x{config.rows} threshold {config.threshold}", file=sys.stderr)
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    out = run(items, config, count_bytes=not args.no_count)
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    cpu_s = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    labels = out.pop("labels")
    found = sum(1 for c, o in truth.items() if c in labels and labels.get(o) == labels[c])
    families: dict[str, set[str]] = {}
    for node, label in labels.items():
        families.setdefault(label, set()).add(truth.get(node, node))
    false_merges = sum(len(f) - 1 for f in families.values())
    n = len(items)
    shuffle = {k.split("/", 1)[1][:-6]: v for k, v in out["counters"].items()
               if k.startswith("dedup_bench/") and k.endswith("_bytes")}
    report = {
        "docs": n, "planted_copies": len(truth), "copies_found": found, "false_merges": false_merges,
        "clustered_ids": len(labels), "seconds": round(out["seconds"], 2),
        "docs_per_s": round(n / out["seconds"], 1),
        "cpu_ms_per_doc": round(1000 * cpu_s / n, 3),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "shuffle_bytes_per_doc": round(sum(shuffle.values()) / n, 1),
        "shuffle_bytes_per_doc_by_step": {k: round(v / n, 1) for k, v in sorted(shuffle.items())},
        "config": {"ngram": config.ngram, "threshold": config.threshold, "bands": config.bands,
                   "rows": config.rows, "hash": config.hash, "common_words": config.common_words},
        "counters": out["counters"],
    }
    text = json.dumps(report, indent=2, sort_keys=True)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
