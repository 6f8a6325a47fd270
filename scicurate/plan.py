"""`scicurate plan`: worker-hours, GPU-hours and cost of a corpus, from measured stage rates.

    scicurate plan --pdf-pages 100000000 [--documents N | --pages-per-document P] [--route-budget 0.05]
        [--scanned-share 0] [--web-pages N [--domains N] [--llm-sample N | --llm-sample-per-domain N]]
        [--machine n2-standard-16] [--gpu-machine g2-standard-8] [--spot] [--cpu-price USD] [--gpu-price USD]
        [--utilisation 0.75] [--gpu-utilisation 0.8] [--vlm-pages-per-gpu-hour N]
        [--llm-pages-per-gpu-hour N] [--prefill-tokens-per-s N] [--decode-tokens-per-s N]
        [--vlm-attempts 1.1] [--rates bench/results/stage_rates.json] [--json]

The CPU side is measured: `bench/stage_rates.py` writes CPU seconds per page (per document,
per routed page) of every stage of `run pdf` and `run web`, and of the whole pipelines, with
the peak memory of the child processes. The GPU side cannot be measured without a GPU: the
VLM's request sizes are measured (image tokens of the pipeline's own renders, text and answer
tokens), its throughput is an explicit assumption per GPU type (`GPU_THROUGHPUT`), and prices
are list prices with their source and date (`PRICE_SOURCE`). Every assumption is printed
with the plan. The core, `estimate(rates, corpus, machine, gpu_machine, ...) -> Plan`, is pure.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scicurate.config import ConfigError

DEFAULT_RATES = Path(__file__).resolve().parents[1] / "bench" / "results" / "stage_rates.json"
RATES_HINT = ("measure them with `nice -n 10 python bench/stage_rates.py` in a scicurate checkout "
              "(it writes bench/results/stage_rates.json), or pass --rates FILE")
MIB_PER_GIB = 1024.0
# Memory a worker VM keeps for its OS, the Beam harness and the container runtime.
MACHINE_RESERVED_MIB = 1024.0


# ---- machines, prices and GPU throughput (assumptions, each with its basis) ----------------

PRICE_SOURCE = (
    "Compute Engine on-demand (and spot) list prices, us-central1, USD per VM-hour, GPU included, "
    "as in Cyclenerd/google-cloud-pricing-cost-calculator pricing.yml generated 2025-03-06 from the "
    "Cloud Billing Catalog API (read 2026-12-02; n2-standard-8/32 from the same per-vCPU and per-GB "
    "rates as its n2-standard-16 entry). Prices change and differ by region and contract: check them "
    "before relying on the cost (--cpu-price, --gpu-price). Dataflow bills its own per-vCPU-hour and "
    "per-GB-hour rates (plus Shuffle) instead of the VM price: pass them as --cpu-price for a "
    "Dataflow estimate"
)


@dataclass(frozen=True, slots=True)
class Machine:
    """A worker VM type: what it holds and what an hour of it costs (USD, whole VM)."""

    name: str
    vcpus: int
    memory_gib: float
    usd_per_hour: float
    usd_per_hour_spot: float = 0.0
    gpu: str = ""           # key of GPU_THROUGHPUT, "" for a CPU machine
    gpus: int = 0

    def __post_init__(self) -> None:
        if not self.name:
            raise ConfigError("a machine needs a name")
        if self.vcpus < 1 or self.memory_gib <= 0:
            raise ConfigError(f"machine {self.name}: vcpus must be >= 1 and memory_gib > 0")
        if not self.usd_per_hour > 0 or self.usd_per_hour_spot < 0:
            raise ConfigError(f"machine {self.name}: usd_per_hour must be > 0 and the spot price >= 0")
        if bool(self.gpu) != (self.gpus > 0):
            raise ConfigError(f"machine {self.name}: a GPU type needs gpus >= 1, and gpus needs a GPU type")
        if self.gpu and self.gpu not in GPU_THROUGHPUT:
            raise ConfigError(f"machine {self.name}: unknown GPU {self.gpu!r}; known: {', '.join(GPU_THROUGHPUT)}")

    def price(self, spot: bool = False) -> float:
        return self.usd_per_hour_spot if spot and self.usd_per_hour_spot > 0 else self.usd_per_hour


@dataclass(frozen=True, slots=True)
class GpuThroughput:
    """Aggregate tokens/s one GPU of this type gives a 7B (V)LM under vLLM with continuous
    batching, bf16: prefill (prompt and image tokens) and decode (answer tokens)."""

    gpu: str
    prefill_tokens_per_s: float
    decode_tokens_per_s: float
    basis: str

    def __post_init__(self) -> None:
        if not self.prefill_tokens_per_s > 0 or not self.decode_tokens_per_s > 0:
            raise ConfigError(f"GPU {self.gpu}: token throughputs must be positive")

    def requests_per_hour(self, prefill_tokens: float, decode_tokens: float) -> float:
        """Requests per GPU-hour when prefill and decode share the GPU's time (no overlap credit)."""
        seconds = prefill_tokens / self.prefill_tokens_per_s + decode_tokens / self.decode_tokens_per_s
        return 3600.0 / seconds if seconds > 0 else math.inf


_GPU_BASIS = ("assumed, not measured (no GPU here): prefill at about 35-40% of the GPU's bf16 peak at "
              "~14 GFLOP per token of a 7B model; decode bounded by reading the weights and the KV cache "
              "once per batch step, at the batch the memory beside the 16.6 GB of weights holds. For scale: "
              "olmOCR (a 7B VLM on 1,024-px renders, about half these image tokens) reports converting a "
              "million pages for $176 on rented GPUs (arXiv 2502.18443v3)")
GPU_THROUGHPUT: dict[str, GpuThroughput] = {
    # 121 TFLOPS bf16, 300 GB/s, 24 GB: 16.6 GB of weights leave ~5 GB of KV cache (~25 pages in flight).
    "L4": GpuThroughput("L4", 3_500.0, 400.0, _GPU_BASIS),
    # 312 TFLOPS bf16, 1.55 TB/s, 40 GB: ~18 GB of KV cache (~70 pages in flight).
    "A100-40GB": GpuThroughput("A100-40GB", 10_000.0, 1_800.0, _GPU_BASIS),
    # 989 TFLOPS bf16, 3.35 TB/s, 80 GB: ~60 GB of KV cache, a few hundred pages in flight.
    "H100-80GB": GpuThroughput("H100-80GB", 25_000.0, 5_000.0, _GPU_BASIS),
}

CATALOGUE: dict[str, Machine] = {m.name: m for m in (
    Machine("n2-standard-8", 8, 32, 0.388472, 0.119904),
    Machine("n2-standard-16", 16, 64, 0.776944, 0.239808),
    Machine("n2-standard-32", 32, 128, 1.553888, 0.479616),
    Machine("g2-standard-8", 8, 32, 0.853624271, 0.336764, gpu="L4", gpus=1),
    Machine("a2-highgpu-1g", 12, 85, 3.673385, 1.293355, gpu="A100-40GB", gpus=1),
    Machine("a3-highgpu-1g", 26, 234, 11.0612499878219, 4.42446871232877, gpu="H100-80GB", gpus=1),
)}
DEFAULT_MACHINE = "n2-standard-16"
DEFAULT_GPU_MACHINE = "g2-standard-8"


# ---- measured rates ----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class StageRate:
    """CPU seconds of one stage: `per_unit` per `unit` (page | routed_page | document) plus,
    for document stages, `per_page` per page of the document (fitted a + b * pages)."""

    pipeline: str
    stage: str
    unit: str
    per_unit: float
    per_page: float = 0.0
    measured_units: int = 0

    def __post_init__(self) -> None:
        if self.pipeline not in ("pdf", "web"):
            raise ConfigError(f"stage {self.stage}: pipeline must be pdf or web; got {self.pipeline!r}")
        if self.unit not in ("page", "routed_page", "document"):
            raise ConfigError(f"stage {self.stage}: unit must be page, routed_page or document; got {self.unit!r}")
        if self.per_unit < 0 or self.per_page < 0:
            raise ConfigError(f"stage {self.stage}: CPU seconds cannot be negative")

    def per_page_at(self, pages_per_document: float) -> float:
        """CPU seconds per page of a corpus with this many pages per document."""
        if self.unit == "document":
            return self.per_unit / pages_per_document + self.per_page
        return self.per_unit


@dataclass(frozen=True, slots=True)
class PipelineRates:
    """What one pipeline costs per unit, as measured."""

    stages: tuple[StageRate, ...]
    whole_cpu_s_per_page: float          # marginal CPU s/page of the whole run; 0 = not measured
    pages_per_document: float            # of the measured corpus
    lane_memory_mib: float               # child processes one parse lane holds (peak RSS)
    worker_process_mib: float            # the pipeline's own process (peak RSS); 0 = not measured
    measured_on: str                     # corpus, units, machine, date, commit


@dataclass(frozen=True, slots=True)
class Rates:
    pdf: PipelineRates
    web: PipelineRates | None
    vlm_image_tokens: float
    vlm_text_tokens: float
    vlm_answer_tokens: float
    vlm_answer_basis: str
    vlm_max_tokens: int
    llm_prompt_tokens: float
    llm_completion_tokens: float
    llm_calls_per_1000_pages: float
    tokenizer: str
    source: str


def _get(d: dict[str, Any], path: str) -> Any:
    node: Any = d
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            raise ConfigError(f"the stage rates have no {path!r}: {RATES_HINT}")
        node = node[key]
    return node


def _pipeline_rates(d: dict[str, Any], name: str, machine: str) -> PipelineRates:
    section = _get(d, name)
    stages = []
    for row in _get(section, "stages"):
        try:
            fitted = "fit_cpu_s_per_document" in row
            stages.append(StageRate(
                pipeline=name, stage=str(row["stage"]), unit=str(row["unit"]),
                per_unit=float(row["fit_cpu_s_per_document"] if fitted else row["cpu_s_per_unit"]),
                per_page=float(row.get("fit_cpu_s_per_page", 0.0)), measured_units=int(row.get("units", 0))))
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"stage rates: a {name} stage row is malformed ({exc}): {RATES_HINT}") from None
    if not stages:
        raise ConfigError(f"the stage rates list no {name} stages: {RATES_HINT}")
    corpus = section.get("corpus", {})
    pipeline = section.get("pipeline") or {}
    memory = section.get("memory_mib", {})
    pages = corpus.get("pages", 0)
    return PipelineRates(
        stages=tuple(stages),
        whole_cpu_s_per_page=float(pipeline.get("marginal_cpu_s_per_unit", 0.0)),
        pages_per_document=float(corpus.get("pages_per_document", 1.0)) or 1.0,
        lane_memory_mib=float(sum(v for k, v in memory.items() if k.endswith("_peak_mib"))),
        worker_process_mib=float((pipeline.get("full") or {}).get("main_peak_rss_mib", 0.0)),
        measured_on=f"{pages} {name.upper()} pages of {corpus.get('source', '?')} on {machine}",
    )


def _mean(d: dict[str, Any], path: str) -> float:
    value = _get(d, path)
    return float(value.get("mean", 0.0)) if isinstance(value, dict) else float(value)


def rates_from_dict(d: dict[str, Any]) -> Rates:
    """The JSON of bench/stage_rates.py -> Rates. ConfigError (saying how to re-measure) when a
    figure the plan needs is missing."""
    if not isinstance(d, dict):
        raise ConfigError(f"the stage rates must be a JSON object: {RATES_HINT}")
    on = d.get("measured_on", {})
    machine = (f"{on.get('cpu_model', '?')} x{on.get('cpus', '?')}, {on.get('date', '?')}, "
               f"commit {str(on.get('git_commit', '?'))[:12]}")
    vlm = _get(d, "pdf.vlm_request")
    answers = {
        "low-cost Markdown of the routed pages": _mean(vlm, "answer_tokens_routed_pages"),
        "low-cost Markdown of all pages": _mean(vlm, "answer_tokens_all_pages"),
        "recorded VLM answers (tests/fixtures/vlm)": _mean(vlm, "answer_tokens_recorded_vlm"),
    }
    basis, answer = max(answers.items(), key=lambda kv: kv[1])
    web = _pipeline_rates(d, "web", machine) if "web" in d else None
    agent = d.get("web", {}).get("llm_agent") or {}
    calls = d.get("web", {}).get("llm_calls") or {}
    return Rates(
        pdf=_pipeline_rates(d, "pdf", machine), web=web,
        vlm_image_tokens=_mean(vlm, "image_tokens"), vlm_text_tokens=_mean(vlm, "text_prompt_tokens"),
        vlm_answer_tokens=answer, vlm_answer_basis=f"the largest measured mean: {basis}",
        vlm_max_tokens=int(vlm.get("max_tokens", 2048)),
        llm_prompt_tokens=_mean(agent, "prompt_tokens") if agent else 0.0,
        llm_completion_tokens=float(agent.get("completion_tokens", 0.0)),
        llm_calls_per_1000_pages=float(calls.get("triage_calls_per_1000_pages_max", 0.0)),
        tokenizer=str(vlm.get("tokenizer", "?")), source=machine,
    )


def load_rates(path: str | Path | None = None) -> Rates:
    path = Path(path) if path else DEFAULT_RATES
    if not path.is_file():
        raise ConfigError(f"no stage rates at {path}: {RATES_HINT}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the stage rates {path}: {exc}; {RATES_HINT}") from None
    return rates_from_dict(data)


# ---- the corpus and the plan ----------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Corpus:
    """What to process. 0 means "not given" for the derived fields: documents come from
    `pages_per_document` (else the measured corpus's), the LLM sample from the domains or the
    measured calls per 1,000 pages."""

    pdf_pages: int = 0
    pdf_documents: int = 0
    pages_per_document: float = 0.0
    route_budget: float = 0.05
    scanned_share: float = 0.0          # pages without a text layer: routed by hard rule
    web_pages: int = 0
    web_domains: int = 0
    llm_sample: int = 0                 # pages the triage agent reads, in all
    llm_sample_per_domain: int = 0

    def __post_init__(self) -> None:
        for name in ("pdf_pages", "pdf_documents", "web_pages", "web_domains", "llm_sample", "llm_sample_per_domain"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name.replace('_', '-')} cannot be negative")
        if self.pdf_pages == 0 and self.web_pages == 0:
            raise ConfigError("nothing to plan: give --pdf-pages and/or --web-pages")
        if not 0.0 <= self.route_budget <= 1.0 or not 0.0 <= self.scanned_share <= 1.0:
            raise ConfigError("--route-budget and --scanned-share are fractions of pages in [0, 1]")
        if self.pages_per_document < 0 or (self.pdf_documents and self.pages_per_document):
            raise ConfigError("give --documents or --pages-per-document (> 0), not both")
        if self.pdf_documents > self.pdf_pages > 0:
            raise ConfigError("more documents than pages")
        if self.llm_sample and self.llm_sample_per_domain:
            raise ConfigError("give --llm-sample or --llm-sample-per-domain, not both")
        if self.llm_sample_per_domain and not self.web_domains:
            raise ConfigError("--llm-sample-per-domain needs --domains")
        if self.web_domains > self.web_pages:
            raise ConfigError("more domains than web pages")


@dataclass(frozen=True, slots=True)
class StageEstimate:
    pipeline: str
    stage: str
    units: float
    unit: str
    cpu_hours: float        # vCPU-hours of stage work
    machine_hours: float    # VM-hours of the machine the stage runs on
    gpu_hours: float
    cost_usd: float
    machine: str


@dataclass(frozen=True, slots=True)
class Plan:
    corpus: Corpus
    machine: str
    gpu_machine: str
    spot: bool
    stages: tuple[StageEstimate, ...]
    pdf_cost_usd: float
    web_cost_usd: float
    cpu_hours: float
    machine_hours: float
    gpu_hours: float
    gpu_machine_hours: float
    cost_usd: float
    cost_per_million_pdf_pages: float
    cost_per_million_web_pages: float
    pdf_lanes_per_machine: int
    web_lanes_per_machine: int
    vlm_requests_per_gpu_hour: float
    llm_requests_per_gpu_hour: float
    assumptions: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def lanes_per_machine(machine: Machine, lane_mib: float) -> int:
    """Parse lanes (one vCPU, one set of child processes) a machine runs at once: its vCPUs,
    fewer when the lanes' memory does not fit beside MACHINE_RESERVED_MIB."""
    usable = machine.memory_gib * MIB_PER_GIB - MACHINE_RESERVED_MIB
    if lane_mib <= 0:
        return machine.vcpus
    fit = int(usable // lane_mib)
    if fit < 1:
        raise ConfigError(f"{machine.name} ({machine.memory_gib:g} GiB) cannot hold one lane of "
                          f"{lane_mib:.0f} MiB; choose a larger --machine")
    return min(machine.vcpus, fit)


def llm_sample_pages(corpus: Corpus, rates: Rates) -> tuple[float, str]:
    """Pages the triage agent reads, and how that number was found."""
    if corpus.llm_sample:
        return float(corpus.llm_sample), "given (--llm-sample)"
    if corpus.llm_sample_per_domain:
        n = min(corpus.web_pages, corpus.web_domains * corpus.llm_sample_per_domain)
        return float(n), f"{corpus.llm_sample_per_domain} per domain x {corpus.web_domains:,} domains"
    if corpus.web_domains:
        from scicurate.classifiers.triage import sample_size
        from scicurate.web_config import WebConfig

        w = WebConfig()
        mean = corpus.web_pages / corpus.web_domains
        if mean < w.min_domain_pages:
            return 0.0, (f"{mean:.1f} pages per domain < min_domain_pages {w.min_domain_pages}: "
                         "no domain is triaged (equal domain sizes assumed)")
        per = sample_size(int(round(mean)), cap=w.sample_per_domain, share=w.sample_share, minimum=w.sample_min)
        return float(per * corpus.web_domains), (
            f"run web's rule (share {w.sample_share:g}, {w.sample_min}-{w.sample_per_domain} per domain) on "
            f"{corpus.web_domains:,} domains of {mean:,.0f} pages each (equal sizes assumed: real crawls are "
            "Zipf-like; pass --llm-sample for a measured count)")
    per_1000 = rates.llm_calls_per_1000_pages
    if per_1000 <= 0:
        raise ConfigError("no measured triage calls per 1,000 pages in the rates: pass --domains or --llm-sample")
    return corpus.web_pages * per_1000 / 1000.0, (
        f"{per_1000:g} triage calls per 1,000 pages, the highest of bench/web_llm_calls.py's synthetic "
        "1M-page Zipf crawls (pass --domains or --llm-sample for your crawl)")


def estimate(rates: Rates, corpus: Corpus, machine: Machine, gpu_machine: Machine, *,
             utilisation: float = 0.75, gpu_utilisation: float = 0.8, spot: bool = False,
             throughput: GpuThroughput | None = None, vlm_requests_per_gpu_hour: float | None = None,
             llm_requests_per_gpu_hour: float | None = None, vlm_attempts: float = 1.1) -> Plan:
    """Rates x corpus -> Plan. Pure: no I/O, no clock.

    CPU: each stage's measured CPU seconds per unit x units; Beam's own work is the whole run's
    marginal CPU per page minus the stages' sum. vCPU-hours become VM-hours at
    min(vCPUs, lanes that fit in memory) x `utilisation`. GPU: routed pages (the budget is a hard
    cap; scans take budget places first and go beyond it) x `vlm_attempts` requests, at the
    requests per GPU-hour that the GPU's assumed token throughput gives for the measured
    request size, x `gpu_utilisation`.
    """
    if not 0.0 < utilisation <= 1.0 or not 0.0 < gpu_utilisation <= 1.0:
        raise ConfigError("--utilisation and --gpu-utilisation must be in (0, 1]")
    if vlm_attempts < 1.0:
        raise ConfigError("--vlm-attempts is requests per routed page: at least 1")
    if not gpu_machine.gpus:
        raise ConfigError(f"--gpu-machine {gpu_machine.name} has no GPU; choose one of "
                          f"{', '.join(n for n, m in CATALOGUE.items() if m.gpus)}")
    if corpus.web_pages and rates.web is None:
        raise ConfigError(f"the stage rates have no web figures: {RATES_HINT}")
    throughput = throughput or GPU_THROUGHPUT[gpu_machine.gpu]
    cpu_price, gpu_price = machine.price(spot), gpu_machine.price(spot)
    rows: list[StageEstimate] = []
    notes: list[str] = []

    def cpu_rows(pipeline: str, p: PipelineRates, pages: float, documents: float, routed: float,
                 lanes: int) -> None:
        ppd = p.pages_per_document
        stage_sum = 0.0
        for s in p.stages:
            if s.unit == "page":
                units, unit, seconds = pages, "pages", pages * s.per_unit
            elif s.unit == "document":
                units, unit, seconds = documents, "documents", documents * s.per_unit + pages * s.per_page
            else:
                units, unit, seconds = routed, "routed pages", routed * s.per_unit
            if s.unit != "routed_page":
                stage_sum += s.per_page_at(ppd)
            rows.append(_cpu_row(pipeline, s.stage, units, unit, seconds, machine, lanes, utilisation, cpu_price))
        if p.whole_cpu_s_per_page > 0:
            overhead = max(0.0, p.whole_cpu_s_per_page - stage_sum)
            rows.append(_cpu_row(pipeline, "beam_overhead", pages, "pages", pages * overhead, machine, lanes,
                                 utilisation, cpu_price))
            notes.append(
                f"{pipeline}: Beam's own work (runner, shuffles, coders, bundling) = the whole `run {pipeline}` "
                f"marginal CPU per page ({1000 * p.whole_cpu_s_per_page:.0f} ms) minus the stages' sum at the "
                f"measured {ppd:.1f} pages/document ({1000 * stage_sum:.0f} ms): {1000 * overhead:.0f} ms per page"
                + (" (clamped at 0: the stages measured alone cost more than the whole run)"
                   if p.whole_cpu_s_per_page < stage_sum else ""))
        else:
            notes.append(f"{pipeline}: no whole-pipeline figure in the rates: Beam's own work is not counted")

    # -- PDF
    pdf_lanes = web_lanes = 0
    vlm_rate = llm_rate = 0.0
    routed = 0.0
    if corpus.pdf_pages:
        p = rates.pdf
        ppd = corpus.pages_per_document or (corpus.pdf_pages / corpus.pdf_documents if corpus.pdf_documents
                                            else p.pages_per_document)
        documents = corpus.pdf_documents or corpus.pdf_pages / ppd
        routed = corpus.pdf_pages * max(corpus.route_budget, corpus.scanned_share)
        lane = p.lane_memory_mib + p.worker_process_mib
        pdf_lanes = lanes_per_machine(machine, lane)
        cpu_rows("pdf", p, float(corpus.pdf_pages), documents, routed, pdf_lanes)
        prefill = rates.vlm_image_tokens + rates.vlm_text_tokens
        decode = min(rates.vlm_answer_tokens, float(rates.vlm_max_tokens))
        vlm_rate = vlm_requests_per_gpu_hour or throughput.requests_per_hour(prefill, decode)
        requests = routed * vlm_attempts
        rows.append(_gpu_row("pdf", "vlm_parse", requests, "VLM requests", vlm_rate, gpu_machine,
                             gpu_utilisation, gpu_price))
        notes.append(
            f"pdf: {documents:,.0f} documents ({ppd:.1f} pages each: "
            + ("given" if corpus.pages_per_document or corpus.pdf_documents else "the measured corpus's mean")
            + "); per-document stages are fitted a + b x pages on the measured documents")
        notes.append(
            f"pdf: routed pages = pages x max(route budget {corpus.route_budget:g}, scanned share "
            f"{corpus.scanned_share:g}) = {routed:,.0f}: the budget is a hard cap, and pages without a text "
            "layer take budget places first and go to the VLM beyond it")
        notes.append(
            f"pdf: one VLM request = {rates.vlm_image_tokens:,.0f} image tokens (Qwen2.5-VL's 28 x 28 px per "
            f"token on the pipeline's own 144-dpi renders of the routed pages) + {rates.vlm_text_tokens:,.0f} "
            f"text tokens (prompt vlm_page@1 and the text layer) in, {decode:,.0f} tokens out "
            f"({rates.vlm_answer_basis}); "
            f"counted with the {rates.tokenizer} tokenizer as a stand-in for the VLM's own")
        notes.append(
            f"pdf: {vlm_attempts:g} requests per routed page: invalid answers are retried warmer; the retry "
            "rate is not measured here (the `llm` column of a real run's pages/ has it)")
        notes.append(
            f"pdf: lane memory = the child processes of one parse lane (MinerU, split, KaTeX: "
            f"{p.lane_memory_mib:,.0f} MiB peak) + the pipeline process ({p.worker_process_mib:,.0f} MiB: the local "
            f"FnApiRunner's peak, which holds the whole run in memory, an upper bound), {MACHINE_RESERVED_MIB:.0f} MiB "
            f"kept per VM -> {pdf_lanes} lanes on {machine.name} "
            + ("(memory-bound)" if pdf_lanes < machine.vcpus else "(one per vCPU; memory allows more)")
            + "; cap Beam's --number_of_worker_harness_threads so each vCPU runs one parse lane")

    # -- web
    if corpus.web_pages:
        w = rates.web
        assert w is not None
        lane = w.lane_memory_mib + w.worker_process_mib
        web_lanes = lanes_per_machine(machine, lane)
        cpu_rows("web", w, float(corpus.web_pages), 0.0, 0.0, web_lanes)
        sample, how = llm_sample_pages(corpus, rates)
        llm_rate = llm_requests_per_gpu_hour or throughput.requests_per_hour(rates.llm_prompt_tokens,
                                                                            rates.llm_completion_tokens)
        rows.append(_gpu_row("web", "llm_triage", sample, "sampled pages", llm_rate, gpu_machine,
                             gpu_utilisation, gpu_price))
        notes.append(f"web: the triage agent reads {sample:,.0f} pages: {how}")
        notes.append(
            f"web: one triage request = {rates.llm_prompt_tokens:,.0f} prompt + {rates.llm_completion_tokens:,.0f} "
            f"completion tokens (web_triage@1 on the measured extracted pages, {rates.tokenizer} tokenizer), on "
            "a 7B text LLM on the same GPU type; page rewrites (rewrite domains) are not counted")

    pdf_cost = sum(r.cost_usd for r in rows if r.pipeline == "pdf")
    web_cost = sum(r.cost_usd for r in rows if r.pipeline == "web")
    gpu_name = throughput.gpu
    assumptions = [
        f"CPU rates measured by bench/stage_rates.py on {rates.pdf.measured_on}"
        + (f" and {rates.web.measured_on}" if rates.web and corpus.web_pages else "")
        + ": CPU seconds (process + children), one stage at a time; a vCPU there counts as a vCPU of "
        f"{machine.name} (clock and microarchitecture differences are not modelled)",
        f"utilisation {utilisation:g}: share of paid vCPU time doing stage work (start-up, autoscaling, "
        "stragglers, I/O waits take the rest); not measured",
        *notes,
        f"GPU throughput of {gpu_name} (per GPU, 7B VLM/LLM, vLLM, bf16): prefill "
        f"{throughput.prefill_tokens_per_s:,.0f} "
        f"tokens/s, decode {throughput.decode_tokens_per_s:,.0f} tokens/s, prefill and decode time added -> "
        + (f"{vlm_rate:,.0f} VLM requests" if corpus.pdf_pages else "")
        + (" and " if corpus.pdf_pages and corpus.web_pages else "")
        + (f"{llm_rate:,.0f} triage requests" if corpus.web_pages else "")
        + f" per GPU-hour, at GPU utilisation {gpu_utilisation:g}. {throughput.basis}. Override with "
        "--vlm-pages-per-gpu-hour / --llm-pages-per-gpu-hour (or --prefill-tokens-per-s / --decode-tokens-per-s) "
        "once a GPU run has measured them",
        f"prices: {machine.name} ${cpu_price:.4f}/h, {gpu_machine.name} ${gpu_price:.4f}/h"
        + (" (spot)" if spot else " (on-demand)") + f". {PRICE_SOURCE}",
        "not counted: storage and network, Dataflow Shuffle (near-dup dedup moves ~2.5 KB per document, "
        "bench/results/dedup_dataflow_estimate.md), Dataflow service fees, disks, job start-up, the VLM "
        "client's CPU beyond rendering, failed or re-run work",
    ]
    return Plan(
        corpus=corpus, machine=machine.name, gpu_machine=gpu_machine.name, spot=spot, stages=tuple(rows),
        pdf_cost_usd=pdf_cost, web_cost_usd=web_cost,
        cpu_hours=sum(r.cpu_hours for r in rows),
        machine_hours=sum(r.machine_hours for r in rows if r.machine == machine.name and not r.gpu_hours),
        gpu_hours=sum(r.gpu_hours for r in rows),
        gpu_machine_hours=sum(r.machine_hours for r in rows if r.gpu_hours),
        cost_usd=pdf_cost + web_cost,
        cost_per_million_pdf_pages=pdf_cost / corpus.pdf_pages * 1e6 if corpus.pdf_pages else 0.0,
        cost_per_million_web_pages=web_cost / corpus.web_pages * 1e6 if corpus.web_pages else 0.0,
        pdf_lanes_per_machine=pdf_lanes, web_lanes_per_machine=web_lanes,
        vlm_requests_per_gpu_hour=vlm_rate, llm_requests_per_gpu_hour=llm_rate,
        assumptions=tuple(assumptions),
    )


def _cpu_row(pipeline: str, stage: str, units: float, unit: str, cpu_seconds: float, machine: Machine,
             lanes: int, utilisation: float, price: float) -> StageEstimate:
    cpu_hours = cpu_seconds / 3600.0
    machine_hours = cpu_hours / (lanes * utilisation)
    return StageEstimate(pipeline, stage, units, unit, cpu_hours, machine_hours, 0.0, machine_hours * price,
                         machine.name)


def _gpu_row(pipeline: str, stage: str, requests: float, unit: str, per_gpu_hour: float, machine: Machine,
             utilisation: float, price: float) -> StageEstimate:
    gpu_hours = requests / (per_gpu_hour * utilisation) if requests else 0.0
    machine_hours = gpu_hours / machine.gpus
    return StageEstimate(pipeline, stage, requests, unit, 0.0, machine_hours, gpu_hours, machine_hours * price,
                         machine.name)


# ---- output ------------------------------------------------------------------------------------

def _num(x: float) -> str:
    if x == 0:
        return "-"
    if x >= 100:
        return f"{x:,.0f}"
    if x >= 1:
        return f"{x:,.1f}"
    return f"{x:.3f}"


def render_table(plan: Plan) -> str:
    head = ("pipeline", "stage", "units", "vCPU-h", "VM-h", "VM", "GPU-h", "cost USD")
    body = [(r.pipeline, r.stage, f"{r.units:,.0f} {r.unit}", _num(r.cpu_hours), _num(r.machine_hours), r.machine,
             _num(r.gpu_hours), _num(r.cost_usd)) for r in plan.stages]
    body.append(("", "total", "", _num(plan.cpu_hours), "", "", _num(plan.gpu_hours), _num(plan.cost_usd)))
    widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head))]
    right = {2, 3, 4, 6, 7}

    def line(row) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip()

    out = [line(head), line(tuple("-" * w for w in widths))]
    out += [line(row) for row in body]
    c = plan.corpus
    summary = []
    if c.pdf_pages:
        summary.append(f"PDF: {c.pdf_pages:,} pages, route budget {c.route_budget:g}: ${plan.pdf_cost_usd:,.0f}, "
                       f"${plan.cost_per_million_pdf_pages:,.2f} per million pages")
    if c.web_pages:
        summary.append(f"web: {c.web_pages:,} pages: ${plan.web_cost_usd:,.0f}, "
                       f"${plan.cost_per_million_web_pages:,.2f} per million pages")
    summary.append(f"{plan.machine} VM-hours {plan.machine_hours:,.0f}; {plan.gpu_machine} VM-hours "
                   f"{plan.gpu_machine_hours:,.0f} ({plan.gpu_hours:,.0f} GPU-hours)")
    out += ["", *summary, "", "Assumptions:"]
    out += [f"  {i}. {a}" for i, a in enumerate(plan.assumptions, 1)]
    return "\n".join(out)


# ---- command line ------------------------------------------------------------------------------

def add_arguments(p: argparse.ArgumentParser) -> None:
    corpus = p.add_argument_group("corpus")
    corpus.add_argument("--pdf-pages", type=int, default=0, help="PDF pages to process")
    docs = corpus.add_mutually_exclusive_group()
    docs.add_argument("--documents", type=int, default=0, help="PDF documents (default: pages / pages per document)")
    docs.add_argument("--pages-per-document", type=float, default=0.0,
                      help="mean pages per PDF document (default: the measured corpus's mean)")
    corpus.add_argument("--route-budget", type=float, default=0.05, help="share of pages routed to the VLM (0.05)")
    corpus.add_argument("--scanned-share", type=float, default=0.0,
                        help="share of pages without a text layer, routed by hard rule (default 0)")
    corpus.add_argument("--web-pages", type=int, default=0, help="web pages to process")
    corpus.add_argument("--domains", type=int, default=0, help="registered URL domains of the web pages")
    sample = corpus.add_mutually_exclusive_group()
    sample.add_argument("--llm-sample", type=int, default=0, help="pages the triage agent reads, in all")
    sample.add_argument("--llm-sample-per-domain", type=int, default=0, help="pages the agent reads per domain")
    where = p.add_argument_group("machines and prices")
    where.add_argument("--machine", default=DEFAULT_MACHINE, choices=sorted(CATALOGUE),
                       help=f"VM type of the CPU workers (default {DEFAULT_MACHINE})")
    where.add_argument("--gpu-machine", default=DEFAULT_GPU_MACHINE,
                       choices=sorted(n for n, m in CATALOGUE.items() if m.gpus),
                       help=f"VM type serving the VLM and the triage LLM (default {DEFAULT_GPU_MACHINE})")
    where.add_argument("--spot", action="store_true", help="spot prices instead of on-demand")
    where.add_argument("--cpu-price", type=float, help="USD per VM-hour of --machine (overrides the catalogue)")
    where.add_argument("--gpu-price", type=float, help="USD per VM-hour of --gpu-machine (overrides the catalogue)")
    where.add_argument("--utilisation", type=float, default=0.75,
                       help="share of paid vCPU time doing stage work (default 0.75)")
    where.add_argument("--gpu-utilisation", type=float, default=0.8, help="share of paid GPU time serving (0.8)")
    gpu = p.add_argument_group("GPU throughput (assumptions until measured)")
    gpu.add_argument("--vlm-pages-per-gpu-hour", type=float,
                     help="VLM requests (page attempts) one GPU answers per hour; overrides the token model")
    gpu.add_argument("--llm-pages-per-gpu-hour", type=float,
                     help="triage requests one GPU answers per hour; overrides the token model")
    gpu.add_argument("--prefill-tokens-per-s", type=float, help="prefill tokens/s per GPU (default per GPU type)")
    gpu.add_argument("--decode-tokens-per-s", type=float, help="decode tokens/s per GPU (default per GPU type)")
    gpu.add_argument("--vlm-attempts", type=float, default=1.1, help="VLM requests per routed page (1.1)")
    p.add_argument("--rates", help=f"stage rates JSON (default {DEFAULT_RATES.relative_to(DEFAULT_RATES.parents[2])})")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")


def plan_from_args(args: argparse.Namespace) -> Plan:
    rates = load_rates(args.rates)
    corpus = Corpus(pdf_pages=args.pdf_pages, pdf_documents=args.documents, pages_per_document=args.pages_per_document,
                    route_budget=args.route_budget, scanned_share=args.scanned_share, web_pages=args.web_pages,
                    web_domains=args.domains, llm_sample=args.llm_sample,
                    llm_sample_per_domain=args.llm_sample_per_domain)
    machine, gpu_machine = CATALOGUE[args.machine], CATALOGUE[args.gpu_machine]
    price_field = "usd_per_hour_spot" if args.spot else "usd_per_hour"
    if args.cpu_price is not None:
        machine = dataclasses.replace(machine, **{price_field: args.cpu_price})
    if args.gpu_price is not None:
        gpu_machine = dataclasses.replace(gpu_machine, **{price_field: args.gpu_price})
    base = GPU_THROUGHPUT[gpu_machine.gpu]
    throughput = base
    if args.prefill_tokens_per_s or args.decode_tokens_per_s:
        throughput = dataclasses.replace(
            base, prefill_tokens_per_s=args.prefill_tokens_per_s or base.prefill_tokens_per_s,
            decode_tokens_per_s=args.decode_tokens_per_s or base.decode_tokens_per_s,
            basis="given on the command line")
    return estimate(rates, corpus, machine, gpu_machine, utilisation=args.utilisation,
                    gpu_utilisation=args.gpu_utilisation, spot=args.spot, throughput=throughput,
                    vlm_requests_per_gpu_hour=args.vlm_pages_per_gpu_hour,
                    llm_requests_per_gpu_hour=args.llm_pages_per_gpu_hour, vlm_attempts=args.vlm_attempts)


def run(args: argparse.Namespace) -> int:
    """`scicurate plan`: print the plan (table and assumptions, or JSON). ConfigError on bad input."""
    plan = plan_from_args(args)
    if args.json:
        print(json.dumps(plan.to_dict(), indent=2))
    else:
        print(render_table(plan))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (`python -m scicurate.plan`) until the `scicurate plan` subcommand is wired."""
    p = argparse.ArgumentParser(prog="scicurate plan", description=__doc__.splitlines()[0])
    add_arguments(p)
    try:
        return run(p.parse_args(argv))
    except ConfigError as exc:
        print(f"scicurate: configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
