"""`scicurate eval web`: both scorers on hand-made ground truth whose right answers are known,
the file handling (gzip, JSONL paths, predictions), the extractor registry, one real
trafilatura run on a committed page, and the development corpus when it is present."""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path

import pytest

from scicurate.config import ConfigError
from scicurate.evals import _REGISTRY
from scicurate.evals import web

from conftest import FIXTURES, corpus_dir

EVAL_WEB = FIXTURES / "eval_web"
ARTICLE_URL = "https://example.org/news/slow-diffusion"

SEVEN = "t1 t2 t3 t4 t5 t6 t7"          # 4 shingles of 4 tokens
FIRST_FIVE = "t1 t2 t3 t4 t5"           # the first 2 of them


def namespace(**kw) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    web.add_arguments(parser)
    args = parser.parse_args(["--html", str(kw.pop("html")), "--truth", str(kw.pop("truth"))])
    for key, value in kw.items():
        setattr(args, key, value)
    return args


@pytest.fixture
def fake_extractors(monkeypatch):
    """A private copy of the registry, so test extractors never leak into other tests."""
    monkeypatch.setattr(web, "_EXTRACTORS", dict(web._EXTRACTORS))
    return web._EXTRACTORS


# ---- scrapinghub scorer -----------------------------------------------------------------------

def test_tokens_and_shingles_follow_the_benchmark():
    assert web.tokenize("Hello, world! it's 3.5") == ["Hello", "world", "it", "s", "3", "5"]
    assert web.tokenize(None) == []
    assert web.shingles("a b c d e") == {("a", "b", "c", "d"): 1, ("b", "c", "d", "e"): 1}
    assert web.shingles("a b") == {("a", "b"): 1}        # short text: one short shingle
    assert web.shingles("  ,; ") == {}                   # no tokens: no shingle
    assert web.shingles("x x x x x x") == {("x",) * 4: 3}


def test_perfect_extraction_scores_one():
    truth = {"a": SEVEN, "b": "Another article body with a few words"}
    metrics, per_doc = web.score_articles(truth, dict(truth), n_bootstrap=50)
    for key in ("precision", "recall", "f1", "accuracy"):
        assert metrics[key] == 1.0
        assert metrics[f"{key}_std"] == 0.0
    assert per_doc["a"] == {"tp": 1.0, "fp": 0.0, "fn": 0.0, "precision": 1.0, "recall": 1.0, "exact": True}


def test_half_the_shingles_gives_recall_half_and_f1_two_thirds():
    c = web.shingle_counts(SEVEN, FIRST_FIVE)
    assert (c.tp, c.fp, c.fn) == (0.5, 0.0, 0.5)        # 2 matched, 2 missing, normalised
    metrics, _ = web.score_articles({"a": SEVEN}, {"a": FIRST_FIVE}, n_bootstrap=10)
    assert metrics["precision"] == 1.0
    assert metrics["recall"] == 0.5
    assert metrics["f1"] == pytest.approx(2 / 3)
    assert metrics["accuracy"] == 0.0


def test_extra_text_lowers_precision_only():
    metrics, _ = web.score_articles({"a": FIRST_FIVE}, {"a": SEVEN}, n_bootstrap=10)
    assert (metrics["precision"], metrics["recall"]) == (0.5, 1.0)


def test_empty_prediction_is_left_out_of_precision_and_counts_zero_recall():
    truth = {"good": SEVEN, "empty": SEVEN}
    metrics, per_doc = web.score_articles(truth, {"good": SEVEN, "empty": None}, n_bootstrap=10)
    assert metrics["precision"] == 1.0                    # mean over the one non-empty prediction
    assert metrics["recall"] == 0.5                       # (1 + 0) / 2
    assert metrics["f1"] == pytest.approx(2 / 3)
    assert per_doc["empty"]["precision"] is None and per_doc["empty"]["recall"] == 0.0


def test_empty_truth_is_left_out_of_recall_and_both_empty_is_exact():
    truth = {"good": SEVEN, "no_body": "", "both_empty": ""}
    metrics, per_doc = web.score_articles(truth, {"good": SEVEN, "no_body": "spam text", "both_empty": ""},
                                          n_bootstrap=10)
    assert metrics["precision"] == 0.5                    # (1 + 0) / 2: both_empty has no shingles
    assert metrics["recall"] == 1.0                       # only "good" has true shingles
    assert metrics["accuracy"] == pytest.approx(2 / 3)    # good and both_empty match token for token
    assert per_doc["both_empty"] == {"tp": 0.0, "fp": 0.0, "fn": 0.0, "precision": None, "recall": None,
                                     "exact": True}


def test_bootstrap_std_is_seeded():
    truth = {str(i): SEVEN for i in range(20)}
    preds = {str(i): SEVEN if i % 2 else FIRST_FIVE for i in range(20)}
    a, _ = web.score_articles(truth, preds, n_bootstrap=200, seed=1)
    b, _ = web.score_articles(truth, preds, n_bootstrap=200, seed=1)
    c, _ = web.score_articles(truth, preds, n_bootstrap=200, seed=2)
    assert a == b
    assert a["recall_std"] > 0 and a["recall_std"] != c["recall_std"]
    assert a["precision_std"] == 0.0                      # every prediction is all-correct


def test_mismatched_keys_are_refused():
    with pytest.raises(ValueError, match="keys"):
        web.score_articles({"a": SEVEN}, {"b": SEVEN})


# ---- snippet scorer ---------------------------------------------------------------------------

def test_three_of_four_snippets_right():
    counts = web.count_snippets(["alpha beta", "gamma"], ["delta", "epsilon"], "alpha\n  beta gamma delta")
    assert counts == web.SnippetCounts(tp=2, fp=1, fn=0, tn=1)
    scores = counts.scores()
    assert scores["accuracy"] == 0.75
    assert scores["precision"] == pytest.approx(2 / 3)
    assert scores["recall"] == 1.0
    assert scores["f1"] == pytest.approx(0.8)


def test_whitespace_is_normalised_on_both_sides_but_nothing_else():
    assert web.count_snippets(["a  b\tc"], [], "x a b\nc y").tp == 1
    assert web.count_snippets(["Alpha"], [], "alpha").tp == 0     # case matters
    assert web.count_snippets(["a b"], [], "ab").tp == 0          # spaces are not dropped


@pytest.mark.parametrize("result", [None, ""])
def test_failed_or_empty_extraction_finds_nothing(result):
    counts = web.count_snippets(["a", "b"], ["c", "d", "e"], result)
    assert counts == web.SnippetCounts(tp=0, fp=0, fn=2, tn=3)
    assert counts.scores() == {"precision": 0.0, "recall": 0.0, "accuracy": 0.6, "f1": 0.0}


def test_snippet_counts_pool():
    total = web.SnippetCounts(1, 2, 3, 4) + web.SnippetCounts(10, 20, 30, 40)
    assert total == web.SnippetCounts(11, 22, 33, 44)


# ---- registry and command ---------------------------------------------------------------------

def test_web_is_a_registered_eval_with_its_flags():
    assert _REGISTRY["web"].run is web.run
    parser = argparse.ArgumentParser()
    _REGISTRY["web"].add_arguments(parser)
    args = parser.parse_args(["--html", "d", "--truth", "t", "--format", "snippets", "--limit", "3"])
    assert (args.format, args.limit, args.extractor, args.predictions) == ("snippets", 3, "trafilatura", None)


def test_extractor_registry(fake_extractors):
    assert web.get_extractor("trafilatura").call == "trafilatura.extract(html, url=url)"
    fn = lambda html, url: "text"  # noqa: E731
    made = web.register_extractor("fake", fn, call="fake(html)")
    assert web.get_extractor("fake") is made and "fake" in web.extractors()
    web.register_extractor("fake", fn, call="fake(html)")            # same one again: fine
    with pytest.raises(ValueError, match="twice"):
        web.register_extractor("fake", lambda html, url: "other")
    with pytest.raises(ConfigError, match="registered: fake, scicurate, trafilatura"):
        web.get_extractor("nope")


def _articles(tmp_path: Path) -> tuple[Path, Path]:
    """Three benchmark documents: one gzip page, one plain page, one without HTML."""
    html = tmp_path / "html"
    html.mkdir()
    with gzip.open(html / "gz.html.gz", "wt", encoding="utf-8") as fh:
        fh.write("<html><body><p>PAGE-GZ</p></body></html>")
    (html / "plain.html").write_text("<html><body><p>PAGE-PLAIN</p></body></html>", encoding="utf-8")
    truth = tmp_path / "ground-truth.json"
    truth.write_text(json.dumps({
        "gz": {"articleBody": SEVEN, "url": "https://a.example/gz"},
        "plain": {"articleBody": SEVEN, "url": "https://a.example/plain"},
        "absent": {"articleBody": SEVEN, "url": "https://a.example/absent"},
    }))
    return html, truth


def test_scrapinghub_run_reads_gzip_and_records_failures(tmp_path, fake_extractors):
    html, truth = _articles(tmp_path)
    seen = {}

    def fake(page, url):
        seen[url] = page
        if "PAGE-PLAIN" in page:
            raise RuntimeError("boom")
        return SEVEN

    web.register_extractor("fake", fake, call="fake(html, url)")
    report = web.run(namespace(html=html, truth=truth, extractor="fake", n_bootstrap=20))
    assert "PAGE-GZ" in seen["https://a.example/gz"]            # gunzipped, decoded text
    s = report.summary
    assert (s["format"], s["documents"], s["skipped_missing_html"], s["extraction_errors"]) == \
        ("scrapinghub", 2, 1, 1)
    assert (s["precision"], s["recall"]) == (1.0, 0.5)           # the failed page is an empty prediction
    assert s["extractor_call"] == "fake(html, url)"
    docs = report.details["documents"]
    assert docs["plain"]["status"] == "error" and "RuntimeError: boom" in docs["plain"]["error"]
    assert report.details["skipped"] == ["absent"]
    assert [r["metric"] for r in report.rows] == ["precision", "recall", "f1", "accuracy"]
    assert "# web extraction" in report.to_text()


@pytest.mark.parametrize("kind", ["json", "benchmark", "jsonl"])
def test_scrapinghub_predictions_file(tmp_path, kind):
    html, truth = _articles(tmp_path)
    preds = tmp_path / "preds"
    if kind == "json":
        preds.write_text(json.dumps({"gz": SEVEN, "plain": FIRST_FIVE}))
    elif kind == "benchmark":
        preds.write_text(json.dumps({"gz": {"articleBody": SEVEN}, "plain": {"articleBody": FIRST_FIVE}}))
    else:
        preds.write_text(json.dumps({"id": "gz", "text": SEVEN}) + "\n" + json.dumps({"id": "plain", "text": FIRST_FIVE}))
    report = web.run(namespace(html=html, truth=truth, predictions=str(preds), n_bootstrap=20))
    assert report.summary["extractor"] == "predictions"
    assert report.summary["recall"] == 0.75 and report.summary["precision"] == 1.0


def test_predictions_must_cover_every_scored_document(tmp_path):
    html, truth = _articles(tmp_path)
    preds = tmp_path / "preds.json"
    preds.write_text(json.dumps({"gz": SEVEN}))
    with pytest.raises(ConfigError, match="no prediction for 1 of 2 documents"):
        web.run(namespace(html=html, truth=truth, predictions=str(preds)))
    assert web.run(namespace(html=html, truth=truth, predictions=str(preds), limit=1)).summary["documents"] == 1


def test_snippets_jsonl_with_corpus_relative_paths(tmp_path, fake_extractors):
    pages = tmp_path / "corpus" / "html" / "set" / "pages"
    pages.mkdir(parents=True)
    (pages / "one.html").write_text("<p>x</p>")
    records = [
        {"local_file": "html/set/pages/one.html", "url": "https://one", "with": ["keep this", "and this"],
         "without": ["drop this", "drop that"]},
        {"local_file": "html/set/pages/missing.html", "url": "https://two", "with": ["a"], "without": ["b"]},
    ]
    truth = tmp_path / "subset.jsonl"
    truth.write_text("\n".join(json.dumps(r) for r in records))
    web.register_extractor("fake", lambda html, url: "keep\nthis, and this, drop that")
    report = web.run(namespace(html=tmp_path / "corpus" / "html" / "set", truth=truth, extractor="fake"))
    s = report.summary
    assert (s["format"], s["documents"], s["skipped_missing_file"]) == ("snippets", 1, 1)
    assert (s["tp"], s["fp"], s["fn"], s["tn"], s["accuracy"]) == (2, 1, 0, 1, 0.75)
    assert report.details["documents"]["https://one"]["found_without"] == ["drop that"]
    assert report.rows[1]["run"].startswith("nothing") and report.rows[1]["tn"] == 2


def test_format_detection_and_bad_truth(tmp_path):
    assert web.detect_format({"x": {"articleBody": "a"}}) == "scrapinghub"
    assert web.detect_format({"u": {"file": "f", "with": [], "without": []}}) == "snippets"
    assert web.detect_format([{"local_file": "f", "url": "u", "with": [], "without": []}]) == "snippets"
    with pytest.raises(ConfigError, match="--format"):
        web.detect_format({"x": {"text": "a"}})
    with pytest.raises(ConfigError, match="is not a folder"):
        web.run(namespace(html=tmp_path / "nope", truth=tmp_path / "t.json"))


# ---- real trafilatura on a committed page (no network) ----------------------------------------

def test_real_trafilatura_on_fixture_page(tmp_path):
    report = web.run(namespace(html=EVAL_WEB, truth=EVAL_WEB / "snippets.json"))
    s = report.summary
    assert s["trafilatura_version"] and s["extractor_call"] == "trafilatura.extract(html, url=url)"
    assert (s["documents"], s["tp"], s["fp"], s["fn"], s["tn"]) == (1, 3, 0, 0, 3)

    body = ("Slow diffusion in glassy polymers. Researchers at a fixture laboratory measured how small solvent "
            "molecules move through polystyrene films held just below the glass transition temperature.")
    with gzip.open(tmp_path / "art.html.gz", "wb") as fh:
        fh.write((EVAL_WEB / "article.html").read_bytes())
    truth = tmp_path / "gt.json"
    truth.write_text(json.dumps({"art": {"articleBody": body, "url": ARTICLE_URL}}))
    article = web.run(namespace(html=tmp_path, truth=truth, n_bootstrap=10)).summary
    assert article["recall"] == 1.0                               # the whole first paragraph is there
    assert 0.1 < article["precision"] < 0.5                       # and two more paragraphs beside it


# ---- development corpus (tier d) --------------------------------------------------------------

@pytest.mark.corpus
def test_trafilatura_eval_corpus_files_resolve(fake_extractors):
    root = corpus_dir() / "html" / "trafilatura_eval"
    if not (root / "evaldata_full.json").is_file():
        pytest.skip(f"trafilatura_eval corpus not found at {root}")
    web.register_extractor("nothing", lambda html, url: "")
    subset = web.run(namespace(html=root, truth=root / "subset_groundtruth.jsonl", extractor="nothing")).summary
    full = web.run(namespace(html=root / "pages", truth=root / "evaldata_full.json", extractor="nothing")).summary
    assert (subset["documents"], subset["skipped_missing_file"]) == (154, 0)
    assert (full["documents"], full["skipped_missing_file"]) == (154, 836)
    assert subset["fn"] == full["fn"] and subset["tn"] == full["tn"] and subset["tp"] == 0
