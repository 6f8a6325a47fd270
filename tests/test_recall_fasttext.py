"""classifiers/recall_fasttext: the threshold rule, and a real (tiny) fastText ova model trained,
scored, thresholded and reproduced."""

from __future__ import annotations

import json

import pytest

from scicurate.classifiers import recall_fasttext as rf
from scicurate.classifiers import taxonomy as tx
from scicurate.config import ConfigError


def test_choose_threshold_takes_the_lowest_score_that_keeps_the_precision():
    scores = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4]
    gold = [True, True, False, True, False, False]
    t = rf.choose_threshold("physics", scores, gold, target_precision=0.75)
    # cut at the positive 0.6, threshold halfway to the next score down (0.5)
    assert (t.threshold, t.predicted, t.precision, t.recall, t.met_target) == (pytest.approx(0.55), 4, 0.75, 1.0, True)
    strict = rf.choose_threshold("physics", scores, gold, target_precision=1.0)
    assert (strict.threshold, strict.recall, strict.met_target) == (pytest.approx(0.75), round(2 / 3, 4), True)
    # at least min_predicted texts must pass: the 1.0-precision cut at 2 texts is not enough
    floor = rf.choose_threshold("physics", scores, gold, target_precision=1.0, min_predicted=3)
    assert floor.met_target is False and floor.threshold == pytest.approx(0.55)   # best F1 instead, flagged
    # every validation text stays on its side of the threshold
    assert sum(s >= t.threshold for s in scores) == t.predicted


def test_choose_threshold_lets_ties_enter_together_and_handles_no_positives():
    # separable: the cut is the lowest positive, not the highest negative
    clean = rf.choose_threshold("d", [0.99, 0.98, 0.1, 0.01], [True, True, False, False], target_precision=0.9)
    assert (clean.threshold, clean.precision, clean.recall) == (pytest.approx(0.54), 1.0, 1.0)
    saturated = rf.choose_threshold("d", [1.0, 1.0, 0.2], [True, True, False], target_precision=0.9)
    assert saturated.threshold == pytest.approx(0.6)     # not 1.0: a new text at 0.999 is still recalled
    t = rf.choose_threshold("d", [0.5, 0.5, 0.5], [True, False, False], target_precision=0.5)
    assert t.met_target is False and t.predicted == 3 and t.threshold == 0.5     # cannot split a tie
    none = rf.choose_threshold("d", [0.3, 0.2], [False, False], target_precision=0.9)
    assert (none.threshold, none.support, none.met_target) == (1.0, 0, False)
    with pytest.raises(ValueError):
        rf.choose_threshold("d", [0.1], [True, False], target_precision=0.9)


def test_a_pool_prior_reweights_precision_to_the_pool_the_model_will_sweep():
    scores = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05]
    gold = [True, True, False, True, False, False, False, False, False, False]
    plain = rf.choose_threshold("d", scores, gold, target_precision=0.75)
    assert (plain.threshold, plain.recall) == (pytest.approx(0.55), 1.0)        # 3 of 4 predicted are right
    # at a 2% prior one false positive in 7 negatives swamps the positives: cut above it
    pooled = rf.choose_threshold("d", scores, gold, target_precision=0.75, prior=0.02)
    assert (pooled.threshold, pooled.recall, pooled.precision, pooled.met_target) == (
        pytest.approx(0.75), round(2 / 3, 4), 1.0, True)
    with pytest.raises(ValueError, match="outside the domain"):
        rf.choose_threshold("d", [0.9, 0.8], [True, True], target_precision=0.9, prior=0.02)
    with pytest.raises(ConfigError):
        rf.RecallConfig(pool_prior=1.0)


def test_labels_collapse_to_targets_and_other():
    tree = tx.default()
    assert rf.to_label("physics.condensed_matter", tree) == "physics"
    assert rf.to_label("life_science", tree) == "life_science"
    for other in ("non_science", "other_non_target", "computer_science", "news_lifestyle.sport"):
        assert rf.to_label(other, tree) == rf.OTHER


def test_config_is_validated():
    for bad in ({"dim": 0}, {"lr": 0.0}, {"target_precision": 1.5}, {"min_predicted": 0}):
        with pytest.raises(ConfigError):
            rf.RecallConfig(**bad)
    assert rf.RecallConfig().fasttext_params()["loss"] == "ova"


_WORDS = {
    "mathematics": "theorem lemma proof manifold prime integer algebra topology conjecture",
    "physics": "quark boson spin lattice photon magnetic field energy collider plasma",
    "life_science": "protein gene cell patient tumour enzyme mutation clinical tissue",
    "other": "election football market recipe holiday film election stock travel",
}


def _rows(prefix: str, n: int) -> list[dict]:
    rows = []
    for label, words in _WORDS.items():
        vocab = words.split()
        for i in range(n):
            text = " ".join(vocab[(i + k) % len(vocab)] for k in range(12))
            rows.append({"id": f"{prefix}-{label}-{i}", "text": text, "domain": label})
    return rows


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("recall")
    config = rf.RecallConfig(dim=16, bucket=10_000, min_count=1, target_precision=0.9, min_predicted=2)
    card = rf.train_recall(_rows("t", 30), out, validation=_rows("v", 10), config=config)
    return out, card, config


def test_a_tiny_model_learns_its_words_and_records_thresholds(trained):
    out, card, _ = trained
    assert card["labels"] == ["life_science", "mathematics", "other", "physics"]
    assert card["taxonomy"] == tx.default().ref and card["validation_rows"] == 40
    assert set(card["thresholds"]) == {"life_science", "mathematics", "physics"}
    assert all(t["met_target"] and t["precision"] >= 0.9 for t in card["thresholds"].values())
    model = rf.RecallModel(out)
    fresh = _rows("x", 3)
    scores = model.scores([r["text"] for r in fresh])
    assert [model.decide(s) for s in scores] == [r["domain"] for r in fresh]
    # a text outside every target's words passes no threshold
    assert model.decide(model.scores(["a quiet afternoon with tea and a long novel"])[0]) == rf.OTHER
    assert all(set(s) == set(card["labels"]) and all(0.0 <= v <= 1.0 for v in s.values()) for s in scores)
    assert model.scores([]) == []
    assert json.loads((out / rf.CARD_FILE).read_text())["model_sha256"] == card["model_sha256"]


def test_training_is_reproducible_byte_for_byte(trained, tmp_path):
    _, card, config = trained
    again = rf.train_recall(_rows("t", 30), tmp_path, validation=_rows("v", 10), config=config)
    assert again["model_sha256"] == card["model_sha256"] and again["thresholds"] == card["thresholds"]


def test_one_label_or_no_model_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="two labels"):
        rf.train_recall([{"id": "a", "text": "x y", "domain": "physics"}], tmp_path)
    with pytest.raises(ConfigError, match="no recall.bin"):
        rf.RecallModel(tmp_path / "absent")


def test_cli_train_recall_then_eval_classify_with_the_model(tmp_path, capsys):
    from scicurate import cli

    rows = [dict(r, split="in_domain") for r in _rows("t", 30)] + [dict(r, split="ood") for r in _rows("o", 5)]
    labels = tmp_path / "labels.jsonl"
    labels.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "model"
    rc = cli.main(["train", "recall", "--labels", str(labels), "--split", "in_domain", "--output", str(out),
                   "--dim", "16", "--bucket", "10000", "--min-count", "1"])
    card = json.loads(capsys.readouterr().out)
    assert rc == 0 and card["rows"] + card["validation_rows"] == 120 and 0 < card["validation_rows"] < 60
    assert set(card["thresholds"]) == {"life_science", "mathematics", "physics"}
    rc = cli.main(["eval", "classify", "--labels", str(labels), "--classifier", "recall-fasttext",
                   "--classifier-option", f"model_dir={out}", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert rc == 0 and report["summary"]["source"].startswith("classifier recall-fasttext-")
    assert report["summary"]["macro_f1.ood"] == 1.0          # the held-out split, scored separately
    # the card's thresholds instead of argmax; gold labels outside the targets become `other`
    renamed = tmp_path / "renamed.jsonl"
    renamed.write_text("".join(json.dumps(dict(r, domain="non_science" if r["domain"] == "other" else r["domain"]))
                               + "\n" for r in rows))
    rc = cli.main(["eval", "classify", "--labels", str(renamed), "--classifier", "recall-fasttext",
                   "--classifier-option", f"model_dir={out}", "--decide", "--targets-only", "--json"])
    decided = json.loads(capsys.readouterr().out)
    assert rc == 0 and decided["summary"]["macro_f1.ood"] == 1.0
    assert any("--decide" in n for n in decided["notes"]) and any("--targets-only" in n for n in decided["notes"])
    rc = cli.main(["eval", "classify", "--labels", str(renamed), "--classifier", "recall-fasttext",
                   "--classifier-option", f"model_dir={out}", "--json"])
    assert json.loads(capsys.readouterr().out)["summary"]["macro_f1.ood"] < 1.0   # non_science != other
    # a row without text, an unknown split or a bad share: exit status 2 with the reason
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "x", "domain": "physics"}) + "\n")
    assert cli.main(["train", "recall", "--labels", str(bad), "--output", str(out)]) == 2
    assert "needs text" in capsys.readouterr().err
    assert cli.main(["train", "recall", "--labels", str(labels), "--split", "nope", "--output", str(out)]) == 2
    assert cli.main(["train", "recall", "--labels", str(labels), "--validation-share", "1.5",
                     "--output", str(out)]) == 2
    with pytest.raises(ConfigError, match="model_dir"):
        rf.RecallClassifier()


def test_silver_rows_with_several_domains_train_every_label_and_incomplete_rows_are_left_out(tmp_path):
    tree = tx.default()
    assert rf.labels_of({"domain": ["physics", "other", "chemistry"]}, tree) == ("chemistry", "physics")
    assert rf.labels_of({"domain": ["other"]}, tree) == (rf.OTHER,)
    rows = _rows("t", 20) + [{"id": "both", "text": "quark theorem boson lemma", "domain": ["physics", "mathematics"]},
                             {"id": "broken", "text": "x y", "domain": ["chemistry"], "complete": False}]
    card = rf.train_recall(rows, tmp_path, config=rf.RecallConfig(dim=8, bucket=1000, min_count=1))
    assert card["rows"] == 81 and "chemistry" not in card["labels"]
    assert card["label_counts"]["physics"] == 21 and card["label_counts"]["mathematics"] == 21
