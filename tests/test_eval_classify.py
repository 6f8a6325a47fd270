"""`scicurate eval classify` on tiny hand-worked ground truth: every metric has a case it can fail.

Worked 3-class example (labels a, b, c), true -> predicted:
    a a a a b b c  ->  a a a b b a a
    confusion (rows true, cols predicted a b c): a [3 1 0], b [1 1 0], c [1 0 0]
    a: TP 3, support 4, predicted 5 -> P 3/5, R 3/4, F1 6/9
    b: TP 1, support 2, predicted 2 -> P 1/2, R 1/2, F1 1/2
    c: TP 0, support 1, predicted 0 -> P 0,   R 0,   F1 0
    macro-F1 (6/9 + 1/2 + 0) / 3 = 7/18; accuracy 4/7
"""

import argparse
import json
import struct
from pathlib import Path

import pytest

from scicurate.classifiers import registry
from scicurate.config import ConfigError
from scicurate.evals import EvalReport, classify
from scicurate.evals.classify import (
    ABSTAIN, MISSING, LabeledText, Prediction, average_precision, evaluate, group_metrics,
    precision_recall_curve,
)

from conftest import corpus_dir

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scicurate eval classify")
    classify.COMMAND.add_arguments(parser)
    return parser.parse_args(list(argv))


def labels(pairs, split="s"):
    return [LabeledText(f"{split}{i}", domain, split, f"text {i}") for i, domain in enumerate(pairs)]


def preds(items, domains, scores=None):
    return {item.id: Prediction(item.id, d, None if scores is None else scores[i])
            for i, (item, d) in enumerate(zip(items, domains))}


# --- classification metrics -------------------------------------------------------------------


def test_perfect_predictions_score_one_everywhere():
    items = labels("aaabbc")
    g = evaluate(items, preds(items, "aaabbc")).groups["all"]
    for m in g.per_label.values():
        assert (m.precision, m.recall, m.f1) == (1.0, 1.0, 1.0)
    assert g.macro_f1 == 1.0 and g.accuracy == 1.0
    assert g.confusion == ((3, 0, 0), (0, 2, 0), (0, 0, 1))


def test_worked_three_class_example_exact():
    g = group_metrics("s", list("aaaabbc"), list("aaabbaa"))
    a, b, c = (g.per_label[x] for x in "abc")
    assert (a.tp, a.support, a.predicted) == (3, 4, 5)
    assert a.precision == 3 / 5 and a.recall == 3 / 4 and a.f1 == pytest.approx(6 / 9, abs=1e-15)
    assert (b.precision, b.recall, b.f1) == (1 / 2, 1 / 2, 1 / 2)
    assert (c.support, c.predicted, c.precision, c.recall, c.f1) == (1, 0, 0.0, 0.0, 0.0)
    assert g.macro_f1 == pytest.approx(7 / 18, abs=1e-15)
    assert g.accuracy == 4 / 7 and g.correct == 4
    assert g.confusion_labels == ("a", "b", "c")
    assert g.confusion == ((3, 1, 0), (1, 1, 0), (1, 0, 0))


def test_precision_two_thirds_case():
    # a a a b b c -> a a b b c a: a P 2/3 R 2/3, b P 1/2 R 1/2, c P 0 R 0; macro 7/18
    g = group_metrics("s", list("aaabbc"), list("aabbca"))
    assert g.per_label["a"].precision == 2 / 3 and g.per_label["a"].recall == 2 / 3
    assert g.per_label["c"].predicted == 1 and g.per_label["c"].f1 == 0.0
    assert g.macro_f1 == pytest.approx(7 / 18, abs=1e-15)
    assert g.confusion == ((2, 1, 0), (0, 1, 1), (1, 0, 0))


def test_macro_average_includes_predicted_only_labels():
    g = group_metrics("s", ["a", "b"], ["a", "d"])
    assert g.macro_labels == ("a", "b", "d")
    assert g.per_label["d"].support == 0 and g.per_label["d"].precision == 0.0
    assert g.macro_f1 == pytest.approx(1 / 3, abs=1e-15)      # over true labels only it would be 1/2


def test_missing_prediction_is_wrong_reported_and_outside_the_macro_average():
    items = labels("ab")
    ev = evaluate(items, {"s0": Prediction("s0", "a")})
    g = ev.groups["all"]
    assert ev.missing_ids == ("s1",)
    assert g.missing == 1 and g.accuracy == 0.5
    assert g.macro_labels == ("a", "b")
    assert g.macro_f1 == 0.5                                   # (1 + 0) / 2, <missing> not a label
    assert g.per_label["b"].recall == 0.0
    assert g.confusion_labels == (MISSING, "a", "b")
    assert g.confusion == ((0, 0, 0), (0, 1, 0), (1, 0, 0))


def test_unlabelled_prediction_ids_are_reported_and_ignored():
    items = labels("ab")
    p = preds(items, "ab")
    p["stray"] = Prediction("stray", "c")
    ev = evaluate(items, p)
    assert ev.unlabelled_ids == ("stray",)
    assert ev.groups["all"].macro_labels == ("a", "b") and ev.groups["all"].macro_f1 == 1.0


def test_splits_are_scored_separately_and_together():
    items = labels("ab", "s1") + labels("ab", "s2") + labels("c", "s3")
    domains = {"s10": "a", "s11": "b", "s20": "b", "s21": "a", "s30": "c"}
    ev = evaluate(items, {k: Prediction(k, v) for k, v in domains.items()})
    assert list(ev.groups) == ["s1", "s2", "s3", "all"]
    s1, s2, s3, everything = ev.groups.values()
    assert (s1.macro_f1, s1.accuracy) == (1.0, 1.0) and s1.macro_labels == ("a", "b")
    assert (s2.macro_f1, s2.accuracy) == (0.0, 0.0) and s2.confusion == ((0, 1), (1, 0))
    assert s3.macro_labels == ("c",) and s3.macro_f1 == 1.0
    # all: a and b each TP 1 of support 2, predicted 2 -> F1 1/2; c F1 1
    assert everything.per_label["a"].f1 == 0.5 and everything.per_label["b"].f1 == 0.5
    assert everything.macro_f1 == pytest.approx(2 / 3, abs=1e-15)
    assert everything.accuracy == 3 / 5


# --- average precision ------------------------------------------------------------------------


def test_average_precision_of_a_ranked_example():
    # ranked: positive, negative, positive, negative -> (1 + 2/3) / 2
    assert average_precision([True, False, True, False], [0.9, 0.8, 0.7, 0.6]) == pytest.approx(5 / 6, abs=1e-15)
    assert average_precision([False, True, False, True], [0.9, 0.8, 0.7, 0.6]) == pytest.approx(
        (1 / 2 + 2 / 4) / 2, abs=1e-15)
    assert average_precision([True, True, False], [0.3, 0.2, 0.1]) == 1.0


def test_tied_scores_cross_the_threshold_together():
    # A positive listed before a tied negative must not get precision 1.
    assert average_precision([True, False], [0.5, 0.5]) == 0.5
    recall, precision = precision_recall_curve([True, False, True], [0.9, 0.5, 0.5])
    assert recall == [0.0, 0.5, 1.0] and precision == [1.0, 1.0, 2 / 3]


def test_average_precision_needs_a_positive():
    with pytest.raises(ValueError):
        average_precision([False, False], [0.1, 0.2])


def test_per_domain_ap_and_missing_scores_rank_last():
    items = labels("abab")
    scores = [{"a": 0.9, "b": 0.2}, {"a": 0.8, "b": 0.9}, {"a": 0.7, "b": 0.1}, {"a": 0.6, "b": 0.8}]
    g = evaluate(items, preds(items, "abab", scores)).groups["all"]
    assert g.per_label["a"].ap == pytest.approx(5 / 6, abs=1e-15)
    assert g.per_label["b"].ap == 1.0
    assert g.mean_ap == pytest.approx(11 / 12, abs=1e-15)

    # s2 (true a) has no prediction: it ranks last for every label instead of being dropped.
    items = labels("aba")
    p = preds(items[:2], "ab", [{"a": 0.9, "b": 0.1}, {"a": 0.1, "b": 0.9}])
    g = evaluate(items, p).groups["all"]
    assert g.per_label["a"].ap == pytest.approx(1 / 2 + (1 / 2) * (2 / 3), abs=1e-15)


def test_ap_is_undefined_for_predicted_only_labels():
    items = labels("ab")
    g = evaluate(items, preds(items, "ac", [{"a": 1.0, "c": 0.5}, {"c": 1.0}])).groups["all"]
    assert g.per_label["c"].ap is None
    assert g.per_label["b"].ap == 1.0 / 2                     # b absent from scores: ties at -inf
    assert g.mean_ap == pytest.approx((1.0 + 0.5) / 2)


# --- files, command, report -------------------------------------------------------------------


@pytest.fixture
def files(tmp_path):
    lab = write_jsonl(tmp_path / "labels.jsonl", [
        {"id": "x1", "domain": "physics", "split": "in_domain", "text": "quarks"},
        {"id": "x2", "domain": "mathematics", "split": "in_domain", "text": "lemma"},
        {"id": "x3", "domain": "physics", "split": "in_domain", "text": "boson"},
        {"id": "y1", "domain": "life_science", "split": "out_of_domain", "text": "cells"},
        {"id": "y2", "domain": "earth_science", "split": "out_of_domain", "text": "glacier"},
    ])
    pred = write_jsonl(tmp_path / "pred.jsonl", [
        {"id": "x1", "domain": "physics", "scores": {"physics": 0.9, "mathematics": 0.1}},
        {"id": "x2", "domain": "physics", "scores": {"physics": 0.6, "mathematics": 0.4}},
        {"id": "x3", "scores": {"physics": 0.3, "mathematics": 0.7}},        # no domain: argmax
        {"id": "y1", "domain": "life_science", "scores": {"life_science": 0.8, "earth_science": 0.2}},
        {"id": "zz", "domain": "physics"},                                    # unlabelled
    ])                                                                        # y2 missing
    return lab, pred


def test_run_from_files_report_and_details(files):
    lab, pred = files
    report = classify.run(parse("--labels", str(lab), "--predictions", str(pred)))
    assert isinstance(report, EvalReport) and report.name == "classify"
    s = report.summary
    assert (s["labelled"], s["missing_predictions"], s["unlabelled_predictions"]) == (5, 1, 1)
    # in_domain: physics TP1 support 2 predicted 2; mathematics TP0 support 1 predicted 1 (x3)
    assert s["macro_f1.in_domain"] == pytest.approx((0.5 + 0.0) / 2)
    assert s["accuracy.in_domain"] == pytest.approx(1 / 3)
    assert s["macro_f1.out_of_domain"] == pytest.approx((1.0 + 0.0) / 2)
    assert s["accuracy.all"] == pytest.approx(2 / 5)
    rows = {(r["split"], r["domain"]): r for r in report.rows}
    assert set(rows) == {("in_domain", "mathematics"), ("in_domain", "physics"),
                         ("out_of_domain", "earth_science"), ("out_of_domain", "life_science"),
                         ("all", "earth_science"), ("all", "life_science"), ("all", "mathematics"),
                         ("all", "physics")}
    assert rows[("in_domain", "physics")]["precision"] == 0.5 and rows[("in_domain", "physics")]["support"] == 2
    assert report.columns[-1] == "ap"
    # physics in_domain: x1 0.9 (+), x2 0.6 (-), x3 0.3 (+) -> (1 + 2/3) / 2
    assert rows[("in_domain", "physics")]["ap"] == pytest.approx(5 / 6)
    d = report.details
    assert d["missing_ids"] == ["y2"] and d["unlabelled_ids"] == ["zz"]
    assert d["confusion"]["out_of_domain"] == {"labels": [MISSING, "earth_science", "life_science"],
                                              "matrix": [[0, 0, 0], [1, 0, 0], [0, 0, 1]]}
    assert d["confusion"]["in_domain"]["matrix"] == [[0, 1], [1, 1]]
    assert d["average_precision"]["in_domain"]["physics"] == pytest.approx(5 / 6)
    assert d["macro_f1_labels"]["out_of_domain"] == ["earth_science", "life_science"]
    json.dumps(report.to_json())
    text = report.to_text()
    assert "macro_f1.in_domain: 0.2500" in text and "<missing>" in text


def test_threshold_re_decides_from_scores(files):
    lab, pred = files
    report = classify.run(parse("--labels", str(lab), "--predictions", str(pred), "--threshold", "0.65"))
    # x1 physics 0.9 ok; x2 top physics 0.6 < 0.65 -> <abstain>; x3 mathematics 0.7 (wrong either way)
    cm = report.details["confusion"]["in_domain"]
    assert cm["labels"] == [ABSTAIN, "mathematics", "physics"]
    assert cm["matrix"] == [[0, 0, 0], [1, 0, 0], [0, 1, 1]]
    assert report.summary["macro_f1.in_domain"] == pytest.approx((2 / 3 + 0.0) / 2)
    assert any("1 predictions have no scores" in n for n in report.notes)     # the stray zz line


def test_plot_writes_a_png(files, tmp_path):
    lab, pred = files
    out = tmp_path / "plots" / "pr.png"
    report = classify.run(parse("--labels", str(lab), "--predictions", str(pred), "--plot", str(out)))
    data = out.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1300, 1000)               # 3 panels (2 splits + all) on a 2x2 grid
    assert len(data) > 20_000
    assert any(str(out) in n for n in report.notes)


def test_plot_without_scores_is_a_config_error(tmp_path):
    lab = write_jsonl(tmp_path / "l.jsonl", [{"id": "a", "domain": "physics", "split": "s"}])
    pred = write_jsonl(tmp_path / "p.jsonl", [{"id": "a", "domain": "physics"}])
    with pytest.raises(ConfigError, match="needs 'scores'"):
        classify.run(parse("--labels", str(lab), "--predictions", str(pred), "--plot", str(tmp_path / "x.png")))
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("line, message", [
    ("not json", "not JSON"),
    ('{"id": "a"}', "needs 'domain'"),
    ('{"id": "a", "domain": "x", "scores": {"x": "high"}}', "finite number"),
])
def test_bad_prediction_lines_name_file_and_line(tmp_path, line, message):
    lab = write_jsonl(tmp_path / "l.jsonl", [{"id": "a", "domain": "x"}])
    pred = tmp_path / "p.jsonl"
    pred.write_text('{"id": "b", "domain": "x"}\n' + line + "\n")
    with pytest.raises(ConfigError, match=rf"p\.jsonl:2: .*{message}"):
        classify.run(parse("--labels", str(lab), "--predictions", str(pred)))


def test_duplicate_label_ids_are_rejected(tmp_path):
    lab = write_jsonl(tmp_path / "l.jsonl", [{"id": "a", "domain": "x"}, {"id": "a", "domain": "y"}])
    with pytest.raises(ConfigError, match="already labelled on line 1"):
        classify.read_labels(lab)


def test_predictions_and_classifier_are_exclusive(files):
    lab, pred = files
    with pytest.raises(SystemExit):
        parse("--labels", str(lab), "--predictions", str(pred), "--classifier", "fasttext")
    with pytest.raises(SystemExit):
        parse("--labels", str(lab))


# --- classifier registry ----------------------------------------------------------------------


def test_unknown_classifier_is_a_clear_config_error(files):
    lab, _ = files
    assert registry.classifier_names() == ["recall-annotator", "recall-fasttext", "recall-smollm"]
    with pytest.raises(ConfigError) as err:
        classify.run(parse("--labels", str(lab), "--classifier", "fasttext"))
    message = str(err.value)
    assert "'fasttext'" in message and "registered: recall-annotator, recall-fasttext, recall-smollm" in message
    assert "scicurate train recall" in message


class _KeywordClassifier(registry.DomainClassifier):
    """Test double: scores 'physics' 1 when the text mentions a particle, else 'mathematics'."""

    labels = ("mathematics", "physics")

    def __init__(self, name="keyword", particles="quarks,boson"):
        self.name = name
        self.particles = particles.split(",")
        self.loaded = False

    def load(self):
        self.loaded = True

    def predict(self, texts):
        assert self.loaded, "load() must run before predict()"
        hits = [any(p in t for p in self.particles) for t in texts]
        return [{"physics": float(h), "mathematics": float(not h)} for h in hits]


def test_classifier_mode_scores_the_label_texts(files, monkeypatch):
    monkeypatch.setitem(registry._REGISTRY, "keyword", _KeywordClassifier)
    lab, _ = files
    report = classify.run(parse("--labels", str(lab), "--classifier", "keyword",
                                "--classifier-option", "particles=quarks"))
    assert report.summary["source"] == "classifier keyword"
    # x1 quarks -> physics ok; x2 -> mathematics ok; x3 boson (not a particle now) -> mathematics
    assert report.details["confusion"]["in_domain"]["matrix"] == [[1, 0], [1, 1]]
    assert report.summary["missing_predictions"] == 0
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        classify.run(parse("--labels", str(lab), "--classifier", "keyword", "--classifier-option", "oops"))


def test_registry_rejects_double_registration(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", {})
    registry.register_classifier("k", _KeywordClassifier)
    registry.register_classifier("k", _KeywordClassifier)          # same factory: idempotent
    with pytest.raises(ValueError, match="registered twice"):
        registry.register_classifier("k", lambda: _KeywordClassifier())
    assert isinstance(registry.get_classifier("k", name="k2"), _KeywordClassifier)


# --- development corpus -----------------------------------------------------------------------


@pytest.mark.corpus
def test_dev_labels_scored_against_themselves(tmp_path):
    path = corpus_dir() / "text" / "labeled_texts.dev.jsonl"
    if not path.is_file():
        pytest.skip(f"labelled texts not found at {path}")
    items = classify.read_labels(path)
    pred = write_jsonl(tmp_path / "p.jsonl", [{"id": i.id, "domain": i.domain} for i in items])
    report = classify.run(parse("--labels", str(path), "--predictions", str(pred)))
    assert {k for k in report.summary if k.startswith("macro_f1.")} == {
        "macro_f1.in_domain", "macro_f1.out_of_domain", "macro_f1.negative", "macro_f1.all"}
    assert all(report.summary[k] == 1.0 for k in report.summary if k.startswith(("macro_f1.", "accuracy.")))
    assert report.summary["labelled"] == len(items) and report.summary["missing_predictions"] == 0
