"""How far the triage agent's `science_domain` tag agrees with human labels, per model.

    python bench/triage_agreement.py [--per-label 10] [--models smollm2 gemma3] [--endpoint URL --model NAME]

Texts: `corpus/text/labeled_texts.dev.jsonl` (arXiv abstracts mapped to the six sciences,
PubMed / patents / materials / climate texts, AG News negatives), `--per-label` of each label
chosen by hash of the id (deterministic). Each text goes through the real `web_triage` prompt
and the LLM layer exactly as `run web` sends a sampled page, against the embedded models (or a
served one with --endpoint). Prints per model: valid answers, science_domain accuracy (a
negative counts as right when tagged not_science), accuracy of science vs not-science, and the
quality and informative distributions. The labels say nothing about quality, so no accuracy is
claimed for it. Writes bench/results/triage_agreement.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LABELS = {"mathematics": "mathematics", "physics": "physics", "chemistry": "chemistry",
          "life_science": "life_science", "earth_science": "earth_science",
          "materials_science": "materials_science", "non_science": "not_science"}


def pick(corpus: Path, per_label: int) -> list[dict]:
    rows = [json.loads(line) for line in (corpus / "text" / "labeled_texts.dev.jsonl").read_text().splitlines()]
    by_label = defaultdict(list)
    for r in rows:
        label = LABELS.get(r["domain"])
        if label and len(r["text"].split()) >= 40:
            by_label[label].append(r)
    chosen = []
    for label, items in sorted(by_label.items()):
        items.sort(key=lambda r: hashlib.blake2b(str(r["id"]).encode(), digest_size=8).digest())
        chosen += [dict(r, truth=label) for r in items[:per_label]]
    return chosen


def ask(config, rows: list[dict]) -> tuple[list, float]:
    from scicurate.classifiers import triage
    from scicurate.llm.client import LLMClient

    tconf = triage.TriageConfig()
    requests = [triage.triage_request(f"t{i}", "", "", "", r["text"], tconf) for i, r in enumerate(rows)]
    started = time.perf_counter()
    with LLMClient(config) as client:
        results = client.chat_many(requests)
    seconds = time.perf_counter() - started
    return [triage.tags_from_result(res, url="", domain="") for res in results], seconds


def score(rows: list[dict], tags: list) -> dict:
    from scicurate.classifiers import triage

    ok = [(r, t) for r, t in zip(rows, tags) if isinstance(t, triage.PageTags)]
    exact = sum(t.science_domain == r["truth"] for r, t in ok)
    binary = sum((t.science_domain == "not_science") == (r["truth"] == "not_science") for r, t in ok)
    return {
        "texts": len(rows), "valid": len(ok),
        "science_domain_accuracy": round(exact / len(ok), 3) if ok else None,
        "science_vs_not_accuracy": round(binary / len(ok), 3) if ok else None,
        "majority_baseline_accuracy": round(max(Counter(r["truth"] for r in rows).values()) / len(rows), 3),
        "predicted": dict(Counter(t.science_domain for _, t in ok).most_common()),
        "quality_hist": [sum(t.quality == q for _, t in ok) for q in range(6)],
        "informative_share": round(sum(t.informative for _, t in ok) / len(ok), 3) if ok else None,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-label", type=int, default=10)
    ap.add_argument("--models", nargs="*", default=["smollm2", "gemma3"])
    ap.add_argument("--endpoint")
    ap.add_argument("--model")
    ap.add_argument("--corpus", default=str(ROOT.parent / "shared" / "corpus"))
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "triage_agreement.json"))
    args = ap.parse_args(argv)
    from scicurate.llm.embedded import serving
    from scicurate.web_config import WEB_AGENT_LLM

    rows = pick(Path(args.corpus), args.per_label)
    results = {}
    targets = [("endpoint", args.model)] if args.endpoint else [("embedded", m) for m in args.models]
    for backend, model in targets:
        config = WEB_AGENT_LLM.replace(backend=backend, model=model, endpoint=args.endpoint or "")
        with serving(config) as served:
            tags, seconds = ask(served, rows)
        results[model] = score(rows, tags) | {"seconds": round(seconds, 1),
                                               "seconds_per_text": round(seconds / len(rows), 2)}
        print(model, json.dumps(results[model]), flush=True)
    Path(args.out).write_text(json.dumps({"per_label": args.per_label, "labels": sorted(set(LABELS.values())),
                                          "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
