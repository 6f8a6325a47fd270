"""`scicurate recall annotate`: the silver set of taxonomy recall.

    scicurate recall annotate --pool POOL.jsonl --output SILVER.jsonl [--sample 1000] [--seed 0]
        [--domains mathematics,physics,…] [--llm-endpoint URL --llm-model NAME | --llm-model smollm2|gemma3]
    scicurate recall annotate --seed-labels LABELS.jsonl [--split in_domain] --output SILVER.jsonl

LLM mode: a deterministic sample of the pool (`{"id", "text"}` rows; the smallest
blake2b(seed, id)) is asked, one request per text and target domain, whether it belongs to the
domain and where in its subtree (`classifiers/annotate.py`, prompts `recall_<domain>`). Seed
mode (DeepSeekMath seeded from OpenWebMath) turns an existing labelled corpus into silver rows
without a model. Both write the same rows, sorted by id: `id`, `text`, `domain` (the target
domains said yes to, or `["other"]`), `paths`, `complete` (every asked domain answered),
`failures`, `source` (llm/seed), `prompts`, `model`. `scicurate train recall --labels SILVER`
trains on them. A summary (rows, yes per domain, failures per reason, LLM calls) goes to stderr.

    scicurate recall refine-prompt --domain physics --validation VAL.jsonl [--in-split in_domain]
        [--ood-split out_of_domain] [--rounds 3] [--sample N] [--errors-shown 8] [--min-gain 0.01]
        [--prompts-dir DIR] [--llm-endpoint URL --llm-model NAME | embedded]

Prompt refinement (`classifiers/refine.py`): score `recall_<domain>` (the newest version under
--prompts-dir, or --prompt) on a validation file (`{"id", "text", "domain", "split"}`, e.g. an
in-domain and an out-of-domain split), show the LLM a sample of its errors, and keep a revised
prompt only if it beats the best by --min-gain in domain and does not lose out of domain. Every
candidate is written with its scores under --prompts-dir (accepted: the next `v<N>.md`), one
line per round in `refinements.jsonl`. Progress per round goes to stderr, the JSON summary to
stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from typing import Any

from scicurate.config import ConfigError
from scicurate.jsonl import read_rows

PROGRESS_DOCS = 50


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--pool", help='JSONL rows {"id", "text"} to sample and annotate with the LLM')
    source.add_argument("--seed-labels", help='labelled JSONL rows {"id", "text", "domain"} (seed-set mode, no LLM)')
    parser.add_argument("--output", required=True, help="silver JSONL to write")
    parser.add_argument("--sample", type=int, default=1000, help="pool texts to annotate (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="sample seed (default 0)")
    parser.add_argument("--split", help="seed mode: comma-separated `split` values to keep (default all)")
    parser.add_argument("--domains", help="comma-separated target domains to ask about (default: all six)")
    add_llm_arguments(parser, "annotation, a strong one")


def add_llm_arguments(parser: argparse.ArgumentParser, what: str,
                      timeout_help: str = "seconds per request") -> None:
    """The annotation LLM's flags, shared by annotate, refine-prompt and run recall's spot-check."""
    parser.add_argument("--llm-endpoint", help=f"OpenAI-compatible base URL of the model for {what} (default: embedded)")
    parser.add_argument("--llm-model", help="model at --llm-endpoint; embedded: smollm2 (default), gemma3 or a .gguf")
    parser.add_argument("--llm-concurrency", type=int, help="requests in flight (default 1 embedded, else 8)")
    parser.add_argument("--llm-timeout", type=float, help=timeout_help)


def _llm_config(args: argparse.Namespace):
    """The flags of `add_llm_arguments` (and --llm-backend where a command has it) -> LlmConfig,
    by the one rule of `refine.annotator_llm`."""
    from scicurate.classifiers.refine import annotator_llm

    llm = annotator_llm(args.llm_endpoint or "", args.llm_model or "", args.llm_concurrency, args.llm_timeout)
    backend = getattr(args, "llm_backend", None)
    return llm.replace(backend=backend) if backend else llm


def _write(rows: list[dict[str, Any]], path: str) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        for row in sorted(rows, key=lambda r: r["id"]):
            fh.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
    os.replace(tmp, path)


def annotate_pool(docs: list[dict[str, Any]], domains: list[str], llm, *, progress=None) -> tuple[list, dict]:
    """Silver rows for `docs` and the run's counts; `llm` is an LlmConfig (embedded is served
    for the length of the call)."""
    from scicurate.classifiers import annotate as an
    from scicurate.classifiers import taxonomy as tx
    from scicurate.llm.client import LLMClient
    from scicurate.llm.embedded import serving

    tree = tx.default()
    progress = progress or sys.stderr      # looked up per call: a captured stderr may be swapped
    rows, failures, calls = [], Counter(), 0
    started = time.perf_counter()
    with serving(llm) as served, LLMClient(served) as client:
        for at in range(0, len(docs), PROGRESS_DOCS):
            chunk = docs[at:at + PROGRESS_DOCS]
            requests = [an.annotation_request(str(d["id"]), d["text"], domain) for d in chunk for domain in domains]
            results = client.chat_many(requests)
            calls += len(requests)
            answers = [an.annotation_from_result(r, tree) for r in results]
            for i, doc in enumerate(chunk):
                mine = answers[i * len(domains):(i + 1) * len(domains)]
                failures.update(a.reason for a in mine if isinstance(a, an.AnnotationFailure))
                rows.append(an.silver_row(doc, mine, domains))
            done = min(at + PROGRESS_DOCS, len(docs))
            print(f"scicurate: annotated {done}/{len(docs)} texts ({calls} LLM calls, "
                  f"{time.perf_counter() - started:.0f} s)", file=progress, flush=True)
    return rows, {"llm_calls": calls, "annotation_failures": dict(sorted(failures.items()))}


def run_annotate(args: argparse.Namespace) -> int:
    from scicurate.classifiers import annotate as an
    from scicurate.classifiers import taxonomy as tx

    tree = tx.default()
    splits = {s.strip() for s in args.split.split(",") if s.strip()} if args.split else None
    if args.seed_labels:
        rows = [an.seed_row(r, tree) for r in read_rows(args.seed_labels, ("id", "text", "domain"), splits)]
        counts: dict[str, Any] = {"llm_calls": 0, "annotation_failures": {}}
    else:
        domains = [d.strip() for d in (args.domains or ",".join(tree.targets())).split(",") if d.strip()]
        unknown = sorted(set(domains) - set(tree.targets()))
        if unknown or not domains:
            raise ConfigError(f"--domains {unknown or domains}: the target domains are {', '.join(tree.targets())}")
        if args.sample < 1:
            raise ConfigError("--sample must be at least 1")
        pool = read_rows(args.pool, ("id", "text"))
        docs = an.sample_pool(pool, args.sample, args.seed)
        print(f"scicurate: {len(docs)} of {len(pool)} pool texts x {len(domains)} domains; "
              f"taxonomy {tree.ref}", file=sys.stderr)
        rows, counts = annotate_pool(docs, domains, _llm_config(args))
    _write(rows, args.output)
    yes = Counter(d for r in rows for d in r["domain"])
    summary = {"rows": len(rows), "complete": sum(r["complete"] for r in rows),
               "by_domain": dict(sorted(yes.items())), **counts, "output": args.output}
    print(json.dumps(summary, indent=2, sort_keys=True), file=sys.stderr)
    return 0


# ---- refine-prompt ---------------------------------------------------------------------------

def add_refine_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--domain", required=True, help="the target domain whose recall_<domain> prompt to refine")
    parser.add_argument("--validation", required=True, help='validation JSONL {"id", "text", "domain", "split"}')
    parser.add_argument("--in-split", default="in_domain", help="split the revision must improve (default in_domain)")
    parser.add_argument("--ood-split", default="out_of_domain",
                        help="split the revision may not get worse on (default out_of_domain)")
    parser.add_argument("--rounds", type=int, default=3, help="proposals to try at most (default 3)")
    parser.add_argument("--sample", type=int, default=0,
                        help="validation texts per split, the smallest blake2b(seed, id) (default 0: all)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sample and of the errors shown (default 0)")
    parser.add_argument("--errors-shown", type=int, default=8, help="errors shown to the LLM per round (default 8)")
    parser.add_argument("--error-chars", type=int, default=400, help="characters of each error's text shown (default 400)")
    parser.add_argument("--min-gain", type=float, default=0.01,
                        help="in-split score gain a revision needs to be kept (default 0.01)")
    parser.add_argument("--ood-tolerance", type=float, default=0.0,
                        help="OOD score loss a kept revision may have (default 0)")
    parser.add_argument("--prompt", help="start from this version (recall_<domain>@N; default the newest)")
    parser.add_argument("--prompts-dir", help="prompts root to read and write (default the package's prompts/; "
                                              "a fresh folder is seeded with the package's versions)")
    parser.add_argument("--proposal-max-tokens", type=int, default=2048,
                        help="answer tokens of a proposal (default 2048; prompt + this must fit the context)")
    add_llm_arguments(parser, "annotation and proposals",
                      "seconds per request (default 300 embedded: a proposal is a whole prompt)")


def run_refine(args: argparse.Namespace) -> int:
    import hashlib
    from pathlib import Path

    from scicurate import prompts
    from scicurate.classifiers import annotate as an
    from scicurate.classifiers import refine as rf
    from scicurate.classifiers import taxonomy as tx
    from scicurate.evals.classify import read_labels
    from scicurate.llm.client import LLMClient
    from scicurate.llm.embedded import serving

    tree = tx.default()
    if args.domain not in tree.targets():
        raise ConfigError(f"--domain {args.domain!r}: the target domains are {', '.join(tree.targets())}")
    config = rf.RefineConfig(domain=args.domain, in_split=args.in_split, ood_split=args.ood_split,
                             rounds=args.rounds, min_gain=args.min_gain, ood_tolerance=args.ood_tolerance,
                             errors_shown=args.errors_shown, error_chars=args.error_chars, seed=args.seed,
                             proposal_max_tokens=args.proposal_max_tokens)
    store = rf.PromptStore(args.prompts_dir or prompts.PROMPTS_DIR)
    pid = an.prompt_id(args.domain)
    for path in store.seed_from(pid, prompts.PROMPTS_DIR):
        print(f"scicurate: seeded {path} from the package prompts", file=sys.stderr)
    try:
        start = store.load(args.prompt or pid)
        meta = prompts.load(config.meta_prompt)
    except prompts.PromptError as exc:
        raise ConfigError(str(exc)) from None
    rows = rf.sample_validation(rf.validation_rows(read_labels(args.validation)), args.sample, args.seed)
    rf.check_splits(rows, config)
    llm = _llm_config(args)
    if llm.backend == "embedded" and args.llm_timeout is None:
        llm = llm.replace(timeout_s=300.0)
    sizes = {s: sum(r.split == s for r in rows) for s in sorted({r.split for r in rows})}
    validation = {"file": str(args.validation), "sample_per_split": args.sample, "seed": args.seed, "rows": sizes,
                  "ids_sha256": hashlib.sha256("\n".join(f"{r.split}\t{r.id}" for r in rows).encode()).hexdigest()}
    print(f"scicurate: refining {start.ref} under {Path(store.root)} on {sizes} validation texts; "
          f"{config.rounds} rounds", file=sys.stderr)
    started = time.perf_counter()
    with serving(llm) as served, LLMClient(served) as client:
        result = rf.refine(start, rows, chat=client.chat_many, store=store, config=config, meta=meta, taxonomy=tree,
                           model=served.model, validation=validation,
                           progress=lambda message: print(message, file=sys.stderr, flush=True))
    summary = {**result.summary(), "seconds": round(time.perf_counter() - started, 1),
               "prompts_dir": str(store.root), "log": str(store.root / pid / store.LOG)}
    print(json.dumps(summary, indent=2, sort_keys=True))
    return 0
