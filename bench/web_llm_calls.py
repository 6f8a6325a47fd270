"""Triage-agent calls per 1,000 pages for a crawl's domain-size distribution (no model needed).

    python bench/web_llm_calls.py [--pages 1000000] [--zipf 1.1 1.3 1.6] [--sample 200] [--min-pages 5]

The agent reads min(n, sample) pages of each domain with n >= min-pages kept pages, and none of
the smaller domains (`WebConfig.min_domain_pages`), so its calls depend only on the domain sizes.
This prints them for (a) the trafilatura eval pages' own domains (real, but only ~150 pages,
almost all from different sites) and (b) synthetic crawls whose domain sizes follow a Zipf law
(the shape host-size distributions of web crawls have, exponents near 2; the exponent is the
unknown, so three are shown; no domain above 1% of the crawl, a crawler's per-host budget). `fixed_cap_…` is the same with
every page of a domain read up to the cap (sample_share=1). Rewrite calls come on top: one per page of each `rewrite` domain, a share the agent decides.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def triage_calls(domain_sizes, sample: int, min_pages: int, share: float = 1.0, minimum: int = 1
                 ) -> tuple[int, int, int]:
    """(pages, calls, domains triaged) for an iterable of domain sizes, `triage.sample_size` per domain."""
    from scicurate.classifiers.triage import sample_size

    pages = calls = triaged = 0
    for n in domain_sizes:
        pages += n
        if n >= min_pages:
            calls += sample_size(n, cap=sample, share=share, minimum=minimum)
            triaged += 1
    return pages, calls, triaged


def zipf_domains(pages: int, exponent: float, seed: int = 0, max_share: float = 0.01) -> list[int]:
    """Domain sizes of a crawl of `pages` pages where domain sizes follow Zipf(exponent), no
    domain above `max_share` of the crawl (a crawler's per-host budget)."""
    rng = np.random.default_rng(seed)
    cap = max(1, int(pages * max_share))
    sizes, total = [], 0
    while total < pages:
        n = int(min(rng.zipf(exponent), cap, pages - total))
        sizes.append(n)
        total += n
    return sizes


def eval_domains(corpus: Path) -> list[int] | None:
    truth = corpus / "html" / "trafilatura_eval" / "subset_groundtruth.jsonl"
    if not truth.is_file():
        return None
    from scicurate.parsers.web_input import registered_domain

    rows = [json.loads(line) for line in truth.read_text(encoding="utf-8").splitlines() if line.strip()]
    return list(Counter(registered_domain(r.get("url") or "") or r["local_file"] for r in rows).values())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=1_000_000)
    ap.add_argument("--zipf", type=float, nargs="*", default=[1.8, 2.0, 2.5])
    ap.add_argument("--sample", type=int, default=200)
    ap.add_argument("--min-pages", type=int, default=5)
    ap.add_argument("--share", type=float, default=0.1, help="WebConfig.sample_share")
    ap.add_argument("--sample-min", type=int, default=16, help="WebConfig.sample_min")
    ap.add_argument("--corpus", default=str(ROOT.parent / "shared" / "corpus"))
    args = ap.parse_args(argv)
    rows = []
    real = eval_domains(Path(args.corpus))
    cases = ([("trafilatura_eval (real)", real)] if real else []) + [
        (f"zipf {a} ({args.pages:,} pages)", zipf_domains(args.pages, a)) for a in args.zipf]
    for name, sizes in cases:
        pages, calls, triaged = triage_calls(sizes, args.sample, args.min_pages, args.share, args.sample_min)
        _, fixed, _ = triage_calls(sizes, args.sample, args.min_pages)
        rows.append({"crawl": name, "pages": pages, "domains": len(sizes), "domains_triaged": triaged,
                     "share_pages_in_triaged_domains": round(sum(n for n in sizes if n >= args.min_pages) / pages, 4),
                     "triage_calls": calls, "triage_calls_per_1000_pages": round(1000 * calls / pages, 2),
                     "fixed_cap_calls_per_1000_pages": round(1000 * fixed / pages, 2)})
    print(json.dumps({"sample_per_domain": args.sample, "sample_share": args.share, "sample_min": args.sample_min,
                      "min_domain_pages": args.min_pages, "crawls": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
