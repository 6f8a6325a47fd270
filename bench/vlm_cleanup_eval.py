"""How well does the small-LLM cleanup pass (`--vlm-cleanup`, prompts/cleanup) find header and
footer lines, and how much content would it delete without the rule guard?

Pages: real scientific PDFs parsed by our low-cost path (`scicurate parse` cores), standing in for
VLM transcriptions. Into each page we insert a running header at the top and a footer at the
bottom (journal line, "Page N of M", a download notice: ground truth). Then the embedded model
(SmolLM2-135M by default) names lines to drop. Reported per model:

- header/footer recall: injected lines it named, and that the guard then deleted;
- content lines it named (would-be false deletions) and how many of those the guard refused;
- content lines actually deleted (guard passed a false deletion);
- latency and tokens per page.

    python bench/vlm_cleanup_eval.py ../shared/corpus/pdf/sci/*.pdf [--model smollm2] [--pages 40]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
from pathlib import Path

INJECTED_TOP = ("Journal of Applied Physics 118, 045301 (2021)", "Preprint submitted to Elsevier",
                "J. Chem. Theory Comput. 2020, 16, 1234-1245")
INJECTED_BOTTOM = ("Page {n} of {m}", "Downloaded from arxiv.org on 12 May 2023", "{n}")


def page_texts(paths: list[str], limit: int) -> list[str]:
    from scicurate.config import PdfConfig
    from scicurate.parse_one import ParseFailed, parse_document

    texts = []
    for path in paths:
        try:
            parsed = parse_document(path, PdfConfig(), progress=False)
        except ParseFailed as exc:
            print(f"skip {path}: {exc.reason}", file=sys.stderr)
            continue
        texts += [p.text for p in parsed.pages if p.status == "ok" and len(p.text.split("\n")) >= 6]
    rng = random.Random(0)
    rng.shuffle(texts)
    return texts[:limit]


def evaluate(texts: list[str], model: str) -> dict:
    from dataclasses import replace

    from scicurate import prompts
    from scicurate.config import EMBEDDED_LLM
    from scicurate.llm.client import LLMClient
    from scicurate.llm.embedded import serving
    from scicurate.parsers.vlm import apply_cleanup, cleanup_request
    from scicurate.records import PageResult

    prompt = prompts.load("cleanup@1")
    rng = random.Random(1)
    stats = {"pages": 0, "injected": 0, "injected_named": 0, "injected_deleted": 0, "content_lines": 0,
             "content_named": 0, "content_deleted": 0, "failed": 0, "latency_s": [], "completion_tokens": [],
             "content_deleted_examples": []}
    with serving(replace(EMBEDDED_LLM, model=model)) as config, LLMClient(config) as client:
        for i, text in enumerate(texts):
            top = rng.choice(INJECTED_TOP)
            bottom = rng.choice(INJECTED_BOTTOM).format(n=i + 2, m=i + 9)
            lines = [top, ""] + text.split("\n") + ["", bottom]
            page = PageResult(doc_id="0" * 64, source="bench", page_index=0, doc_pages=1, status="ok",
                              text="\n".join(lines), parser="vlm", parser_version="", tier="vlm",
                              route="high_cost", route_reason="bench", score=1.0, needs_high_cost=False)
            request = cleanup_request(page, prompt)
            result = client.chat(request)
            stats["pages"] += 1
            stats["latency_s"].append(result.usage.latency_s)
            stats["completion_tokens"].append(result.usage.completion_tokens)
            if not result.ok:
                stats["failed"] += 1
                continue
            named = {j for j in result.data.get("drop", []) if isinstance(j, int)}
            injected = {0, len(lines) - 1}
            content = {j for j, line in enumerate(lines) if line.strip()} - injected
            kept = set(apply_cleanup(page, result).text.split("\n"))
            stats["injected"] += 2
            stats["injected_named"] += len(named & injected)
            stats["injected_deleted"] += sum(1 for j in injected if lines[j] not in kept)
            stats["content_lines"] += len(content)
            stats["content_named"] += len(named & content)
            lost = [lines[j] for j in sorted(content) if lines[j] not in kept]
            stats["content_deleted"] += len(lost)
            stats["content_deleted_examples"] += lost[: max(0, 10 - len(stats["content_deleted_examples"]))]
    latency = stats.pop("latency_s")
    tokens = stats.pop("completion_tokens")
    stats.update(
        model=model,
        injected_recall_named=round(stats["injected_named"] / max(1, stats["injected"]), 3),
        injected_recall_deleted=round(stats["injected_deleted"] / max(1, stats["injected"]), 3),
        content_named_rate=round(stats["content_named"] / max(1, stats["content_lines"]), 4),
        content_deleted_rate=round(stats["content_deleted"] / max(1, stats["content_lines"]), 4),
        median_latency_s=round(statistics.median(latency), 3) if latency else None,
        median_completion_tokens=statistics.median(tokens) if tokens else None,
    )
    return stats


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pdfs", nargs="+")
    ap.add_argument("--model", default="smollm2", help="embedded model: smollm2, gemma3 or a .gguf path")
    ap.add_argument("--pages", type=int, default=40)
    ap.add_argument("--output", default=str(Path(__file__).parent / "results" / "vlm_cleanup_eval.json"))
    args = ap.parse_args(argv)
    texts = page_texts(args.pdfs, args.pages)
    result = evaluate(texts, args.model)
    print(json.dumps(result, indent=2))
    Path(args.output).write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
