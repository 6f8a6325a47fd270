"""How well the page score separates formula pages from plain pages on the real corpus.

    /work/venv/bin/python bench/router_auc.py [--corpus ../shared/corpus]

Parses pages with the low-cost parser (MinerU flash), scores them with
`classifiers.page_signals`, and prints the ROC AUC (Mann-Whitney, ties 1/2) of

- positives: every page of `pdf/formula_bench/*.pdf` (each has display and inline formulas);
- negatives: every page of `pdf/neg/*.pdf` and of
  `pdf/sci/life_medicine_LDH_surgery_metaanalysis.pdf`;

and, for information only, the score distribution of the equation-heavy papers in `pdf/sci`
(`physics_*`, the first 20 pages of `math_lecture_notes_de_GeoTopo`). Nothing here is tuned to
these files: the weights are `page_signals.DEFAULT_WEIGHTS`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

NEGATIVE_SCI = "life_medicine_LDH_surgery_metaanalysis.pdf"
INFO_PAGES = {"math_lecture_notes_de_GeoTopo.pdf": 20}  # file -> first N pages (else all)
DEFAULT_CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"


def _page_count(path: Path) -> int:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(str(path))
    try:
        return len(pdf)
    finally:
        pdf.close()


def score_file(
    parser, path: Path, max_pages: int | None = None
) -> list[tuple[int, float, list[str]]]:
    """(page index, score, reasons) for the first `max_pages` pages of one PDF (all if None)."""
    from scicurate.classifiers.page_signals import detect, reasons, score
    from scicurate.records import sha256_hex

    n = _page_count(path)
    subset = list(range(min(n, max_pages))) if max_pages else None
    pages = parser.parse_file(
        str(path), doc_id=sha256_hex(path.read_bytes()), source=str(path), first_page=0,
        doc_pages=n, page_subset=subset,
    )
    out = []
    for page in pages:
        signals = detect(page)
        out.append((page.page_index, score(signals), reasons(signals)))
    return out


def score_group(
    parser, title: str, files: list[Path], limits: dict[str, int] | None = None
) -> list[float]:
    """Score every page of `files` (the first `limits[name]` pages where given), printing each."""
    print(f"\n== {title} ({len(files)} files)")
    scores = []
    for path in files:
        t0 = time.perf_counter()
        rows = score_file(parser, path, (limits or {}).get(path.name))
        seconds = time.perf_counter() - t0
        print(f"-- {path.name}: {len(rows)} pages, {seconds:.1f} s")
        for index, value, why in rows:
            print(f"   p{index:<4d} {value:6.3f}  {', '.join(why)}")
            scores.append(value)
    return scores


def _describe(scores: list[float]) -> str:
    if not scores:
        return "no pages"
    q = statistics.quantiles(scores, n=4) if len(scores) > 1 else [scores[0]] * 3
    return (f"n={len(scores)} min={min(scores):.3f} q1={q[0]:.3f} median={q[1]:.3f} "
            f"q3={q[2]:.3f} max={max(scores):.3f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS,
                    help=f"the development corpus folder (default: {DEFAULT_CORPUS})")
    args = ap.parse_args(argv)
    pdf_dir = args.corpus / "pdf"
    positives = sorted((pdf_dir / "formula_bench").glob("*.pdf"))
    negatives = sorted((pdf_dir / "neg").glob("*.pdf")) + sorted(
        (pdf_dir / "sci").glob(NEGATIVE_SCI)
    )
    if not positives or not negatives:
        print(f"router_auc: no corpus at {args.corpus} (need pdf/formula_bench/*.pdf and "
              f"pdf/neg/*.pdf); pass --corpus PATH to the shared development corpus.",
              file=sys.stderr)
        return 2
    info = sorted((pdf_dir / "sci").glob("physics_*.pdf")) + sorted(
        p for name in INFO_PAGES for p in (pdf_dir / "sci").glob(name)
    )

    from scicurate.classifiers.metrics import roc_auc
    from scicurate.parsers.lowcost import LowCostParser

    t0 = time.perf_counter()
    parser = LowCostParser(tier="flash").load()
    print(f"loaded MinerU {parser.version} (flash) in {time.perf_counter() - t0:.1f} s")

    pos = score_group(parser, "positives: formula_bench", positives)
    neg = score_group(parser, "negatives: neg + LDH meta-analysis", negatives)
    eq_heavy = score_group(parser, "info: equation-heavy sci papers", info, INFO_PAGES)

    print("\n== summary")
    print(f"positives  {_describe(pos)}")
    print(f"negatives  {_describe(neg)}")
    print(f"eq-heavy   {_describe(eq_heavy)}")
    above = sum(1 for s in eq_heavy if s >= min(pos))
    print(f"eq-heavy pages scoring at least the lowest positive: {above}/{len(eq_heavy)}")
    print(f"ROC AUC (positives vs negatives, Mann-Whitney, ties 1/2): {roc_auc(pos, neg):.4f}")
    print(f"total {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
