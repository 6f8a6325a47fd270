"""Taxonomy recall on the labelled dev texts: per-domain F1 in-domain and out-of-domain, and the
purity a 2%-target pool would reach. Writes `bench/results/recall_eval.json`.

    python bench/recall_eval.py [--corpus DIR] [--out bench/results/recall_eval.json] [--pool-run]

Three training sets, each a fastText recall model (default RecallConfig) with thresholds
chosen for 0.9 precision on a held-out share of its own rows (blake2b id split, seed 0):

- `seed_arxiv`: the issue's setting, the in-domain (arXiv) split alone, 70/30;
- `seed_arxiv_negatives`: the same plus 60% of the `negative` split (AG News), the random
  web negatives a DeepSeekMath-style seed set adds; 20% more join the threshold validation
  rows and the last 40% are never seen;
- `mixed_sources`: half of every split, OOD sources included: not an OOD test any more, the
  upper bound a silver set over a mixed pool could reach with perfect labels;
- `…_prior`: the same, with thresholds chosen for 0.9 precision at a 2% pool prior
  (`RecallConfig.pool_prior`, `train recall --pool-prior 0.02`).

Decisions are the pipeline's (`recall_steps.decide`: card thresholds, held-back domains
predict nothing). For each setting: P/R/F1 per target on held-out in-domain rows and on the
out_of_domain split (rows not trained on), macro-F1 over the targets with support. Purity at a
2% prior: recall r over held-out target rows (both splits) and false-positive rate f over
held-out negatives give 0.02 r / (0.02 r + 0.98 f). `--pool-run` also builds that pool
(held-out negatives plus 2% hash-sampled held-out targets) and runs `scicurate run recall`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRIOR = 0.02
# setting -> the pool prior its thresholds are chosen for (None: the validation set's own mix)
SETTINGS = {"seed_arxiv": None, "seed_arxiv_negatives": None, "seed_arxiv_negatives_prior": PRIOR,
            "mixed_sources": None, "mixed_sources_prior": PRIOR}


def split_rows(rows: list[dict], setting: str) -> tuple[list, list, list]:
    """(train, threshold validation, held out) for a setting; held-out rows are never trained on."""
    from scicurate.classifiers.web_fasttext import holdout_fraction_key

    def frac(r):
        return holdout_fraction_key(str(r["id"]), 0)
    train, val, held = [], [], []
    for r in rows:
        f = frac(r)
        if setting.startswith("mixed_sources"):
            (train if f >= 0.5 else val if f >= 0.35 else held).append(r)
        elif r["split"] == "in_domain":
            (train if f >= 0.3 else val).append(r)
        elif r["split"] == "negative" and setting.startswith("seed_arxiv_negatives"):
            (train if f >= 0.6 else val if f >= 0.4 else held).append(r)
        else:
            held.append(r)
    if not setting.startswith("mixed_sources"):
        # thresholds on the in-domain validation share; in-domain F1 is reported on it too
        held = held + [r for r in val if r["split"] == "in_domain"]
    return train, val, held


def prf(gold: list[bool], pred: list[bool]) -> dict:
    tp = sum(g and p for g, p in zip(gold, pred))
    fp = sum(p and not g for g, p in zip(gold, pred))
    fn = sum(g and not p for g, p in zip(gold, pred))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"support": tp + fn, "predicted": tp + fp, "precision": round(precision, 4), "recall": round(recall, 4),
            "f1": round(f1, 4)}


def evaluate(setting: str, rows: list[dict], work: Path) -> dict:
    from scicurate.classifiers import recall_fasttext as rf
    from scicurate.classifiers import taxonomy as tx
    from scicurate.pipelines import recall_steps as steps
    from scicurate.recall_records import PoolDoc, RecallRunConfig, ScoredDoc

    tree = tx.default()
    train, val, held = split_rows(rows, setting)
    model_dir = work / setting
    card = rf.train_recall(train, model_dir, validation=val, config=rf.RecallConfig(pool_prior=SETTINGS[setting]))
    info = steps.model_info(str(model_dir))
    config = RecallRunConfig(models=(info,), spot_check=0)
    model = rf.load_recall_model(model_dir)
    scores = model.scores([r["text"] for r in held])
    table = steps.threshold_table(config)
    decided = [steps.decide(ScoredDoc(PoolDoc(str(r["id"]), "", "", "", ""), ((model.name, s),)), config, table).domain
               for r, s in zip(held, scores)]
    gold = [rf.to_label(r["domain"], tree) for r in held]
    out: dict = {"train_rows": len(train), "validation_rows": len(val), "held_out_rows": len(held),
                 "label_counts": card["label_counts"], "held_back": config.held_back(),
                 "thresholds": {d: {k: t[k] for k in ("threshold", "precision", "recall", "met_target")}
                                for d, t in (card["thresholds"] or {}).items()}}
    groups = {"in_domain": [i for i, r in enumerate(held) if r["split"] == "in_domain"],
              "out_of_domain": [i for i, r in enumerate(held) if r["split"] == "out_of_domain"]}
    for name, idx in groups.items():
        per = {d: prf([gold[i] == d for i in idx], [decided[i] == d for i in idx]) for d in tree.targets()}
        supported = [m["f1"] for m in per.values() if m["support"]]
        out[name] = {"rows": len(idx), "per_domain": per,
                     "macro_f1": round(sum(supported) / len(supported), 4) if supported else None}
    negatives = [i for i, r in enumerate(held) if r["split"] == "negative"]
    f = sum(bool(decided[i]) for i in negatives) / len(negatives) if negatives else 0.0
    for key, splits in (("purity_at_2pct", ("in_domain", "out_of_domain")), ("purity_at_2pct_arxiv_targets", ("in_domain",))):
        targets = [i for i, g in enumerate(gold) if g != rf.OTHER and held[i]["split"] in splits]
        r = sum(decided[i] == gold[i] for i in targets) / len(targets)
        out[key] = {
            "target_rows": len(targets), "negative_rows": len(negatives), "recall": round(r, 4),
            "false_positive_rate": round(f, 4),
            "purity": round(PRIOR * r / (PRIOR * r + (1 - PRIOR) * f), 4) if r + f else None,
            "note": f"recall = right target domain among held-out target rows of {'+'.join(splits)}; "
                    "false_positive_rate = any target among held-out negatives"}
    out["_held"] = held
    out["_model_dir"] = str(model_dir)
    return out


def pool_run(result: dict, work: Path) -> dict:
    """Held-out negatives + 2% held-out targets (smallest blake2b ids) through `run recall`."""
    from scicurate.classifiers import recall_fasttext as rf
    from scicurate.classifiers import taxonomy as tx
    from scicurate.classifiers.annotate import sample_pool

    tree = tx.default()
    held = result["_held"]
    negatives = [r for r in held if r["split"] == "negative"]
    targets = [r for r in held if rf.to_label(r["domain"], tree) != rf.OTHER]
    n_targets = max(1, round(len(negatives) * PRIOR / (1 - PRIOR)))
    chosen = sample_pool(targets, n_targets, seed=0)
    pool = work / "pool_2pct.jsonl"
    pool.write_text("".join(json.dumps({"id": r["id"], "text": r["text"]}) + "\n" for r in negatives + chosen))
    out = work / "pool_run"
    proc = subprocess.run([sys.executable, "-m", "scicurate.cli", "run", "recall", "--input", str(pool), "--output",
                           str(out), "--model", result["_model_dir"], "--spot-check", "0"],
                          capture_output=True, text=True, cwd=ROOT)
    if proc.returncode:
        raise RuntimeError(proc.stderr[-2000:])
    import pyarrow.parquet as pq

    recalled = [row for f in sorted((out / "recalled").rglob("*.parquet")) for row in pq.read_table(f).to_pylist()]
    target_ids = {str(r["id"]): rf.to_label(r["domain"], tree) for r in chosen}
    right = sum(1 for row in recalled if target_ids.get(row["doc_id"]) == row["domain"])
    return {"pool_rows": len(negatives) + len(chosen), "target_rows": len(chosen), "recalled": len(recalled),
            "recalled_targets_right_domain": right,
            "target_share_in_recalled": round(right / len(recalled), 4) if recalled else None,
            "target_recall": round(right / len(chosen), 4)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", default=str(ROOT.parent / "shared" / "corpus"))
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "recall_eval.json"))
    parser.add_argument("--pool-run", action="store_true")
    args = parser.parse_args()
    from recall_scoring import dev_rows

    rows = dev_rows(args.corpus)
    if rows is None:
        return 0
    work = Path(tempfile.mkdtemp(prefix="recall-eval-"))
    results = {}
    for setting in SETTINGS:
        result = evaluate(setting, rows, work)
        if args.pool_run:
            result["pool_run_2pct"] = pool_run(result, work)
        result.pop("_held")
        result.pop("_model_dir")
        results[setting] = result
        short = {k: result[k]["macro_f1"] for k in ("in_domain", "out_of_domain")}
        purity = {k: {m: result[k][m] for m in ("recall", "false_positive_rate", "purity")}
                  for k in ("purity_at_2pct", "purity_at_2pct_arxiv_targets")}
        print(f"{setting}: macro-F1 {short}; {purity}"
              + (f"; pool run {result['pool_run_2pct']}" if args.pool_run else ""), file=sys.stderr)
    Path(args.out).write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
