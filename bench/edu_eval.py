"""Education-level scorer: what the embedded LLM says, and how well the two fast models learn a
label. Writes `bench/results/edu_eval.json`.

    python bench/edu_eval.py [--corpus DIR] [--out bench/results/edu_eval.json] [--work DIR]
        [--llm-sample 60] [--llm-model smollm2] [--skip-llm] [--repeats 2]

1. LLM labels (`llm`): a hash sample of the labelled dev texts (arXiv and unarXive abstracts,
   PubMed abstracts, patent sentences, materials syntheses, climate claims, AG News) plus the
   main text (trafilatura) of a hash sample of the trafilatura eval HTML pages, rated by
   `scicurate edu annotate`'s code with the embedded model (SmolLM2-135M by default, CPU) and
   `edu@1`. Reported: the score histogram per source, failures and seconds per text. A
   135M model is far too weak for this rubric; if its scores are degenerate (80% or more
   one value), the fast models are not trained on them and the result says so. The labels file is
   kept under --work (it holds corpus text: never in the repository) and reused by a rerun.

2. Proxy labels (`proxy_*`): NOT an LLM's judgement but a transparent rule on the source of
   each dev text, the register a FineWeb-Edu rating of that source would mostly get:
   3 = arXiv / unarXive / PubMed abstract (coherent, a student learns from it),
   2 = materials-synthesis paragraph (coherent but procedural),
   1 = climate claim, patent procedure sentence, AG News Sci/Tech item (scientific fragment),
   0 = other AG News (no scientific content).
   It measures whether each fast model can learn a source-driven register scale, not
   educational value. Settings: `proxy_300` (a 300-text stratified hash sample) and
   `proxy_full` (all 2,694 dev texts). 70/30 split by `edu.split_fraction(id, 0)`. Both kinds are
   trained with their defaults; held-out MAE, Spearman, rounded accuracy and P/R/F1 of
   the keep decision (gold >= 3 against expected score >= 2.5, i.e. rounded >= 3: FineWeb-Edu's
   `int_score >= 3`), plus training seconds.

3. Scoring throughput on the dev texts (x4 for fastText): raw fastText `predict(k=-1)` on
   whitespace-joined texts with the trained `edu.bin` (the baseline) vs `EduScoreHandler.
   run_inference` in batches of 256 (fastText: our normalisation + the expected score) and
   of 32 (minilm: encoder + ridge head). Interleaved repeats, medians.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PUBMED = ("ncbi_disease", "bc5cdr_sample")
ABSTRACTS = ("arxiv_metadata_first2000", "unarXive_sample_2212_086") + PUBMED
# per-group quota of the 300-text proxy sample (and of the LLM sample, scaled)
GROUPS = {"arxiv": 100, "pubmed": 60, "materials": 30, "patents": 25, "climate": 35, "news_scitech": 20,
          "news_other": 30}


def group_of(row: dict) -> str:
    source = row["source"]
    if source.startswith(("arxiv", "unarXive")):
        return "arxiv"
    if source in PUBMED:
        return "pubmed"
    if source.startswith("olivetti"):
        return "materials"
    if source.startswith("paragraph2actions"):
        return "patents"
    if source.startswith("climate"):
        return "climate"
    if source == "ag_news":
        return "news_scitech" if "Sci/Tech" in row["domain"] else "news_other"
    return "other"


PROXY = {"arxiv": 3, "pubmed": 3, "materials": 2, "patents": 1, "climate": 1, "news_scitech": 1, "news_other": 0}


def proxy_rows(rows: list[dict]) -> list[dict]:
    return [{"id": r["id"], "text": r["text"], "score": PROXY[group_of(r)], "prompt": "proxy:source@1", "model": "",
             "group": group_of(r)} for r in rows if group_of(r) in PROXY]


def stratified(rows: list[dict], quotas: dict[str, int], seed: int = 0) -> list[dict]:
    from scicurate.classifiers.annotate import sample_key

    out = []
    for group, n in quotas.items():
        members = sorted((r for r in rows if group_of(r) == group), key=lambda r: sample_key(r["id"], seed))
        out += members[:n]
    return out


def html_rows(corpus: Path, n: int, seed: int = 0) -> list[dict]:
    """Main text of n hash-chosen trafilatura eval pages (trafilatura, precision mode)."""
    import trafilatura

    from scicurate.classifiers.annotate import sample_key

    pages = sorted((corpus / "html" / "trafilatura_eval" / "pages").glob("*.html"),
                   key=lambda p: sample_key(p.name, seed))
    out = []
    for page in pages:
        if len(out) >= n:
            break
        text = trafilatura.extract(page.read_text(encoding="utf-8", errors="replace"), favor_precision=True) or ""
        if len(text) >= 200:
            out.append({"id": f"html:{page.name}", "text": text, "source": "trafilatura_eval_html", "domain": "web"})
    return out


# ---- 1. LLM labels --------------------------------------------------------------------------

def llm_labels(rows: list[dict], corpus: Path, work: Path, n: int, model: str) -> dict:
    from scicurate import edu as edu_cli

    quotas = {g: max(1, round(q * n * 0.8 / 300)) for g, q in GROUPS.items()}
    sample = stratified(rows, quotas) + html_rows(corpus, max(1, n - sum(quotas.values())))
    groups = {r["id"]: group_of(r) if r["source"] != "trafilatura_eval_html" else "html" for r in sample}
    pool, labels = work / "llm_pool.jsonl", work / f"llm_labels_{model}.jsonl"
    pool.write_text("".join(json.dumps({"id": r["id"], "text": r["text"]}, ensure_ascii=False) + "\n" for r in sample),
                    encoding="utf-8")
    timing = work / f"llm_seconds_{model}.json"          # the rating time of the kept labels file
    started = time.perf_counter()
    if labels.is_file() and {json.loads(line)["id"] for line in labels.open(encoding="utf-8")} == set(groups):
        print(f"edu_eval: reusing {labels}", file=sys.stderr)
        seconds = json.loads(timing.read_text())["seconds"] if timing.is_file() else None
    else:
        parser = argparse.ArgumentParser()
        edu_cli.add_annotate_arguments(parser)
        args = parser.parse_args(["--pool", str(pool), "--output", str(labels), "--sample", str(len(sample)),
                                  "--llm-endpoint", "embedded", "--llm-model", model, "--llm-timeout", "300"])
        edu_cli.run_annotate(args)
        seconds = round(time.perf_counter() - started, 1)
        timing.write_text(json.dumps({"seconds": seconds}))
    rated = [json.loads(line) for line in labels.open(encoding="utf-8")]
    by_group: dict[str, Counter] = defaultdict(Counter)
    failures = Counter(r["failure"] for r in rated if r["failure"])
    for r in rated:
        by_group[groups[r["id"]]][str(r["score"]) if r["score"] is not None else "failed"] += 1
    scores = [r["score"] for r in rated if r["score"] is not None]
    histogram = Counter(scores)
    top_share = max(histogram.values()) / len(scores) if scores else 1.0
    proxy = {r["id"]: PROXY.get(groups[r["id"]]) for r in rated}
    paired = [(proxy[r["id"]], r["score"]) for r in rated if r["score"] is not None and proxy[r["id"]] is not None]
    from scicurate.classifiers.edu import spearman

    return {
        "model": model, "prompt": "edu@1", "texts": len(rated), "rated": len(scores),
        "failures": dict(failures), "seconds": seconds,
        "seconds_per_text": round(seconds / len(rated), 1) if seconds else None,
        "histogram": {str(k): histogram[k] for k in sorted(histogram)},
        "by_group": {g: dict(sorted(c.items())) for g, c in sorted(by_group.items())},
        "mean_score_by_group": {g: round(statistics.mean(r["score"] for r in rated if groups[r["id"]] == g
                                                         and r["score"] is not None), 3)
                                for g in sorted(by_group) if any(groups[r["id"]] == g and r["score"] is not None
                                                                 for r in rated)},
        "top_score_share": round(top_share, 3),
        "degenerate": top_share >= 0.8 or len(histogram) < 2,
        "spearman_vs_proxy": (None if len(paired) < 3 else
                              (lambda v: None if v is None else round(v, 4))(spearman(*map(list, zip(*paired))))),
        "labels_file": str(labels),
    }


# ---- 2. proxy labels: both kinds ------------------------------------------------------------

def train_both(rows: list[dict], work: Path, name: str) -> dict:
    from scicurate.classifiers import edu

    out = {"rows": len(rows), "label_counts": dict(sorted(Counter(str(r["score"]) for r in rows).items()))}
    for kind in edu.KINDS:
        started = time.perf_counter()
        card = edu.train_edu(rows, work / f"{name}_{kind}", edu.EduTrainConfig(kind=kind, holdout=0.3, seed=0))
        seconds = round(time.perf_counter() - started, 2)
        metrics = card["holdout_metrics"]
        by_group = _group_errors(rows, work / f"{name}_{kind}", card)
        out[kind] = {"train_seconds": seconds, "rows": card["rows"], "holdout_metrics": metrics,
                     "model_bytes": (work / f"{name}_{kind}" / card["model_file"]).stat().st_size,
                     "holdout_mean_score_by_group": by_group, "name": card["name"],
                     **({"alpha": card["minilm"]["alpha"]} if kind == "minilm" else {})}
        print(f"edu_eval: {name} {kind}: {json.dumps(metrics)} in {seconds} s", file=sys.stderr)
    return out


def _group_errors(rows: list[dict], model_dir: Path, card: dict) -> dict:
    from scicurate.classifiers import edu
    held = [r for r in rows if edu.split_fraction(r["id"], 0) < 0.3]
    scores = edu.EduModel(model_dir).scores([r["text"] for r in held])
    by: dict[str, list[float]] = defaultdict(list)
    for r, s in zip(held, scores):
        by[r["group"]].append(s)
    return {g: round(statistics.mean(v), 3) for g, v in sorted(by.items())}


# ---- 3. throughput --------------------------------------------------------------------------

def throughput(texts: list[str], fasttext_dir: Path, minilm_dir: Path, repeats: int) -> dict:
    import fasttext

    from scicurate.classifiers import edu

    many = texts * 4

    def baseline() -> int:
        model = fasttext.FastText._FastText(model_path=str(fasttext_dir / "edu.bin"))
        model.predict([" ".join(t.split()) for t in many], k=-1)
        return len(many)

    def handler(model_dir: Path, batch: int, items: list[str]):
        def run() -> int:
            h = edu.EduScoreHandler(model_dir)
            model = h.load_model()
            for at in range(0, len(items), batch):
                list(h.run_inference(items[at:at + batch], model))
            return len(items)
        return run

    cases = {"baseline_fasttext_predict": baseline, "ours_fasttext_handler": handler(fasttext_dir, 256, many),
             "ours_minilm_handler": handler(minilm_dir, 32, texts)}
    times: dict[str, list[float]] = defaultdict(list)
    items: dict[str, int] = {}
    for k in range(repeats):
        for name in (list(cases) if k % 2 == 0 else list(reversed(cases))):
            started = time.perf_counter()
            items[name] = cases[name]()
            times[name].append(time.perf_counter() - started)
    out = {name: {"items": items[name], "seconds": round(statistics.median(t), 3),
                  "items_per_s": round(items[name] / statistics.median(t), 1)} for name, t in times.items()}
    base = out["baseline_fasttext_predict"]["items_per_s"]
    for name in out:
        out[name]["time_per_item_vs_baseline"] = round(base / out[name]["items_per_s"], 3)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", default=str(ROOT.parent / "shared" / "corpus"))
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "edu_eval.json"))
    parser.add_argument("--work", help="scratch folder (models, the LLM labels); default a new temp folder")
    parser.add_argument("--llm-sample", type=int, default=60)
    parser.add_argument("--llm-model", default="smollm2")
    parser.add_argument("--skip-llm", action="store_true", help="keep the `llm` part of an existing --out")
    parser.add_argument("--llm-only", action="store_true", help="only rate the LLM sample; write the `llm` part alone")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    corpus = Path(args.corpus)
    dev = corpus / "text" / "labeled_texts.dev.jsonl"
    if not dev.is_file():
        print(f"edu_eval: no {dev}; nothing to measure", file=sys.stderr)
        return 1
    rows = [json.loads(line) for line in dev.open(encoding="utf-8")]
    work = Path(args.work or tempfile.mkdtemp(prefix="bench-edu-"))
    work.mkdir(parents=True, exist_ok=True)
    out_path = Path(args.out)
    previous = json.loads(out_path.read_text(encoding="utf-8")) if out_path.is_file() else {}

    result: dict = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                                "python": platform.python_version()}}
    if args.skip_llm:
        result["llm"] = previous.get("llm")
    else:
        result["llm"] = llm_labels(rows, corpus, work, args.llm_sample, args.llm_model)
    if args.llm_only:
        out_path.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        print(json.dumps(result, indent=2, sort_keys=True))
        return 0
    llm = result["llm"] or {}
    if llm and not llm.get("degenerate") and llm.get("rated", 0) >= 40:
        labelled = [json.loads(line) for line in open(llm["labels_file"], encoding="utf-8")]
        for r in labelled:
            r["group"] = "llm"
        result["llm_trained"] = train_both(labelled, work, "llm")
    else:
        result["llm_trained"] = ("not trained: the LLM labels are degenerate or too few "
                                 f"(top score share {llm.get('top_score_share')}, {llm.get('rated')} rated)")
    proxy_all = proxy_rows(rows)
    result["proxy_rule"] = {g: s for g, s in PROXY.items()}
    result["proxy_300"] = train_both(proxy_rows(stratified(rows, GROUPS)), work, "proxy300")
    result["proxy_full"] = train_both(proxy_all, work, "proxyfull")
    result["throughput"] = throughput([r["text"] for r in rows], work / "proxyfull_fasttext",
                                      work / "proxyfull_minilm", args.repeats)
    out_path.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
