"""Garble detector precision and recall on pages of the development corpus's PDFs.

    .venv/bin/python bench/garble_eval.py [--corpus ../shared/corpus] [--out bench/results/garble_eval.json]

How the pages are labelled (no page text is hand-edited):
- **clean**: every page the low-cost parser (MinerU flash) reads from the intact PDFs of
  pdf/sci, pdf/neg, pdf/scanned and pdf/formula_bench. These were read through by eye (the
  lecture notes' formula debris included) and none is garbled as a whole; that reading is the
  label.
- **broken fonts**: the same PDFs with the commonest real cause of garbled PDF text made
  real: each font's glyph names (`/Encoding /Differences`) and `/ToUnicode` map are replaced
  by opaque names (`/g37`), which is what subsetting tools write when they drop names. The
  parser then meets fonts it cannot map, as it does in the wild. A page is labelled
  **garbled** when its parsed text shares less than half of its words with the intact parse
  of the same page, and **clean** when it shares at least 90% (the font change did not reach
  it: a font with a built-in encoding); pages between are reported, not scored.
- **dev_texts**: the 2,694 texts of `text/labeled_texts.dev.jsonl` (arXiv abstracts, PubMed,
  patents, materials syntheses, climate claims, news), all readable: clean.
- **the failure modes as text**: the broken-font mechanism above rarely garbles here (PDFium
  falls back on glyph names inside the embedded font programs), so every intact page with 20+
  words is also shown as each known failure leaves it, labelled garbled: `cid` (pdfminer's
  `(cid:N)` for every unmapped glyph), `shifted` (a font whose codes map to the wrong letters:
  a fixed letter permutation, as a wrong `/Differences` gives), `mojibake` (the UTF-8 bytes
  decoded as cp1252), `lost_spaces` (glyphs positioned without space characters) and
  `letter_spaced` (one text object per glyph). The same word-share rule labels them: a
  transformed page that keeps half of its words (mojibake of a mostly ASCII page) is
  "between", not garbled. `partial_30` garbles 30% of a page's lines
  (shifted) and is reported as a score distribution only: whether such a page should go is
  the reader's call, and the page threshold keeps it.

Figures: precision, recall and F1 of `score >= page_threshold`, per group, plus the scores of
every false positive and false negative so a reader can see why.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _words(text: str) -> Counter:
    import re

    return Counter(re.findall(r"\w{2,}", text.lower()))


def shared_words(original: str, other: str) -> float:
    """Share of the original page's words (with multiplicity) found in the other text."""
    a, b = _words(original), _words(other)
    total = sum(a.values())
    if not total:
        return 1.0
    return sum(min(n, b[w]) for w, n in a.items()) / total


def break_fonts(src: Path, dest: Path) -> int:
    """Write `src` with every simple font's glyph names and ToUnicode maps replaced by opaque
    names; returns the fonts changed."""
    import pikepdf

    changed = 0
    with pikepdf.open(src) as pdf:
        seen: set = set()
        for page in pdf.pages:
            resources = page.obj.get("/Resources")
            fonts = resources.get("/Font") if resources is not None else None
            if fonts is None:
                continue
            for _, font in fonts.items():
                key = font.objgen
                if key in seen:
                    continue
                seen.add(key)
                touched = False
                if "/ToUnicode" in font:
                    del font["/ToUnicode"]
                    touched = True
                encoding = font.get("/Encoding")
                if isinstance(encoding, pikepdf.Dictionary) and "/Differences" in encoding:
                    diffs = encoding["/Differences"]
                    new = pikepdf.Array()
                    for item in diffs:
                        if isinstance(item, pikepdf.Name):
                            digest = hashlib.sha256(str(item).encode()).hexdigest()[:4]
                            new.append(pikepdf.Name(f"/g{int(digest, 16) % 997}"))
                        else:
                            new.append(item)
                    encoding["/Differences"] = new
                    touched = True
                elif encoding is not None and str(encoding) in ("/WinAnsiEncoding", "/MacRomanEncoding",
                                                               "/StandardEncoding"):
                    # a named encoding: reverse the alphabet's codes (a custom encoding the
                    # parser cannot know), e.g. a font re-encoded by a subsetting tool
                    diffs = pikepdf.Array([33])
                    for code in range(33, 127):
                        digest = hashlib.sha256(f"{code}".encode()).hexdigest()[:4]
                        diffs.append(pikepdf.Name(f"/g{int(digest, 16) % 997}"))
                    font["/Encoding"] = pikepdf.Dictionary(Type=pikepdf.Name("/Encoding"), Differences=diffs)
                    touched = True
                changed += touched
        pdf.save(dest)
    return changed


def parse_pages(path: Path, config) -> dict[int, str]:
    from scicurate.parse_one import ParseFailed, parse_document

    try:
        parsed = parse_document(str(path), config)
    except ParseFailed:
        return {}
    return {p.page_index: p.text for p in parsed.pages if p.status == "ok"}


def cid_text(text: str) -> str:
    """The page as pdfminer writes glyphs it cannot map: `(cid:N)` per character."""
    return "".join(c if c.isspace() else f"(cid:{ord(c) % 200})" for c in text)


_ALPHA = "abcdefghijklmnopqrstuvwxyz"
_PERM = "qwertyuiopasdfghjklzxcvbnm"
_SHIFT = str.maketrans(_ALPHA + _ALPHA.upper(), _PERM + _PERM.upper())


def shifted(text: str) -> str:
    return text.translate(_SHIFT)


def mojibake(text: str) -> str:
    return text.encode("utf-8").decode("cp1252", errors="replace")


def lost_spaces(text: str) -> str:
    return "\n".join(line.replace(" ", "") for line in text.split("\n"))


def letter_spaced(text: str) -> str:
    return "\n".join(" ".join(line.replace(" ", "  ")) for line in text.split("\n"))


def partial(text: str, share: float) -> str:
    lines = text.split("\n")
    out = []
    for i, line in enumerate(lines):
        h = int(hashlib.sha256(f"{i}:{line}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        out.append(shifted(line) if h < share else line)
    return "\n".join(out)


TRANSFORMS = {"cid": cid_text, "shifted": shifted, "mojibake": mojibake, "lost_spaces": lost_spaces,
              "letter_spaced": letter_spaced}


def _parse_all(files, config, cache: str | None) -> dict[str, tuple[dict[int, str], dict[int, str]]]:
    """file name -> (intact pages, broken-font pages), from the cache when it has them."""
    if cache and Path(cache).is_file():
        raw = json.loads(Path(cache).read_text())
        return {k: ({int(i): t for i, t in a.items()}, {int(i): t for i, t in b.items()}) for k, (a, b) in raw.items()}
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for path in files:
            intact = parse_pages(path, config)
            broken_path = Path(tmp) / path.name
            broken = parse_pages(broken_path, config) if break_fonts(path, broken_path) else {}
            out[path.name] = (intact, broken)
            print(f"parsed {path.name}: {len(intact)} pages", file=sys.stderr)
    if cache:
        Path(cache).write_text(json.dumps(out))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", default=str(ROOT.parent / "shared" / "corpus"))
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "garble_eval.json"))
    parser.add_argument("--threshold", type=float, default=None)
    parser.add_argument("--cache", help="JSON file keeping the parsed pages between runs (parsing is the slow part)")
    args = parser.parse_args(argv)

    from scicurate.classifiers.garble import GarbleConfig, GarbleDetector, describe
    from scicurate.config import PdfConfig

    pdf_dir = Path(args.corpus) / "pdf"
    if not pdf_dir.is_dir():
        print(f"no corpus at {pdf_dir}; nothing to measure", file=sys.stderr)
        return 0
    files = sorted(p for sub in ("sci", "neg", "scanned", "formula_bench") for p in (pdf_dir / sub).glob("*.pdf"))
    config = PdfConfig()
    garble_config = GarbleConfig() if args.threshold is None else GarbleConfig(page_threshold=args.threshold)
    detector = GarbleDetector(garble_config).load()

    start = time.perf_counter()
    parsed = _parse_all(files, config, args.cache)
    parse_s = time.perf_counter() - start
    items: list[dict] = []
    for name, (intact, broken) in sorted(parsed.items()):
        for index, text in sorted(intact.items()):
            items.append({"group": "intact", "file": name, "page": index, "label": "clean", "text": text})
            if len(text.split()) >= 20:
                for group, transform in TRANSFORMS.items():
                    garbled = transform(text)
                    share = shared_words(text, garbled)
                    items.append({"group": group, "file": name, "page": index, "shared_words": round(share, 3),
                                  "label": "garbled" if share < 0.5 else "between", "text": garbled})
                items.append({"group": "partial_30", "file": name, "page": index, "label": "between",
                              "text": partial(text, 0.3)})
        for index, text in sorted(broken.items()):
            original = intact.get(index, "")
            if len(original.split()) < 20:
                continue                    # too little text to compare
            share = shared_words(original, text)
            label = "garbled" if share < 0.5 else "clean" if share >= 0.9 else "between"
            items.append({"group": "broken_fonts", "file": name, "page": index, "label": label,
                          "shared_words": round(share, 3), "text": text})

    # real clean text beyond PDFs: the dev corpus's abstracts, claims, patents and news
    texts = Path(args.corpus) / "text" / "labeled_texts.dev.jsonl"
    if texts.is_file():
        for n, line in enumerate(texts.read_text().splitlines()):
            row = json.loads(line)
            items.append({"group": "dev_texts", "file": row.get("source", "text"), "page": n, "label": "clean",
                          "text": row["text"]})

    from scicurate.classifiers.garble import repair_encoding

    # the pipeline repairs mojibake before scoring (every page); measure how much of the
    # mojibake group comes back exactly, and how many real texts the repair touched
    restored = 0
    repaired: Counter = Counter()
    intact_text = {(i["file"], i["page"]): i["text"] for i in items if i["group"] == "intact"}
    for item in items:
        fixed = repair_encoding(item["text"])
        if item["group"] == "mojibake":
            restored += fixed == intact_text[(item["file"], item["page"])]
        elif fixed != item["text"]:
            repaired[item["group"]] += 1
        item["text"] = fixed
    start = time.perf_counter()
    scores = detector.scores([item["text"] for item in items])
    score_s = time.perf_counter() - start
    chars = sum(len(item["text"]) for item in items)

    groups: dict[str, Counter] = {}
    errors = []
    between: dict[str, list[float]] = {}
    for item, result in zip(items, scores):
        item["score"] = result.score
        item["reasons"] = list(result.reasons)
        if item["label"] == "between":
            groups.setdefault(item["group"], Counter())["between"] += 1
            between.setdefault(item["group"], []).append(result.score)
            continue
        predicted = result.score >= garble_config.page_threshold
        gold = item["label"] == "garbled"
        cell = {(True, True): "tp", (True, False): "fp", (False, True): "fn", (False, False): "tn"}[(predicted, gold)]
        for name in (item["group"], "all"):
            groups.setdefault(name, Counter())[cell] += 1
        if cell in ("fp", "fn"):
            errors.append({"kind": cell, "group": item["group"], "file": item["file"], "page": item["page"],
                           "detail": describe(result), "text": item["text"][:300]})

    def metrics(c: Counter) -> dict:
        p = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else None
        r = c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else None
        f = 2 * p * r / (p + r) if p and r else None
        return {**dict(c), "precision": p, "recall": r, "f1": f}

    report = {
        "threshold": garble_config.page_threshold,
        "files": len(files),
        "pages": len(items),
        "groups": {name: metrics(c) for name, c in sorted(groups.items())},
        "between_scores": {g: {"n": len(v), "median": sorted(v)[len(v) // 2],
                               "share_at_or_above_threshold": round(sum(x >= garble_config.page_threshold for x in v) / len(v), 3)}
                           for g, v in sorted(between.items())},
        "errors": errors,
        "seconds": {"parse": round(parse_s, 1), "score": round(score_s, 2)},
        "mojibake_restored_exactly": restored,
        "repaired_by_ftfy": dict(repaired),
        "score_rate": {"pages_per_s": round(len(items) / score_s, 1), "mb_per_s": round(chars / score_s / 1e6, 3)},
    }
    print(f"{'group':14} {'tp':>4} {'fp':>4} {'fn':>4} {'tn':>4} {'between':>7}  precision  recall")
    for name, m in report["groups"].items():
        fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
        print(f"{name:14} {m.get('tp', 0):4} {m.get('fp', 0):4} {m.get('fn', 0):4} {m.get('tn', 0):4} "
              f"{m.get('between', 0):7}  {fmt(m['precision']):>9}  {fmt(m['recall']):>6}")
    for e in errors[:20]:
        print(f"{e['kind']} {e['group']} {e['file']} p{e['page']}: {e['detail']}")
    for g, v in report["between_scores"].items():
        print(f"{g}: {v['n']} pages between the labels, median score {v['median']:.2f}, "
              f"{v['share_at_or_above_threshold']:.0%} at or above the threshold")
    print(f"mojibake pages restored exactly by the ftfy repair: {restored}; other texts it changed: {dict(repaired)}")
    print(f"scored {len(items)} pages in {score_s:.2f} s ({report['score_rate']['pages_per_s']} pages/s)")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
