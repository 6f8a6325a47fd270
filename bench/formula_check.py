"""Formula check: KaTeX's acceptance of correct LaTeX, and the checker's throughput.

    .venv/bin/python bench/formula_check.py [--corpus ../shared/corpus] [--copies 20] [--repeat 3]
                                            [--out bench/results/formula_check.json]

(a) Acceptance. `pdf/formula_bench/*.gt.json` hold the exact LaTeX of every display and inline
formula of their PDFs. Each gt formula is checked in its own mode by `FormulaChecker`; every
rejection is a false "broken" on correct LaTeX and is listed with KaTeX's message. Each gt file
is also assembled into a Markdown page (text blocks and inline formulas joined into paragraphs,
display formulas as `$$` blocks) and run through `check_text`: the formula counts must equal
the gt's and nothing may be broken (extraction recall on real formulas).

(b) Throughput, in formulas/s, on the gt formulas x `--copies` (each copy made distinct by a
trailing `%` comment, so neither the cache nor in-batch de-duplication helps):
- baseline: one `node -e` process that loads KaTeX and renders them all at once (the same
  options and shims are not needed for timing: plain `renderToString` with the same limits);
- ours, cold: a new `FormulaChecker` (Node start-up and KaTeX load included) checking them all;
- ours, warm: a long-lived checker (as in a Beam worker), cache off;
- for information, pure extraction (`extract_formulas`) on the assembled pages.
Sides are interleaved (baseline, cold, warm, baseline, ...) and medians reported.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = ROOT.parent / "shared" / "corpus"
DEFAULT_OUT = ROOT / "bench" / "results" / "formula_check.json"

BASELINE_JS = r"""
const fs = require("fs");
const katex = require(process.argv[1]);
require(process.argv[1] + "/dist/contrib/mhchem.js");
const items = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
let ok = 0;
for (const [latex, display] of items) {
  try {
    katex.renderToString(latex, {displayMode: display, throwOnError: true, strict: "ignore", trust: false,
                                 maxSize: 100, maxExpand: 1000, output: "mathml"});
    ok += 1;
  } catch (e) {}
}
process.stdout.write(JSON.stringify({n: items.length, ok}));
"""


def load_gt(corpus: Path) -> list[tuple[str, list[dict]]]:
    files = sorted(glob.glob(str(corpus / "pdf" / "formula_bench" / "*.gt.json")))
    return [(Path(f).name, json.loads(Path(f).read_text())) for f in files]


def strip_delimiters(data: str, display: bool) -> str:
    mark = "$$" if display else "$"
    if not (data.startswith(mark) and data.endswith(mark) and len(data) >= 2 * len(mark)):
        raise ValueError(f"gt formula without {mark} delimiters: {data[:60]!r}")
    return data[len(mark):len(data) - len(mark)]


def assemble_page(blocks: list[dict]) -> tuple[str, int, int]:
    """Markdown of one gt file: (text, inline count, display count)."""
    paragraphs: list[str] = []
    current: list[str] = []
    inline = display = 0
    for block in blocks:
        if block["type"] == "display-formula":
            if current:
                paragraphs.append(" ".join(current))
                current = []
            paragraphs.append("$$\n" + strip_delimiters(block["data"], True).strip() + "\n$$")
            display += 1
        else:
            current.append(block["data"])
            inline += block["type"] == "inline-formula"
    if current:
        paragraphs.append(" ".join(current))
    return "\n\n".join(paragraphs), inline, display


def acceptance(gt: list[tuple[str, list[dict]]]) -> dict:
    from scicurate.parsers.formula_check import FormulaChecker, check_text

    items: list[tuple[str, str, str, bool]] = []  # file, type, latex, display
    for name, blocks in gt:
        for block in blocks:
            if block["type"] in ("inline-formula", "display-formula"):
                display = block["type"] == "display-formula"
                items.append((name, block["type"], strip_delimiters(block["data"], display), display))
    with FormulaChecker() as checker:
        verdicts = checker.check_latex([(latex, display) for _, _, latex, display in items])
        pages = []
        for name, blocks in gt:
            text, inline, display = assemble_page(blocks)
            report = check_text(text, checker)
            pages.append({"file": name, "gt_inline": inline, "gt_display": display,
                          "found_inline": report.inline, "found_display": report.display,
                          "broken": report.broken,
                          "broken_formulas": [r.to_dict() | {"text": text[r.start:r.end][:200]}
                                              for r in report.broken_formulas]})
        version = checker.version
    failures = [{"file": f, "type": t, "latex": latex[:300], "reason": v.reason, "error": v.error}
                for (f, t, latex, _), v in zip(items, verdicts) if not v.ok]
    by_type = {}
    for kind in ("inline-formula", "display-formula"):
        mine = [v for (_, t, _, _), v in zip(items, verdicts) if t == kind]
        by_type[kind] = {"formulas": len(mine), "accepted": sum(v.ok for v in mine)}
    exact_pages = sum(p["found_inline"] == p["gt_inline"] and p["found_display"] == p["gt_display"]
                      and p["broken"] == 0 for p in pages)
    return {
        "checker": version,
        "formulas": len(items),
        "accepted": len(items) - len(failures),
        "accepted_share": (len(items) - len(failures)) / len(items) if items else None,
        "false_broken_rate": len(failures) / len(items) if items else None,
        "by_type": by_type,
        "failures": failures,
        "pages": len(pages),
        "pages_counts_exact_and_clean": exact_pages,
        "page_mismatches": [p for p in pages if not (p["found_inline"] == p["gt_inline"]
                                                      and p["found_display"] == p["gt_display"]
                                                      and p["broken"] == 0)],
    }


def throughput(gt: list[tuple[str, list[dict]]], copies: int, repeat: int) -> dict:
    from scicurate.parsers.formula_check import (FormulaCheckConfig, FormulaChecker, extract_formulas,
                                                 find_katex_dir)

    base = [(strip_delimiters(b["data"], b["type"] == "display-formula"), b["type"] == "display-formula")
            for _, blocks in gt for b in blocks if b["type"] in ("inline-formula", "display-formula")]
    items = [(f"{latex}\n%{k}", display) for k in range(copies) for latex, display in base]
    pages = [assemble_page(blocks)[0] for _, blocks in gt] * copies
    katex_dir = str(find_katex_dir())
    node = shutil.which("node")
    config = FormulaCheckConfig(cache_size=0)

    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(items, fh)
        items_path = fh.name

    def baseline() -> float:
        t0 = time.perf_counter()
        out = subprocess.run([node, "-e", BASELINE_JS, katex_dir, items_path], check=True,
                             capture_output=True, text=True)
        dt = time.perf_counter() - t0
        assert json.loads(out.stdout)["n"] == len(items)
        return dt

    def cold() -> float:
        t0 = time.perf_counter()
        with FormulaChecker(config) as checker:
            verdicts = checker.check_latex(items)
        dt = time.perf_counter() - t0
        assert len(verdicts) == len(items)
        return dt

    warm_checker = FormulaChecker(config)
    warm_checker.start()
    warm_checker.check_latex(items[:len(base)])  # JIT warm-up, as in a worker after its first pages

    def warm() -> float:
        t0 = time.perf_counter()
        verdicts = warm_checker.check_latex(items)
        dt = time.perf_counter() - t0
        assert len(verdicts) == len(items)
        return dt

    def extraction() -> float:
        t0 = time.perf_counter()
        found = sum(len(extract_formulas(p)) for p in pages)
        dt = time.perf_counter() - t0
        assert found == len(items)
        return dt

    times: dict[str, list[float]] = {"baseline": [], "cold": [], "warm": [], "extraction": []}
    try:
        for _ in range(repeat):
            for name, fn in (("baseline", baseline), ("cold", cold), ("warm", warm), ("extraction", extraction)):
                times[name].append(fn())
    finally:
        warm_checker.close()
        Path(items_path).unlink()
    med = {k: statistics.median(v) for k, v in times.items()}
    rate = {k: len(items) / v for k, v in med.items()}
    return {
        "formulas": len(items),
        "copies": copies,
        "repeat": repeat,
        "seconds_median": med,
        "seconds_all": times,
        "formulas_per_s": rate,
        "baseline": "one `node -e` process: load KaTeX + mhchem, renderToString(output mathml) on all",
        "ratio_time_cold_over_baseline": med["cold"] / med["baseline"],
        "ratio_time_warm_over_baseline": med["warm"] / med["baseline"],
        "ratio_time_extraction_over_warm_check": med["extraction"] / med["warm"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--copies", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)

    gt = load_gt(args.corpus)
    if not gt:
        print(f"formula_check: no {args.corpus}/pdf/formula_bench/*.gt.json: skipped "
              "(pass --corpus DIR)", file=sys.stderr)
        return 0
    from scicurate.config import ConfigError
    from scicurate.parsers.formula_check import find_katex_dir

    try:
        find_katex_dir()
        if shutil.which("node") is None:
            raise ConfigError("Node.js is not on PATH")
    except ConfigError as exc:
        print(f"formula_check: skipped: {exc}", file=sys.stderr)
        return 0

    acc = acceptance(gt)
    print(f"(a) {acc['checker']}: accepted {acc['accepted']}/{acc['formulas']} gt formulas "
          f"({100 * acc['accepted_share']:.1f}%; false-broken rate {100 * acc['false_broken_rate']:.2f}%)")
    for kind, row in acc["by_type"].items():
        print(f"    {kind}: {row['accepted']}/{row['formulas']}")
    for f in acc["failures"]:
        print(f"    FAIL {f['file']} {f['type']}: {f['latex'][:80]!r}: {f['reason']}: {f['error'][:120]}")
    print(f"    assembled pages: {acc['pages_counts_exact_and_clean']}/{acc['pages']} with the gt's "
          "formula counts and nothing broken")
    for p in acc["page_mismatches"]:
        print(f"    PAGE {p['file']}: inline {p['found_inline']}/{p['gt_inline']}, "
              f"display {p['found_display']}/{p['gt_display']}, broken {p['broken']}")

    thr = throughput(gt, args.copies, args.repeat)
    r = thr["formulas_per_s"]
    print(f"(b) {thr['formulas']} formulas, medians of {thr['repeat']}:")
    print(f"    baseline (one node -e, all at once): {r['baseline']:,.0f} formulas/s")
    print(f"    FormulaChecker cold (start + check):  {r['cold']:,.0f} formulas/s  "
          f"time ratio ours/baseline {thr['ratio_time_cold_over_baseline']:.2f}")
    print(f"    FormulaChecker warm (long-lived):     {r['warm']:,.0f} formulas/s  "
          f"time ratio ours/baseline {thr['ratio_time_warm_over_baseline']:.2f}")
    print(f"    extraction only (extract_formulas):   {r['extraction']:,.0f} formulas/s")

    result = {
        "benchmark": "formula_check",
        "machine": {"cpus": os.cpu_count(), "load_average_1m_at_end": os.getloadavg()[0],
                    "platform": platform.platform(),
                    "python": platform.python_version(),
                    "node": subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()},
        "acceptance": acc,
        "throughput": thr,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
