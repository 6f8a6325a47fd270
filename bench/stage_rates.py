"""Per-stage CPU cost of `run pdf` and `run web` on real data, the input of `scicurate plan`.

    nice -n 10 python bench/stage_rates.py [--corpus DIR] [--output bench/results/stage_rates.json]
        [--web-copies 4] [--repeat 2] [--no-pipelines]

What is measured, and how:

- **CPU seconds, not wall time.** The machine is shared, so every figure is the CPU time of
  this process *and its children* (MinerU and PDFium run in the sandbox child, trafilatura in
  extraction children, KaTeX in a Node child): `os.times()` for this process and the children
  it has reaped, plus utime+stime (and their own reaped children) of every live descendant read
  from /proc. Wall time is recorded beside it.
- **Stages, one core each, in pipeline order** on the same documents, called through the same
  cores the Beam steps wrap (`SandboxedParser.split` / `.parse_window`, `pdf_steps.signal_page`,
  `route_signalled`, `quality_steps.tag_scistrings` / `repair_mojibake` / `GarbleHandler`,
  `formula_check.check_text`, `dedup.near.cluster_labels`, `merge.merge_document`, the token
  counter of the summary, `schema.*_row` + pyarrow Parquet). Start-ups (MinerU import and its
  first window, lid.176 load, Node start) are one-offs per worker and recorded apart. The parse,
  the extraction and the whole runs are repeated (`--repeat`) and the least CPU kept: other work
  on a shared machine inflates CPU time too (caches, sibling hyperthreads).
- **Per document and per page.** Read+split and merge are fitted as a + b * pages over the
  documents (least squares), so a corpus of long books and one of short papers both get their
  own cost; every other stage is per page (per routed page for the VLM render).
- **The whole pipeline**: `scicurate run pdf` (and `run web --no-agent`) through the CLI in a
  child process, on all the documents and on the smallest one; the difference gives the
  marginal CPU seconds per page (what a large run pays) and the fixed start-up cost. Beam's own
  work (the runner, shuffles, coders) is what the whole run costs beyond the stages.
- **Memory**: peak RSS (VmHWM) of the MinerU child, the split child, the KaTeX child and the
  extraction child, and of the whole-pipeline process.
- **VLM request sizes** (no GPU here): the routed pages are rendered as the pipeline renders
  them (`--vlm-dpi` 144, long side <= 1600 px) and their image tokens computed with
  Qwen2.5-VL's rule (28 x 28 pixels per token after the 2 x 2 merge, sides rounded to 28); the
  text of the request (`prompts/vlm_page` with the text layer) and the expected answer (the
  pages' Markdown, and the recorded VLM answers of tests/fixtures/vlm) are counted with the
  SmolLM2 tokenizer (the one shipped; a Qwen tokenizer is not). The triage agent's requests are
  built with `classifiers.triage.triage_request` on the extracted pages and counted the same way.

Inputs: `../shared/corpus` (pdf/sci, pdf/neg, pdf/formula_bench; html/trafilatura_eval) when
present, else the shipped fixtures. Every figure records what it was measured on.
"""

from __future__ import annotations

import argparse
import glob
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = ROOT / "bench" / "results" / "stage_rates.json"
PDF_FOLDERS = ("sci", "neg", "formula_bench")
CLK_TCK = os.sysconf("SC_CLK_TCK")
SCHEMA_VERSION = 1

# Qwen2.5-VL's image processor: 14 px patches merged 2 x 2, so one visual token per 28 x 28 px;
# sides are rounded to multiples of 28 and the area kept within [min_pixels, max_pixels].
QWEN_VL_FACTOR = 28
QWEN_VL_MIN_PIXELS = 4 * 28 * 28
QWEN_VL_MAX_PIXELS = 16384 * 28 * 28
# Recorded VLM answers that are degenerate (a counting loop): kept out of the per-page mean.
DEGENERATE_VLM_ANSWERS = ("gotocr_",)
# The answer the triage schema asks for, as a model writes it (one realistic object).
TRIAGE_ANSWER = ('{"science_domain": "physics", "informative": true, "quality": 3, "format": "article", '
                 '"issues": ["navigation", "boilerplate"]}')


# ---- CPU and memory of this process tree --------------------------------------------------

def _proc_stat(pid: int) -> tuple[int, float] | None:
    """(ppid, CPU seconds incl. its reaped children) of a live process, None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            raw = fh.read().decode("ascii", "replace")
    except OSError:
        return None
    fields = raw[raw.rfind(")") + 2:].split()
    ticks = sum(int(x) for x in fields[11:15])      # utime stime cutime cstime
    return int(fields[1]), ticks / CLK_TCK


def _descendants() -> dict[int, float]:
    """{pid: CPU seconds} of every live descendant of this process."""
    stats: dict[int, tuple[int, float]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _proc_stat(int(name))
            if st is not None:
                stats[int(name)] = st
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    out, todo = {}, list(children.get(os.getpid(), ()))
    while todo:
        pid = todo.pop()
        out[pid] = stats[pid][1]
        todo.extend(children.get(pid, ()))
    return out


def tree_cpu() -> float:
    """CPU seconds used so far by this process (process_time: nanosecond clock), its reaped
    children and its live descendants (10 ms ticks). Monotone: a child that exits moves its time
    from the live sum into os.times()' children."""
    t = os.times()
    return time.process_time() + t.children_user + t.children_system + sum(_descendants().values())


def peak_rss_mib(pid: int) -> float:
    """VmHWM (peak resident set) of a live process, in MiB; 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def descendant_peaks(marker: str) -> float:
    """Largest VmHWM (MiB) among live descendants whose command line contains `marker`."""
    best = 0.0
    for pid in _descendants():
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                cmd = fh.read().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if marker in cmd:
            best = max(best, peak_rss_mib(pid))
    return best


class Meter:
    """Collects (stage, unit, units, cpu_s, wall_s) rows."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    @contextmanager
    def stage(self, name: str, unit: str, units: int, **extra: Any) -> Iterator[dict[str, Any]]:
        row: dict[str, Any] = {"stage": name, "unit": unit, "units": units, **extra}
        cpu0, wall0 = tree_cpu(), time.perf_counter()
        yield row
        row["cpu_s"] = round(tree_cpu() - cpu0, 4)
        row["wall_s"] = round(time.perf_counter() - wall0, 4)
        n = max(1, row["units"])
        row["cpu_s_per_unit"] = round(row["cpu_s"] / n, 6)
        row["wall_s_per_unit"] = round(row["wall_s"] / n, 6)
        self.rows.append(row)
        print(f"  {name:28s} {row['units']:6d} {unit + 's':14s} cpu {row['cpu_s']:8.2f} s  wall "
              f"{row['wall_s']:8.2f} s  ({1000 * row['cpu_s_per_unit']:.2f} ms cpu/{unit})", flush=True)


    def keep_best(self, name: str) -> None:
        """Collapse repeated rows of one stage into the one with the least CPU (the repeat least
        disturbed by the machine's other work), recording every repeat's CPU seconds."""
        rows = [r for r in self.rows if r["stage"] == name]
        best = min(rows, key=lambda r: r["cpu_s"])
        best["cpu_s_repeats"] = [r["cpu_s"] for r in rows]
        self.rows = [r for r in self.rows if r["stage"] != name or r is best]


def fit_linear(points: list[tuple[int, float]]) -> tuple[float, float]:
    """Least-squares (a, b) of cpu = a + b * pages, both clamped at >= 0 (a negative intercept
    is noise; the slope is then refitted through the origin)."""
    import numpy as np

    x = np.array([p for p, _ in points], dtype=float)
    y = np.array([c for _, c in points], dtype=float)
    if len(points) >= 2 and x.std() > 0:
        b, a = np.polyfit(x, y, 1)
        if a >= 0 and b >= 0:
            return float(a), float(b)
    return 0.0, float(y.sum() / max(1.0, x.sum()))


def describe(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    ordered = sorted(values)
    return {"n": len(values), "mean": round(statistics.fmean(values), 1),
            "p50": round(ordered[len(ordered) // 2], 1),
            "p90": round(ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))], 1),
            "max": round(ordered[-1], 1)}


def qwen_vl_image_tokens(width: int, height: int) -> int:
    """Visual tokens Qwen2.5-VL spends on a width x height image (its `smart_resize`)."""
    import math

    f = QWEN_VL_FACTOR
    h, w = max(f, round(height / f) * f), max(f, round(width / f) * f)
    if h * w > QWEN_VL_MAX_PIXELS:
        beta = math.sqrt(height * width / QWEN_VL_MAX_PIXELS)
        h, w = math.floor(height / beta / f) * f, math.floor(width / beta / f) * f
    elif h * w < QWEN_VL_MIN_PIXELS:
        beta = math.sqrt(QWEN_VL_MIN_PIXELS / (height * width))
        h, w = math.ceil(height * beta / f) * f, math.ceil(width * beta / f) * f
    return (h // f) * (w // f)


# ---- provenance -----------------------------------------------------------------------------

def machine_info() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = 0.0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    return {
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "git_commit": git("rev-parse", "HEAD"),
        "git_dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        "cpu_model": cpu, "cpus": os.cpu_count(), "memory_gib": mem_gib,
        "python": platform.python_version(), "platform": platform.platform(),
        "niceness": os.nice(0),
    }


# ---- the whole pipeline, through the CLI, in a child process ---------------------------------

def _child_cli(argv: list[str]) -> int:
    """Child mode: run `scicurate ARGV` in this process, then print one JSON line of what this
    process and its reaped children used."""
    import resource

    from scicurate import cli

    code = cli.main(argv)
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    print("STAGE_RATES_CHILD " + json.dumps({
        "exit": code, "self_cpu_s": own.ru_utime + own.ru_stime, "children_cpu_s": kids.ru_utime + kids.ru_stime,
        "self_peak_rss_mib": own.ru_maxrss / 1024,
    }), flush=True)
    return int(code or 0)


def run_cli_best(argv: list[str], repeat: int) -> dict[str, Any]:
    """`run_cli` `repeat` times; the run with the least CPU, with every run's CPU seconds."""
    runs = [run_cli(argv) for _ in range(repeat)]
    best = min(runs, key=lambda r: r["cpu_s"])
    return {**best, "cpu_s_repeats": [r["cpu_s"] for r in runs]}


def run_cli(argv: list[str]) -> dict[str, Any]:
    """`scicurate ARGV` in a fresh interpreter: wall time, CPU of the whole process tree."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, __file__, "--child-cli", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=3600)
    wall = time.perf_counter() - started
    line = next((ln for ln in out.splitlines() if ln.startswith("STAGE_RATES_CHILD ")), "")
    if proc.returncode != 0 or not line:
        raise RuntimeError(f"scicurate {' '.join(argv)} failed ({proc.returncode}):\n{err[-3000:]}")
    info = json.loads(line.split(" ", 1)[1])
    return {"wall_s": round(wall, 3), "cpu_s": round(info["self_cpu_s"] + info["children_cpu_s"], 3),
            "main_peak_rss_mib": round(info["self_peak_rss_mib"], 1)}


def whole_pipeline(full: dict[str, Any], small: dict[str, Any], units_full: int, units_small: int,
                   command: str, unit: str) -> dict[str, Any]:
    marginal = (full["cpu_s"] - small["cpu_s"]) / max(1, units_full - units_small)
    marginal_wall = (full["wall_s"] - small["wall_s"]) / max(1, units_full - units_small)
    return {
        "command": command, "unit": unit,
        "full": {**full, "units": units_full}, "small": {**small, "units": units_small},
        "marginal_cpu_s_per_unit": round(marginal, 6), "marginal_wall_s_per_unit": round(marginal_wall, 6),
        "fixed_cpu_s": round(small["cpu_s"] - marginal * units_small, 3),
        "note": "marginal = (cpu(full) - cpu(small)) / (units(full) - units(small)): what each further "
                "unit costs once the run has started; fixed = the rest of the small run (interpreter, "
                "Beam and model start-up, once per run)",
    }


# ---- PDF --------------------------------------------------------------------------------------

def pdf_inputs(corpus: Path) -> tuple[list[str], str]:
    paths: list[str] = []
    for folder in PDF_FOLDERS:
        paths += sorted(glob.glob(str(corpus / "pdf" / folder / "*.pdf")))
    if paths:
        return paths, f"../shared/corpus/pdf/{{{','.join(PDF_FOLDERS)}}}"
    fixtures = sorted(glob.glob(str(ROOT / "tests" / "fixtures" / "pdf" / "*.pdf")))
    return fixtures, "tests/fixtures/pdf"


def measure_pdf(paths: list[str], source: str, run_pipelines: bool, repeat: int) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from scicurate import prompts, schema
    from scicurate.classifiers import router
    from scicurate.config import PdfConfig
    from scicurate.dedup.config import MinHashConfig
    from scicurate.dedup.near import cluster_labels
    from scicurate.dedup.pages import takes_part
    from scicurate.merge import merge_document
    from scicurate.parsers.formula_check import FormulaChecker, check_text
    from scicurate.parsers.sandbox import RenderedPage, SandboxedParser
    from scicurate.parsers.split import DocumentError
    from scicurate.parsers.vlm import TEXT_LAYER_PROMPT_CHARS
    from scicurate.pipelines import pdf_steps, quality_steps as quality
    from scicurate.records import STATUS_OK, PdfInput, page_id
    from scicurate.tokens import load_tokenizer

    config = PdfConfig()
    meter = Meter()
    one_off: list[dict[str, Any]] = []
    memory: dict[str, float] = {}
    print(f"bench/stage_rates: PDF stages on {len(paths)} files from {source}", flush=True)

    counter = load_tokenizer()      # converts the shipped GGUF's tokenizer once, before any timing

    # read + split, per document (the split runs in a PDFium child without MinerU)
    splitter = SandboxedParser(config, load_parser=False)
    with meter.stage("split_child_start", "worker", 1) as row:
        splitter.start()
    one_off.append(meter.rows.pop())
    per_doc: list[tuple[int, float]] = []
    docs: list[tuple[PdfInput, list]] = []
    failed_docs = 0
    with meter.stage("read_split", "document", len(paths)) as row:
        for path in paths:
            cpu0 = tree_cpu()
            with open(path, "rb") as fh:
                pdf = PdfInput.from_bytes(path, fh.read())
            try:
                windows = list(splitter.split(pdf))
            except DocumentError:
                failed_docs += 1
                continue
            per_doc.append((windows[0].doc_pages if windows else 0, tree_cpu() - cpu0))
            docs.append((pdf, windows))
        row["units"] = len(docs)
    memory["split_child_peak_mib"] = round(descendant_peaks("scicurate.parsers.sandbox"), 1)
    splitter.close()
    pages_total = sum(p for p, _ in per_doc)
    a, b = fit_linear(per_doc)
    meter.rows[-1].update(fit_cpu_s_per_document=round(a, 6), fit_cpu_s_per_page=round(b, 6),
                          pages=pages_total)

    # low-cost parse (MinerU flash in the sandbox child), per page
    parser = SandboxedParser(config)
    windows = [w for _, ws in docs for w in ws]
    with meter.stage("parser_child_start", "worker", 1,
                     note="start and first window (MinerU imports its parsing code on first use)"):
        info = parser.start()
        parser.parse_window(windows[0])
    one_off.append(meter.rows.pop())
    for _ in range(repeat):
        with meter.stage("parse_lowcost", "page", pages_total, tier=config.tier, mineru=info.get("mineru", "")) as row:
            parsed = [p for w in windows for p in parser.parse_window(w)]
            row["pages_failed"] = sum(1 for p in parsed if p.status != STATUS_OK)
    meter.keep_best("parse_lowcost")
    memory["mineru_child_peak_mib"] = round(descendant_peaks("scicurate.parsers.sandbox"), 1)
    parser.close()

    # signals + questionability score, then the route against the budget's threshold
    with meter.stage("signals_score", "page", len(parsed)):
        signalled = [pdf_steps.signal_page(p, config.min_text_chars) for p in parsed]
    with meter.stage("route", "page", len(signalled)):
        keys = [router.route_key(s[0].page_id, s[2]) for s in signalled]
        threshold = router.exact_threshold(keys, config.route_budget)
        pages = [pdf_steps.route_signalled(s, threshold) for s in signalled]
    routed = [p for p in pages if p.route == "high_cost" and p.status == STATUS_OK]

    # render the routed pages for the VLM (the sandbox's PDFium child), per routed page
    by_doc = {pdf.doc_id: pdf for pdf, _ in docs}
    renderer = SandboxedParser(config, load_parser=False)
    renderer.start()
    renders: dict[str, Any] = {}
    with meter.stage("render_for_vlm", "routed_page", len(routed), dpi=config.vlm_dpi,
                     max_side_px=config.vlm_max_side_px):
        for doc_id in sorted({p.doc_id for p in routed}):
            indices = [p.page_index for p in routed if p.doc_id == doc_id]
            for index, r in renderer.render_pages(by_doc[doc_id], indices, dpi=config.vlm_dpi,
                                                  max_side_px=config.vlm_max_side_px).items():
                renders[page_id(doc_id, index)] = r
    renderer.close()

    # global page dedup (MinHash-LSH on word 3-grams, the in-memory path of the same cores)
    page_config = MinHashConfig(ngram=3, threshold=config.page_dedup_threshold, weights=(0.5, 0.5))
    with meter.stage("page_dedup_minhash", "page", len(pages),
                     note="dedup.near.cluster_labels (in memory); Beam's shuffle is in the pipeline figure"):
        members = [(p.page_id, p.text) for p in pages if takes_part(p, config.page_dedup_min_words)]
        cluster_labels(members, page_config)

    # page quality: tags, mojibake + garble score, KaTeX formula check, page threshold
    with meter.stage("scistrings", "page", len(pages)):
        pages = [quality.tag_scistrings(p) for p in pages]
    handler = quality.GarbleHandler(quality.garble_config(config))
    with meter.stage("garble_model_load", "worker", 1):
        model = handler.load_model()
    one_off.append(meter.rows.pop())
    with meter.stage("garble", "page", len(pages)):
        pages = [quality.repair_mojibake(p) for p in pages]
        pages = [quality.apply_garble(r) for r in handler.run_inference(pages, model)]
    checker = FormulaChecker()
    with meter.stage("katex_start", "worker", 1):
        checker.start()
    one_off.append(meter.rows.pop())
    with meter.stage("formula_check", "page", len(pages)) as row:
        checked = []
        formulas = 0
        for p in pages:
            if p.status == STATUS_OK and p.text:
                report = check_text(p.text, checker)
                formulas += report.formulas
                p = quality.formula_quality(p, report)
            checked.append(p)
        pages = [quality.apply_page_thresholds(p, config) for p in checked]
        row["formulas"] = formulas
    memory["katex_child_peak_mib"] = round(descendant_peaks("katex_check"), 1)
    checker.close()

    # merge per document (fitted per document + per page), then document near-dup
    grouped: dict[str, list] = {}
    for p in pages:
        grouped.setdefault(p.doc_id, []).append(p)
    merged = []
    merge_points = []
    with meter.stage("merge", "document", len(grouped)) as row:
        for doc_id, doc_pages in grouped.items():
            cpu0 = tree_cpu()
            merged.append(merge_document(doc_id, doc_pages, max_fallback_rate=config.max_fallback_rate,
                                         min_fallback_pages=config.min_fallback_pages,
                                         max_removed_share=config.page_dedup_max_doc_share))
            merge_points.append((len(doc_pages), tree_cpu() - cpu0))
    a, b = fit_linear(merge_points)
    meter.rows[-1].update(fit_cpu_s_per_document=round(a, 6), fit_cpu_s_per_page=round(b, 6), pages=len(pages))
    documents = [m.document for m in merged if m.document is not None]
    final_pages = [p for m in merged for p in m.pages]
    with meter.stage("document_dedup_minhash", "page", len(final_pages),
                     documents=len(documents), note="dedup.near.cluster_labels with MinHashConfig() defaults"):
        cluster_labels([(d.doc_id, d.text) for d in documents], MinHashConfig())

    # token counts of the summary (SmolLM2 tokenizer) and Parquet of pages + documents
    with meter.stage("summary_tokens", "page", len(final_pages)):
        for p in final_pages:
            if p.status == STATUS_OK and p.text:
                counter.count(p.text)
        for d in documents:
            counter.count(d.text)
    with meter.stage("parquet_write", "page", len(final_pages)) as row:
        out = io.BytesIO()
        pq.write_table(pa.Table.from_pylist([schema.page_row(p) for p in final_pages], schema=schema.PAGE_SCHEMA), out)
        doc_out = io.BytesIO()
        pq.write_table(pa.Table.from_pylist([schema.document_row(d) for d in documents],
                                            schema=schema.DOCUMENT_SCHEMA), doc_out)
        row["bytes"] = out.tell() + doc_out.tell()

    # what one VLM request holds, measured on the routed pages
    prompt = prompts.load(config.vlm_prompt)
    image_tokens, text_tokens, answer_tokens, sizes = [], [], [], []
    system_tokens = counter.count(prompt.system) if prompt.system else 0
    for p in routed:
        r = renders.get(p.page_id)
        if not isinstance(r, RenderedPage):
            continue
        sizes.append((r.width, r.height))
        image_tokens.append(qwen_vl_image_tokens(r.width, r.height))
        layer = " ".join(r.text_layer.split())[:TEXT_LAYER_PROMPT_CHARS] or "(no text layer)"
        text_tokens.append(system_tokens + counter.count(prompt.render_user(text_layer=layer)))
        answer_tokens.append(counter.count(p.text))
    all_page_tokens = [counter.count(p.text) for p in pages if p.status == STATUS_OK]
    recorded = sorted(glob.glob(str(ROOT / "tests" / "fixtures" / "vlm" / "*.md")))
    real = [f for f in recorded if not Path(f).name.startswith(("derived_", "README"))]
    recorded_counts = {Path(f).name: counter.count(Path(f).read_text(encoding="utf-8")) for f in real}
    # GOT-OCR's answer is a real degenerate one (it counts until max_tokens; see the fixtures'
    # README): it is what a retry costs, not what a page costs.
    recorded_tokens = [n for name, n in recorded_counts.items() if not name.startswith(DEGENERATE_VLM_ANSWERS)]
    vlm = {
        "prompt": config.vlm_prompt, "dpi": config.vlm_dpi, "max_side_px": config.vlm_max_side_px,
        "routed_pages": len(routed), "rendered": len(image_tokens),
        "image_px": {"width": describe([float(w) for w, _ in sizes]), "height": describe([float(h) for _, h in sizes])},
        "image_tokens": describe([float(x) for x in image_tokens]),
        "image_token_rule": "Qwen2.5-VL smart_resize: 28 x 28 px per token, sides rounded to 28",
        "text_prompt_tokens": describe([float(x) for x in text_tokens]),
        "answer_tokens_routed_pages": describe([float(x) for x in answer_tokens]),
        "answer_tokens_all_pages": describe([float(x) for x in all_page_tokens]),
        "answer_tokens_recorded_vlm": describe([float(x) for x in recorded_tokens]),
        "recorded_vlm_answer_tokens": recorded_counts,
        "recorded_vlm_excluded": list(DEGENERATE_VLM_ANSWERS),
        "max_tokens": config.llm.max_tokens,
        "tokenizer": counter.name,
        "note": "answer tokens: the low-cost Markdown of the same pages (what the VLM transcribes) and "
                "the real recorded VLM answers of tests/fixtures/vlm; counted with SmolLM2's tokenizer",
    }

    result: dict[str, Any] = {
        "corpus": {"source": source, "files": len(paths), "documents": len(docs), "documents_failed": failed_docs,
                   "pages": pages_total, "pages_per_document": round(pages_total / max(1, len(docs)), 2),
                   "pages_routed": len(routed), "route_budget": config.route_budget, "tier": config.tier},
        "stages": meter.rows, "one_off": one_off, "memory_mib": memory, "vlm_request": vlm,
    }

    if run_pipelines:
        print("bench/stage_rates: scicurate run pdf (whole pipeline, child process)", flush=True)
        work = tempfile.mkdtemp(prefix="stage-rates-pdf-")
        full_in, small_in = os.path.join(work, "full"), os.path.join(work, "small")
        os.makedirs(full_in)
        os.makedirs(small_in)
        good = [pdf.source for pdf, _ in docs]
        for i, path in enumerate(good):
            os.symlink(os.path.abspath(path), os.path.join(full_in, f"{i:04d}.pdf"))
        smallest = min(zip(per_doc, good), key=lambda t: t[0][0])
        os.symlink(os.path.abspath(smallest[1]), os.path.join(small_in, "0000.pdf"))
        small = run_cli_best(["run", "pdf", "--input", os.path.join(small_in, "*.pdf"),
                              "--output", os.path.join(work, "out-small")], repeat)
        full = run_cli_best(["run", "pdf", "--input", os.path.join(full_in, "*.pdf"),
                             "--output", os.path.join(work, "out-full")], repeat)
        summary = json.loads(Path(work, "out-full", "summary.json").read_text())
        result["pipeline"] = whole_pipeline(full, small, summary["pages"], smallest[0][0],
                                            "scicurate run pdf --input DIR/*.pdf --output OUT (defaults: flash, "
                                            "route budget 0.05, no high-cost parser)", "page")
        result["pipeline"]["summary"] = {k: summary.get(k) for k in ("inputs", "documents", "pages", "pages_routed",
                                                                     "dead_letter", "dead_letter_pages")}
        print(f"  whole run: {full['cpu_s']:.1f} s cpu for {summary['pages']} pages; "
              f"marginal {result['pipeline']['marginal_cpu_s_per_unit'] * 1000:.0f} ms cpu/page", flush=True)
    return result


# ---- web -----------------------------------------------------------------------------------------

def web_rows(corpus: Path) -> tuple[list[tuple[str, str]], str]:
    sys.path.insert(0, str(ROOT / "bench"))
    from web_pipeline import eval_rows

    found = eval_rows(corpus)
    if found is not None:
        return found, "../shared/corpus/html/trafilatura_eval"
    rows = []
    for path in sorted(glob.glob(str(ROOT / "tests" / "fixtures" / "web" / "*.jsonl"))):
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict) and "url" in obj and "html" in obj:
                rows.append((obj["url"], obj["html"]))
    return rows, "tests/fixtures/web"


def measure_web(rows: list[tuple[str, str]], source: str, copies: int, run_pipelines: bool,
                repeat: int) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT / "bench"))
    from web_pipeline import write_jsonl
    from scicurate.classifiers import triage, web_rules
    from scicurate.classifiers.web_fasttext import LanguageIdentifier
    from scicurate.dedup.config import STRICT
    from scicurate.dedup.near import cluster_labels
    from scicurate.parsers import web_input
    from scicurate.parsers.html_extract import ExtractConfig, Extracted, SandboxedExtractor
    from scicurate.tokens import load_tokenizer

    meter = Meter()
    one_off: list[dict[str, Any]] = []
    memory: dict[str, float] = {}
    work = tempfile.mkdtemp(prefix="stage-rates-web-")
    path = os.path.join(work, "pages.jsonl")
    n = write_jsonl(rows, 1, path)
    print(f"bench/stage_rates: web stages on {n} pages from {source}", flush=True)

    with meter.stage("read", "page", n):
        with open(path, "rb") as fh:
            pages = [p for p in web_input.read_jsonl(fh, path) if isinstance(p, web_input.WebPage)]
    extractor = SandboxedExtractor(ExtractConfig(workers=1))
    items = [(p.page_id, p.body, p.url) for p in pages]
    with meter.stage("extract_child_start", "worker", 1, note="start and first page"):
        extractor.start()
        extractor.extract_many(items[:1])
    one_off.append(meter.rows.pop())
    for _ in range(repeat):
        with meter.stage("extract", "page", len(pages)) as row:
            results = extractor.extract_many(items)
            docs = [(p, r) for p, r in zip(pages, results) if isinstance(r, Extracted) and r.text]
            row["pages_with_text"] = len(docs)
    meter.keep_best("extract")
    memory["extract_child_peak_mib"] = round(descendant_peaks("scicurate.parsers.html_extract"), 1)
    extractor.close()
    texts = [r.text for _, r in docs]
    lid = LanguageIdentifier()
    with meter.stage("lid_model_load", "worker", 1):
        lid.load()
    one_off.append(meter.rows.pop())
    with meter.stage("lid", "page", len(texts)):
        lid.predict(texts)
    with meter.stage("rules", "page", len(texts)):
        for t in texts:
            web_rules.check(t)
    with meter.stage("near_dedup_minhash", "page", len(texts), note="dedup.config.STRICT, in memory"):
        cluster_labels([(p.page_id, r.text) for p, r in docs], STRICT)

    counter = load_tokenizer()
    prompt_tokens = []
    for p, r in docs:
        request = triage.triage_request(p.page_id, p.url, "", r.title or "", r.text)
        prompt_tokens.append(sum(counter.count(m["content"]) for m in request.messages))
    agent = {
        "prompt": triage.TriageConfig().prompt, "max_page_chars": triage.TriageConfig().max_page_chars,
        "prompt_tokens": describe([float(x) for x in prompt_tokens]),
        "completion_tokens": counter.count(TRIAGE_ANSWER), "completion_example": TRIAGE_ANSWER,
        "max_tokens": triage.TriageConfig().max_tokens, "tokenizer": counter.name,
        "note": "prompt = system + user message of classifiers.triage.triage_request on each extracted page "
                "(text cut at max_page_chars); completion = one schema-valid answer",
    }
    calls = None
    calls_path = ROOT / "bench" / "results" / "web_llm_calls.json"
    if calls_path.is_file():
        measured = json.loads(calls_path.read_text())
        per_1000 = [c["triage_calls_per_1000_pages"] for c in measured.get("crawls", []) if c.get("pages", 0) >= 100000]
        if per_1000:
            calls = {"triage_calls_per_1000_pages_max": max(per_1000), "triage_calls_per_1000_pages_min": min(per_1000),
                     "source": "bench/results/web_llm_calls.json (synthetic 1M-page crawls, Zipf domain sizes)"}
    result: dict[str, Any] = {
        "corpus": {"source": source, "pages": n, "pages_with_text": len(docs)},
        "stages": meter.rows, "one_off": one_off, "memory_mib": memory, "llm_agent": agent,
        "llm_calls": calls,
    }
    if run_pipelines:
        print(f"bench/stage_rates: scicurate run web --no-agent (whole pipeline, {copies} copies)", flush=True)
        full_path = os.path.join(work, "full.jsonl")
        units_full = write_jsonl(rows, copies, full_path)
        small_path = os.path.join(work, "small.jsonl")
        units_small = write_jsonl(rows[:max(1, len(rows) // 8)], 1, small_path)
        small = run_cli_best(["run", "web", "--input", small_path, "--output", os.path.join(work, "out-small"),
                              "--no-agent"], repeat)
        full = run_cli_best(["run", "web", "--input", full_path, "--output", os.path.join(work, "out-full"),
                             "--no-agent"], repeat)
        result["pipeline"] = whole_pipeline(full, small, units_full, units_small,
                                            f"scicurate run web --input PAGES.jsonl --output OUT --no-agent "
                                            f"({len(rows)} pages x {copies} copies under distinct URLs)", "page")
        print(f"  whole run: {full['cpu_s']:.1f} s cpu for {units_full} pages; "
              f"marginal {result['pipeline']['marginal_cpu_s_per_unit'] * 1000:.0f} ms cpu/page", flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child-cli"]:
        return _child_cli(argv[1:])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default=os.environ.get("SCICURATE_CORPUS", str(ROOT.parent / "shared" / "corpus")))
    ap.add_argument("--output", default=str(DEFAULT_OUTPUT))
    ap.add_argument("--web-copies", type=int, default=4, help="copies of the web pages in the whole-pipeline run")
    ap.add_argument("--no-pipelines", action="store_true", help="stages only, no whole-pipeline runs")
    ap.add_argument("--repeat", type=int, default=2,
                    help="repeats of the parse, the extraction and the whole runs; the least CPU is kept (2)")
    args = ap.parse_args(argv)
    corpus = Path(args.corpus)
    info = machine_info()
    print(f"bench/stage_rates: {info['cpu_model']} x {info['cpus']}, commit {info['git_commit'][:12]}"
          f"{' (dirty)' if info['git_dirty'] else ''}, nice {info['niceness']}", flush=True)
    started = time.perf_counter()
    paths, pdf_source = pdf_inputs(corpus)
    pdf = measure_pdf(paths, pdf_source, not args.no_pipelines, max(1, args.repeat))
    rows, web_source = web_rows(corpus)
    web = measure_web(rows, web_source, args.web_copies, not args.no_pipelines, max(1, args.repeat))
    report = {
        "schema": SCHEMA_VERSION,
        "what": "CPU seconds per unit of each stage of run pdf / run web, and VLM/LLM request sizes; "
                "the input of `scicurate plan`. Regenerate: nice -n 10 python bench/stage_rates.py",
        "measured_on": info,
        "method": "CPU = this process + reaped children (os.times) + live descendants (/proc utime+stime); "
                  "one stage at a time, one core each; wall time beside it (a shared machine: use CPU). "
                  f"The parse, the extraction and the whole runs are repeated {max(1, args.repeat)} times and the "
                  "least CPU kept: other work on the machine inflates CPU time too (shared caches and cores)",
        "bench_wall_s": round(time.perf_counter() - started, 1),
        "pdf": pdf, "web": web,
    }
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"bench/stage_rates: wrote {out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
