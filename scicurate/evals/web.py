"""`scicurate eval web`: score main-text extraction from HTML against two published ground truths.

Formats (both scorers re-implemented from the publishers' own definitions, not copied):

* ``scrapinghub`` — github.com/scrapinghub/article-extraction-benchmark, ``evaluate.py``.
  Truth ``{id: {"articleBody": str, "url": str}}``, HTML in ``DIR/{id}.html.gz`` (or ``.html``).
  Text is tokenised with ``\\w+``; shingles are 4-token windows (a text of 1-3 tokens is one
  short shingle, an empty text has none). Per document the shingle multisets give TP/FP/FN,
  normalised to sum to 1 so long pages do not weigh more. Precision is the mean of per-document
  precision over documents whose prediction has shingles (tp + fp > 0), recall the mean over
  documents whose truth has shingles (tp + fn > 0); F1 = 2PR/(P+R) of those two means. Accuracy
  is the share of documents whose token lists are identical. The ``_std`` values are the
  standard deviation over bootstrap resamples of documents (1000, seeded here).
* ``snippets`` — github.com/adbar/trafilatura, ``tests/eval_common.py`` (``count_item``,
  ``ConfusionMatrix``). Truth ``evaldata.json``-style ``{url: {"file", "with", "without"}}`` or a
  JSONL of ``{"local_file", "url", "with", "without"}``. Each "with" snippet found in the
  extraction is a TP, else an FN; each "without" snippet found is an FP, else a TN. "Found"
  means substring after collapsing whitespace runs to one space on both sides. A failed
  extraction (exception or None) finds nothing. Precision, recall, accuracy and
  F1 = 2TP/(2TP+FP+FN) are computed over the pooled counts.

Extractors sit behind a registry (``register_extractor``) so the web pipeline can register its
own and be scored with ``--extractor NAME``; ``--predictions FILE`` scores text made elsewhere.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import re
import statistics
import time
from collections import Counter
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Mapping, Sequence

from scicurate.config import ConfigError
from scicurate.evals import EvalCommand, EvalReport, register

FORMATS = ("scrapinghub", "snippets")
SHINGLE_SIZE = 4
N_BOOTSTRAP = 1000


# ---- extractor registry -----------------------------------------------------------------------

ExtractFn = Callable[[str | bytes, str | None], str | None]


@dataclass(frozen=True, slots=True)
class WebExtractor:
    """A named ``extract(html, url) -> text | None``, with the exact call and the package whose
    version the report records (provenance for the numbers)."""

    name: str
    extract: ExtractFn
    call: str = ""
    package: str = ""
    # Optional: the whole page set at once, [(id, html, url)] -> {id: text}, for extractors whose
    # output for one page depends on the others (domain line dedup pools a domain's pages).
    extract_batch: Callable[[list[tuple[str, str | bytes, str | None]]], dict[str, str | None]] | None = None

    def __post_init__(self) -> None:
        if not self.name or not callable(self.extract):
            raise ValueError("an extractor needs a name and a callable")

    def version(self) -> str:
        if not self.package:
            return ""
        try:
            return metadata.version(self.package)
        except metadata.PackageNotFoundError:
            return "not installed"


_EXTRACTORS: dict[str, WebExtractor] = {}


def register_extractor(name: str, extract: ExtractFn, *, call: str = "", package: str = "",
                       extract_batch=None) -> WebExtractor:
    """Make ``extract(html, url) -> text | None`` available as ``--extractor NAME`` (and
    ``extract_batch``, when given, is what scores the whole page set)."""
    extractor = WebExtractor(name, extract, call, package, extract_batch)
    if name in _EXTRACTORS and _EXTRACTORS[name] != extractor:
        raise ValueError(f"web extractor {name!r} registered twice")
    _EXTRACTORS[name] = extractor
    return extractor


def extractors() -> dict[str, WebExtractor]:
    return dict(sorted(_EXTRACTORS.items()))


def get_extractor(name: str) -> WebExtractor:
    try:
        return _EXTRACTORS[name]
    except KeyError:
        raise ConfigError(f"unknown web extractor {name!r}; registered: {', '.join(sorted(_EXTRACTORS))}") from None


TRAFILATURA_CALL = "trafilatura.extract(html, url=url)"


def trafilatura_extract(html: str | bytes, url: str | None) -> str | None:
    """Plain trafilatura with its default settings (the web stage does not exist yet)."""
    try:
        import trafilatura
    except ImportError as exc:
        raise ConfigError("trafilatura is not installed: pip install 'trafilatura>=2.0'") from exc
    return trafilatura.extract(html, url=url)


register_extractor("trafilatura", trafilatura_extract, call=TRAFILATURA_CALL, package="trafilatura")

SCICURATE_CALL = ("parsers.html_extract.extract_html(body, url, ExtractConfig()), then domain line dedup "
                  "(dedup.lines, LineDedupConfig()) over each registered domain's pages")


def scicurate_extract(html: str | bytes, url: str | None) -> str | None:
    """One page through `run web`'s extraction (no line dedup: that needs the page's domain)."""
    from scicurate.parsers.html_extract import ExtractConfig, Extracted, extract_html

    body = html.encode("utf-8") if isinstance(html, str) else html
    result = extract_html(body, url or "", ExtractConfig())
    return result.text if isinstance(result, Extracted) else None


def scicurate_extract_batch(items: list[tuple[str, str | bytes, str | None]]) -> dict[str, str | None]:
    """`run web`'s text: extraction, then the lines recurring across a registered domain's pages
    removed, exactly as the pipeline's DomainLineDedup stage does (same pure core)."""
    from scicurate.dedup.lines import LineDedupConfig, boilerplate_lines, page_line_keys, strip_lines
    from scicurate.parsers.web_input import registered_domain

    config = LineDedupConfig()
    texts = {key: scicurate_extract(html, url) for key, html, url in items}
    by_domain: dict[str, list[str]] = {}
    for key, _html, url in items:
        if texts[key] is not None:
            by_domain.setdefault(registered_domain(url or ""), []).append(key)
    for domain, keys in by_domain.items():
        if not domain:
            continue
        common = boilerplate_lines([page_line_keys(texts[k] or "", config) for k in keys], len(keys), config)
        for k in keys:
            texts[k] = strip_lines(texts[k] or "", common, config)[0]
    return texts


register_extractor("scicurate", scicurate_extract, call=SCICURATE_CALL, package="scicurate",
                   extract_batch=scicurate_extract_batch)


# ---- scrapinghub: token-shingle precision / recall ----------------------------------------------

_TOKEN = re.compile(r"\w+", re.UNICODE)


def tokenize(text: str | None) -> list[str]:
    """Word tokens as the benchmark takes them: maximal ``\\w+`` runs, case kept."""
    return _TOKEN.findall(text or "")


def shingles(text: str | None, size: int = SHINGLE_SIZE) -> Counter[tuple[str, ...]]:
    """Multiset of ``size``-token windows; fewer than ``size`` tokens give one short shingle."""
    tokens = tokenize(text)
    windows = (tuple(tokens[i:i + size]) for i in range(max(1, len(tokens) - size + 1)))
    return Counter(w for w in windows if w)


@dataclass(frozen=True, slots=True)
class ShingleCounts:
    """One document's shingle TP/FP/FN, normalised to sum to 1 (all 0 when both texts are empty)."""

    tp: float
    fp: float
    fn: float

    def precision(self) -> float:
        if self.fp == self.fn == 0:
            return 1.0
        if self.tp == self.fp == 0:
            return 0.0
        return self.tp / (self.tp + self.fp)

    def recall(self) -> float:
        if self.fp == self.fn == 0:
            return 1.0
        if self.tp == self.fn == 0:
            return 0.0
        return self.tp / (self.tp + self.fn)


def shingle_counts(truth: str | None, prediction: str | None, size: int = SHINGLE_SIZE) -> ShingleCounts:
    """Shingle multiset overlap of one document: matched, extra and missing shingles, normalised."""
    true_sh, pred_sh = shingles(truth, size), shingles(prediction, size)
    tp = float(sum((true_sh & pred_sh).values()))
    fp = float(sum((pred_sh - true_sh).values()))
    fn = float(sum((true_sh - pred_sh).values()))
    total = tp + fp + fn
    if total > 0:
        tp, fp, fn = tp / total, fp / total, fn / total
    return ShingleCounts(tp, fp, fn)


def exact_match(truth: str | None, prediction: str | None) -> float:
    """1.0 when both texts have the same token list (the benchmark's "accuracy")."""
    return float(tokenize(truth) == tokenize(prediction))


def _mean(values: Sequence[float]) -> float:
    # The benchmark's statistics.mean raises on an empty list; 0.0 keeps a report printable.
    return statistics.fmean(values) if values else 0.0


def shingle_metrics(counts: Sequence[ShingleCounts]) -> dict[str, float]:
    """Macro precision (documents with predicted shingles), recall (documents with true
    shingles) and F1 of the two means."""
    precision = _mean([c.precision() for c in counts if c.tp + c.fp > 0])
    recall = _mean([c.recall() for c in counts if c.tp + c.fn > 0])
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def bootstrap_std(counts: Sequence[ShingleCounts], exact: Sequence[float],
                  n_resamples: int = N_BOOTSTRAP, seed: int = 0) -> dict[str, float]:
    """Std of precision, recall, F1 and accuracy over ``n_resamples`` document resamples with
    replacement, drawn from ``random.Random(seed)``."""
    n = len(counts)
    if n == 0 or n_resamples < 2:
        return {"precision": 0.0, "recall": 0.0, "f1": 0.0, "accuracy": 0.0}
    rng = random.Random(seed)
    values: dict[str, list[float]] = {"precision": [], "recall": [], "f1": [], "accuracy": []}
    for _ in range(n_resamples):
        idx = [rng.randint(0, n - 1) for _ in range(n)]
        for key, value in shingle_metrics([counts[i] for i in idx]).items():
            values[key].append(value)
        values["accuracy"].append(statistics.fmean(exact[i] for i in idx))
    return {key: statistics.stdev(v) for key, v in values.items()}


def score_articles(truth: Mapping[str, str | None], predictions: Mapping[str, str | None],
                   n_bootstrap: int = N_BOOTSTRAP, seed: int = 0) -> tuple[dict[str, float], dict[str, dict[str, Any]]]:
    """Score ``{id: predicted body}`` against ``{id: true body}`` (same keys, truth order).

    Returns the benchmark's metrics (precision, recall, f1, accuracy and their ``_std``) and
    per-document results.
    """
    if set(truth) != set(predictions):
        raise ValueError("prediction keys do not match ground truth")
    ids = list(truth)
    counts = [shingle_counts(truth[i], predictions[i]) for i in ids]
    exact = [exact_match(truth[i], predictions[i]) for i in ids]
    metrics = shingle_metrics(counts)
    metrics["accuracy"] = _mean(exact)
    for key, value in bootstrap_std(counts, exact, n_bootstrap, seed).items():
        metrics[f"{key}_std"] = value
    per_doc = {
        i: {"tp": c.tp, "fp": c.fp, "fn": c.fn,
            "precision": c.precision() if c.tp + c.fp > 0 else None,
            "recall": c.recall() if c.tp + c.fn > 0 else None,
            "exact": bool(e)}
        for i, c, e in zip(ids, counts, exact)
    }
    return metrics, per_doc


# ---- trafilatura: with / without snippets -------------------------------------------------------

_SPACE = re.compile(r"\s+")


def normalize_whitespace(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


@dataclass(frozen=True, slots=True)
class SnippetCounts:
    """Pooled snippet confusion counts and the scores trafilatura derives from them
    (each 0.0 when its denominator is 0)."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def __post_init__(self) -> None:
        if min(self.tp, self.fp, self.fn, self.tn) < 0:
            raise ValueError(f"negative snippet count in {self}")

    def __add__(self, other: SnippetCounts) -> SnippetCounts:
        return SnippetCounts(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn, self.tn + other.tn)

    def scores(self) -> dict[str, float]:
        tp, fp, fn, tn = self.tp, self.fp, self.fn, self.tn
        total = tp + fp + fn + tn
        return {
            "precision": tp / (tp + fp) if tp + fp else 0.0,
            "recall": tp / (tp + fn) if tp + fn else 0.0,
            "accuracy": (tp + tn) / total if total else 0.0,
            "f1": 2 * tp / (2 * tp + fp + fn) if 2 * tp + fp + fn else 0.0,
        }


def match_snippets(with_: Sequence[str], without: Sequence[str], result: str | None) -> tuple[list[str], list[str]]:
    """The "with" snippets missing from ``result`` and the "without" snippets present in it."""
    if not isinstance(result, str):
        return list(with_), []
    text = normalize_whitespace(result)
    missed = [s for s in with_ if normalize_whitespace(s) not in text]
    leaked = [s for s in without if normalize_whitespace(s) in text]
    return missed, leaked


def count_snippets(with_: Sequence[str], without: Sequence[str], result: str | None) -> SnippetCounts:
    """One page's TP/FP/FN/TN; ``result=None`` (a failed extraction) finds no snippet."""
    missed, leaked = match_snippets(with_, without, result)
    return SnippetCounts(tp=len(with_) - len(missed), fp=len(leaked), fn=len(missed), tn=len(without) - len(leaked))


# ---- ground truth and predictions ---------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ArticleTruth:
    id: str
    url: str | None
    body: str


@dataclass(frozen=True, slots=True)
class SnippetTruth:
    id: str
    url: str
    file: str
    with_: tuple[str, ...]
    without: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.file:
            raise ValueError(f"{self.id}: no HTML file named")


def read_json_or_jsonl(path: Path) -> Any:
    """A JSON document, or a list of records when the file is JSON lines."""
    text = path.read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    records = []
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{path}: line {n} is neither JSON nor JSON lines: {exc}") from None
    return records


def detect_format(data: Any) -> str:
    """``scrapinghub`` for ``{id: {"articleBody"}}``, ``snippets`` for with/without records."""
    records = list(data.values()) if isinstance(data, dict) else data if isinstance(data, list) else []
    first = next((r for r in records if isinstance(r, dict)), None)
    if first is not None and "articleBody" in first:
        return "scrapinghub"
    if first is not None and "with" in first and "without" in first:
        return "snippets"
    raise ConfigError("cannot tell the ground-truth format (no articleBody, no with/without); pass --format")


def parse_articles(data: Any) -> list[ArticleTruth]:
    if not isinstance(data, dict):
        raise ConfigError("scrapinghub ground truth must be a JSON object {id: {articleBody, url}}")
    return [ArticleTruth(str(k), v.get("url"), v.get("articleBody") or "") for k, v in data.items()]


def parse_snippets(data: Any) -> list[SnippetTruth]:
    """evaldata.json (``{url: {file, with, without}}``) or JSONL (``local_file``, ``url``, ...)."""
    if isinstance(data, dict):
        return [SnippetTruth(url, url, v.get("file", ""), tuple(v["with"]), tuple(v["without"]))
                for url, v in data.items()]
    if isinstance(data, list):
        out = []
        for r in data:
            key = r.get("orig_key") or r["url"]
            out.append(SnippetTruth(key, r["url"], r.get("local_file") or r.get("file", ""),
                                    tuple(r["with"]), tuple(r["without"])))
        return out
    raise ConfigError("snippet ground truth must be a JSON object or JSON lines")


def load_predictions(path: Path) -> dict[str, str | None]:
    """``{id: text}`` JSON, the benchmark's ``{id: {"articleBody": text}}``, or JSONL of ``{id, text}``."""
    data = read_json_or_jsonl(path)
    if isinstance(data, dict):
        return {str(k): (v.get("articleBody") if isinstance(v, dict) else v) for k, v in data.items()}
    if isinstance(data, list):
        try:
            return {str(r["id"]): r.get("text") for r in data}
        except (KeyError, TypeError, AttributeError):
            raise ConfigError(f"{path}: JSON lines predictions need an 'id' and a 'text' field") from None
    raise ConfigError(f"{path}: predictions must be a JSON object or JSON lines")


def resolve_html(html_dir: Path, relative: str) -> Path | None:
    """The HTML file named ``relative`` under ``html_dir``: tried whole, then without its leading
    folders (JSONL truth names files relative to the corpus root), then under trafilatura's own
    ``cache/`` and ``eval/`` folders. None when absent."""
    parts = PurePosixPath(relative.replace("\\", "/")).parts
    if not parts or ".." in parts or parts[0] == "/":
        return None
    candidates = [html_dir.joinpath(*parts[i:]) for i in range(len(parts))]
    candidates += [html_dir / sub / parts[-1] for sub in ("cache", "eval")]
    return next((p for p in candidates if p.is_file()), None)


def article_html_path(html_dir: Path, item_id: str) -> Path | None:
    for name in (f"{item_id}.html.gz", f"{item_id}.html"):
        if (html_dir / name).is_file():
            return html_dir / name
    return None


def read_article_html(path: Path) -> str | bytes:
    """Benchmark pages are gzip-compressed UTF-8; undecodable bytes go to the extractor as bytes."""
    raw = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw


# ---- running one extractor over the pages -------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Prediction:
    """One page's text and how it was obtained: ok, empty (None or blank), or error."""

    text: str | None
    status: str
    error: str = ""

    def __post_init__(self) -> None:
        if self.status not in ("ok", "empty", "error"):
            raise ValueError(f"unknown prediction status {self.status!r}")


def _extract(extractor: WebExtractor, html: str | bytes, url: str | None) -> Prediction:
    try:
        text = extractor.extract(html, url)
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - a page that breaks the extractor is a miss, not a crash
        return Prediction(None, "error", f"{type(exc).__name__}: {exc}")
    return _given(text)


def _given(text: str | None) -> Prediction:
    return Prediction(text, "ok" if isinstance(text, str) and text.strip() else "empty")


def _require_predictions(predictions: Mapping[str, str | None], ids: Sequence[str], path: Path) -> None:
    missing = [i for i in ids if i not in predictions]
    if missing:
        raise ConfigError(f"{path}: no prediction for {len(missing)} of {len(ids)} documents "
                          f"(first: {', '.join(missing[:3])})")


# ---- the command --------------------------------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--html", required=True, help="folder of the HTML pages")
    parser.add_argument("--truth", required=True, help="ground-truth file (scrapinghub JSON, evaldata JSON or JSONL)")
    parser.add_argument("--format", choices=("auto", *FORMATS), default="auto",
                        help="ground-truth format (default: detected from the file)")
    parser.add_argument("--predictions", help="score this {id: text} JSON / {id, text} JSONL instead of extracting")
    parser.add_argument("--extractor", default="trafilatura", help="registered web extractor (default: trafilatura)")
    parser.add_argument("--limit", type=int, help="score only the first N documents that have HTML")
    parser.add_argument("--n-bootstrap", type=int, default=N_BOOTSTRAP,
                        help=f"bootstrap resamples for the scrapinghub std (default {N_BOOTSTRAP})")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")


def run(args: argparse.Namespace) -> EvalReport:
    """Extract (or read) the main text of every page that has HTML and score it in the truth's format."""
    html_dir, truth_path = Path(args.html), Path(args.truth)
    if not html_dir.is_dir():
        raise ConfigError(f"--html {html_dir} is not a folder")
    if not truth_path.is_file():
        raise ConfigError(f"--truth {truth_path} does not exist")
    limit = getattr(args, "limit", None)
    if limit is not None and limit < 1:
        raise ConfigError("--limit must be at least 1")
    data = read_json_or_jsonl(truth_path)
    fmt = getattr(args, "format", "auto") or "auto"
    if fmt == "auto":
        fmt = detect_format(data)
    predictions_path = getattr(args, "predictions", None)
    predictions = load_predictions(Path(predictions_path)) if predictions_path else None
    extractor = None if predictions is not None else get_extractor(getattr(args, "extractor", None) or "trafilatura")
    source: dict[str, Any] = {"format": fmt, "truth": str(truth_path), "html": str(html_dir)}
    if extractor is not None:
        source |= {"extractor": extractor.name, "extractor_call": extractor.call,
                   f"{extractor.package or extractor.name}_version": extractor.version()}
    else:
        source |= {"extractor": "predictions", "predictions": str(predictions_path)}
    common = dict(html_dir=html_dir, limit=limit, extractor=extractor, predictions=predictions,
                  predictions_path=Path(predictions_path) if predictions_path else None, source=source)
    if fmt == "scrapinghub":
        return _run_articles(parse_articles(data), n_bootstrap=getattr(args, "n_bootstrap", N_BOOTSTRAP),
                             seed=getattr(args, "seed", 0), **common)
    if fmt == "snippets":
        return _run_snippets(parse_snippets(data), **common)
    raise ConfigError(f"unknown format {fmt!r}; one of auto, {', '.join(FORMATS)}")


def _select(items: Sequence[Any], locate: Callable[[Any], Path | None], limit: int | None
            ) -> tuple[list[tuple[Any, Path]], list[Any]]:
    present, skipped = [], []
    for item in items:
        if limit is not None and len(present) >= limit:
            break
        path = locate(item)
        if path is None:
            skipped.append(item)
        else:
            present.append((item, path))
    return present, skipped


def _predict_all(pairs: Sequence[tuple[Any, Path]], read: Callable[[Path], str | bytes],
                 extractor: WebExtractor | None, predictions: Mapping[str, str | None] | None,
                 predictions_path: Path | None, key: Callable[[Any], str]) -> tuple[dict[str, Prediction], float]:
    if predictions is not None:
        assert predictions_path is not None
        _require_predictions(predictions, [key(item) for item, _ in pairs], predictions_path)
        return {key(item): _given(predictions[key(item)]) for item, _ in pairs}, 0.0
    assert extractor is not None
    out: dict[str, Prediction] = {}
    seconds = 0.0
    if extractor.extract_batch is not None:
        items = [(key(item), read(path), item.url) for item, path in pairs]
        start = time.perf_counter()
        try:
            texts = extractor.extract_batch(items)
        except ConfigError:
            raise
        except Exception as exc:  # noqa: BLE001 - reported per page, like a per-page failure
            return {k: Prediction(None, "error", f"{type(exc).__name__}: {exc}") for k, _, _ in items}, 0.0
        return {k: _given(texts.get(k)) for k, _, _ in items}, time.perf_counter() - start
    for item, path in pairs:
        html = read(path)
        start = time.perf_counter()
        out[key(item)] = _extract(extractor, html, item.url)
        seconds += time.perf_counter() - start
    return out, seconds


def _outcomes(preds: Mapping[str, Prediction]) -> dict[str, int]:
    statuses = Counter(p.status for p in preds.values())
    return {"empty_predictions": statuses["empty"], "extraction_errors": statuses["error"]}


def _run_articles(items: list[ArticleTruth], *, html_dir: Path, limit: int | None, extractor: WebExtractor | None,
                  predictions: Mapping[str, str | None] | None, predictions_path: Path | None,
                  source: dict[str, Any], n_bootstrap: int, seed: int) -> EvalReport:
    pairs, skipped = _select(items, lambda it: article_html_path(html_dir, it.id), limit)
    if not pairs:
        raise ConfigError(f"no HTML for any of the {len(items)} documents under {html_dir} ({{id}}.html.gz)")
    preds, seconds = _predict_all(pairs, read_article_html, extractor, predictions, predictions_path, lambda it: it.id)
    truth = {it.id: it.body for it, _ in pairs}
    metrics, per_doc = score_articles(truth, {i: p.text for i, p in preds.items()}, n_bootstrap, seed)
    for i, p in preds.items():
        per_doc[i] |= {"status": p.status, **({"error": p.error} if p.error else {})}
    summary = source | {
        "documents": len(pairs), "skipped_missing_html": len(skipped), **_outcomes(preds),
        "precision": metrics["precision"], "recall": metrics["recall"], "f1": metrics["f1"],
        "accuracy": metrics["accuracy"], "n_bootstrap": n_bootstrap, "seed": seed,
    }
    if extractor is not None:
        summary["extract_seconds"] = round(seconds, 2)
    rows = tuple({"metric": m, "value": metrics[m], "bootstrap_std": metrics[f"{m}_std"]}
                 for m in ("precision", "recall", "f1", "accuracy"))
    notes = (
        f"scrapinghub evaluate.py: \\w+ tokens, {SHINGLE_SIZE}-token shingles, per-document TP/FP/FN normalised "
        "to sum 1; precision averaged over documents with a non-empty prediction, recall over documents "
        "with a non-empty truth, F1 from the two means; accuracy = identical token lists",
        f"bootstrap_std: std over {n_bootstrap} resamples of documents, random.Random({seed})",
    )
    if skipped:
        notes += (f"{len(skipped)} documents skipped: no {{id}}.html.gz or {{id}}.html under {html_dir}",)
    return EvalReport(name="web extraction (scrapinghub article-extraction-benchmark)", summary=summary,
                      columns=("metric", "value", "bootstrap_std"), rows=rows, notes=notes,
                      details={"documents": per_doc, "skipped": [it.id for it in skipped]})


def _run_snippets(items: list[SnippetTruth], *, html_dir: Path, limit: int | None, extractor: WebExtractor | None,
                  predictions: Mapping[str, str | None] | None, predictions_path: Path | None,
                  source: dict[str, Any]) -> EvalReport:
    pairs, skipped = _select(items, lambda it: resolve_html(html_dir, it.file), limit)
    if not pairs:
        raise ConfigError(f"none of the {len(items)} pages' HTML files is under {html_dir}")
    preds, seconds = _predict_all(pairs, Path.read_bytes, extractor, predictions, predictions_path, lambda it: it.id)
    total, nothing = SnippetCounts(), SnippetCounts()
    per_doc: dict[str, dict[str, Any]] = {}
    for item, path in pairs:
        p = preds[item.id]
        missed, leaked = match_snippets(item.with_, item.without, p.text)
        counts = SnippetCounts(len(item.with_) - len(missed), len(leaked), len(missed), len(item.without) - len(leaked))
        total += counts
        nothing += count_snippets(item.with_, item.without, None)
        per_doc[item.id] = {"file": str(path), "tp": counts.tp, "fp": counts.fp, "fn": counts.fn, "tn": counts.tn,
                            "missed_with": missed, "found_without": leaked, "status": p.status,
                            **({"error": p.error} if p.error else {})}
    scores = total.scores()
    summary = source | {
        "documents": len(pairs), "skipped_missing_file": len(skipped), **_outcomes(preds),
        "tp": total.tp, "fp": total.fp, "fn": total.fn, "tn": total.tn, **scores,
    }
    if extractor is not None:
        summary["extract_seconds"] = round(seconds, 2)
    columns = ("run", "tp", "fp", "fn", "tn", "precision", "recall", "accuracy", "f1")
    rows = tuple({"run": name, "tp": c.tp, "fp": c.fp, "fn": c.fn, "tn": c.tn, **c.scores()}
                 for name, c in ((source["extractor"], total), ("nothing (empty output)", nothing)))
    notes = (
        "trafilatura tests/eval_common.py: a snippet counts as found when, after collapsing whitespace runs "
        "to one space, it is a substring of the extraction; a failed extraction finds nothing; scores "
        "over the pooled counts, F1 = 2TP/(2TP+FP+FN)",
        "trafilatura's own benchmark calls extract(..., include_comments=False, include_tables=True, "
        "include_formatting=False); the default call here keeps include_comments=True",
    )
    if skipped:
        notes += (f"{len(skipped)} of {len(items)} pages skipped: HTML file not under {html_dir}",)
    return EvalReport(name="web extraction (trafilatura with/without snippets)", summary=summary,
                      columns=columns, rows=rows, notes=notes,
                      details={"documents": per_doc, "skipped": [{"id": it.id, "file": it.file} for it in skipped]})


register(EvalCommand(
    "web",
    "score web main-text extraction: scrapinghub article benchmark (shingle P/R/F1) or "
    "trafilatura with/without snippets",
    add_arguments,
    run,
))
