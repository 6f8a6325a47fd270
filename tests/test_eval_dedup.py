"""`scicurate eval dedup`: the pair and span scorers and the mutations on hand-made inputs with
known answers, a small seeded mutation run end to end, and dolma's paragraph-dedup test data
when the development corpus is present."""

from __future__ import annotations

import argparse
import gzip
import json
import random

import pytest

from scicurate.config import ConfigError
from scicurate.evals import _REGISTRY, commands
from scicurate.evals import dedup



def namespace(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    dedup.add_arguments(parser)
    return parser.parse_args(list(argv))


class FirstChoice:
    """A stand-in rng that always takes the first option, so mutations have one exact answer."""

    def sample(self, population, k):
        return list(population)[:k]

    def choice(self, seq):
        return seq[0]

    def randrange(self, start, stop=None):
        return 0 if stop is None else start


WORDS = list("abcdefghij")


# ---- pair_scores --------------------------------------------------------------------------------

def test_perfect_clustering_scores_one():
    truth = {"o1": "o1", "c1": "o1", "o2": "o2", "c2": "o2"}
    scores = dedup.pair_scores({"o1": "c1", "c1": "c1", "o2": "c2", "c2": "c2"}, truth)
    assert scores == {"tp": 2, "fp": 0, "fn": 0, "precision": 1.0, "recall": 1.0, "f1": 1.0,
                      "false_merges": 0, "merged_clusters": 0}


def test_a_false_merge_costs_precision_and_a_miss_costs_recall():
    truth = {"o1": "o1", "c1": "o1", "o2": "o2", "c2": "o2"}
    # o1, c1 and the negative n1 in one cluster (1 TP, 2 FP); o2/c2 apart (1 FN)
    scores = dedup.pair_scores({"o1": "c1", "c1": "c1", "n1": "c1"}, truth)
    assert scores["tp"] == 1 and scores["fp"] == 2 and scores["fn"] == 1
    assert scores["precision"] == pytest.approx(1 / 3)
    assert scores["recall"] == 0.5
    assert scores["f1"] == pytest.approx(2 * (1 / 3) * 0.5 / (1 / 3 + 0.5))
    assert scores["false_merges"] == 1 and scores["merged_clusters"] == 1


def test_copies_of_one_original_are_true_pairs_and_merging_groups_counts_each():
    truth = {"o1": "o1", "a1": "o1", "b1": "o1", "o2": "o2", "a2": "o2"}
    scores = dedup.pair_scores({i: "x" for i in truth}, truth)   # everything in one cluster
    assert (scores["tp"], scores["fp"], scores["fn"]) == (4, 6, 0)   # C(3,2)+C(2,2); C(5,2)-4
    assert scores["false_merges"] == 1


def test_nothing_predicted_gives_no_precision():
    scores = dedup.pair_scores({}, {"o1": "o1", "c1": "o1"})
    assert scores["precision"] is None and scores["f1"] is None
    assert scores["recall"] == 0.0 and scores["fn"] == 1


# ---- span_scores --------------------------------------------------------------------------------

def test_span_equality_ignores_the_score_and_lists_disagreements():
    expected = {"d1": [[0, 10, 1], [10, 25, 1]], "d2": [[5, 9, 1]]}
    predicted = {"d1": [[0, 10, 1], [10, 24, 1]], "d2": [], "d3": [[1, 2, 1]]}
    scores = dedup.span_scores(predicted, expected)
    assert (scores["tp"], scores["fp"], scores["fn"]) == (1, 2, 2)
    assert scores["precision"] == pytest.approx(1 / 3) and scores["recall"] == pytest.approx(1 / 3)
    assert scores["n_disagreements"] == 4
    assert scores["disagreements"] == [
        {"id": "d1", "span": [10, 24], "kind": "false_positive"},
        {"id": "d1", "span": [10, 25], "kind": "missed"},
        {"id": "d2", "span": [5, 9], "kind": "missed"},
        {"id": "d3", "span": [1, 2], "kind": "false_positive"},
    ]
    assert len(dedup.span_scores(predicted, expected, max_disagreements=2)["disagreements"]) == 2


def test_dolma_paragraph_spans_and_exact_duplicates():
    text = "Home\nAbout\nHome\nnaïve"
    assert dedup.dolma_paragraphs(text) == [(0, 5, "Home"), (5, 11, "About"), (11, 16, "Home"), (16, 22, "naïve")]
    spans = dedup.duplicate_paragraph_spans([("a", "About\nx"), ("b", text)])
    assert spans == {"a": [], "b": [[5, 11, 1], [11, 16, 1]]}
    # normalise=False: case and spacing differences are not duplicates
    assert dedup.duplicate_paragraph_spans([("a", "Home\nhome\nHome ")]) == {"a": []}


# ---- mutate --------------------------------------------------------------------------------------

def test_mutations_with_a_first_choice_rng_are_exact():
    rng, vocab = FirstChoice(), ["zz", "yy"]
    assert dedup.mutate(WORDS, 0.2, rng, "substitute", vocab) == ["zz", "zz", *"cdefghij"]
    assert dedup.mutate(WORDS, 0.2, rng, "insert", vocab) == ["zz", "a", "zz", "b", *"cdefghij"]
    assert dedup.mutate(WORDS, 0.2, rng, "delete", vocab) == list("cdefghij")
    assert dedup.mutate(WORDS, 0.3, rng, "mix", vocab) == ["zz", "zz", "zz", *"defghij"]  # first kind: substitute
    assert dedup.mutate(WORDS, 0.2, rng, "reorder") == list("cdabefghij")
    assert dedup.mutate(["zz", "b"], 0.5, rng, "substitute", vocab) == ["zzx", "b"]      # never the same word


@pytest.mark.parametrize("kind,length", [("substitute", 10), ("insert", 12), ("delete", 8)])
def test_mutation_counts_with_a_seeded_rng(kind, length):
    out = dedup.mutate(WORDS, 0.2, random.Random(3), kind, ["zz"])
    assert len(out) == length
    if kind == "substitute":
        assert sum(a != b for a, b in zip(WORDS, out)) == 2
    else:
        shorter, longer = (out, WORDS) if kind == "delete" else (WORDS, out)
        it = iter(longer)
        assert all(w in it for w in shorter)            # the shorter one is a subsequence


def test_reorder_keeps_the_words_and_mutation_is_seeded():
    out = dedup.mutate(WORDS, 0.2, random.Random(7), "reorder")
    assert sorted(out) == WORDS and out != WORDS
    assert dedup.mutate(WORDS, 0.3, random.Random(1), "mix", ["q"]) == dedup.mutate(WORDS, 0.3, random.Random(1), "mix", ["q"])
    assert dedup.mutate(WORDS, 0.0, random.Random(1), "mix") == WORDS
    with pytest.raises(ValueError):
        dedup.mutate(WORDS, 0.1, random.Random(1), "shuffle")


# ---- command ------------------------------------------------------------------------------------

def test_dedup_is_a_registered_eval_with_its_flags():
    assert "dedup" in commands() and _REGISTRY["dedup"].run is dedup.run
    args = namespace("--mutations", "--levels", "5,30", "--no-verify")
    assert args.levels == (5, 30) and args.no_verify and args.ngram is None and args.threshold is None
    args = namespace("--mutations", "--weights", "0.5,0.5", "--bands-rows", "9x13", "--hash", "sha1")
    assert args.weights == (0.5, 0.5) and args.bands_rows == (9, 13) and args.hash == "sha1"
    with pytest.raises(SystemExit):
        namespace("--levels", "5")                      # a mode is required
    with pytest.raises(SystemExit):
        namespace("--mutations", "--bands-rows", "9by13")


def test_default_config_meets_the_target_and_strict_does_not():
    """The issue's target (recall and precision >= 0.95 at 20% token edits) with MinHashConfig's
    defaults on 150 seeded synthetic originals; the strict 5-gram/0.8 preset finds almost none."""
    data = dedup.run(namespace("--mutations", "--originals", "150", "--levels", "20",
                               "--reorder-share", "0")).to_json()["summary"]
    assert (data["ngram"], data["bands"], data["rows"]) == (2, 42, 3)
    assert data["target_met"] and data["target_recall"] >= 0.95 and data["target_precision"] >= 0.95
    strict = dedup.run(namespace("--mutations", "--originals", "150", "--levels", "20", "--reorder-share", "0",
                                 "--ngram", "5", "--threshold", "0.8", "--weights", "0.5,0.5")).to_json()["summary"]
    assert not strict["target_met"] and (strict["bands"], strict["rows"]) == (9, 13)


def test_small_mutation_run_end_to_end():
    # ngram=2 / threshold 0.6: a 5% mix edit touches at most ~2 bigrams per edit, so the expected
    # bigram Jaccard is ~0.8, comfortably above 0.6, while unrelated Zipf texts share few bigrams.
    report = dedup.run(namespace("--mutations", "--originals", "40", "--levels", "5,30",
                                 "--ngram", "2", "--threshold", "0.6"))
    data = report.to_json()
    kinds = [(r["kind"], r["level"]) for r in data["rows"]]
    assert kinds == [("mix", "5%"), ("mix", "30%"), ("reorder", "10%"), ("all", "together")]
    assert data["summary"]["originals"] == 40 and data["summary"]["negatives"] == 40
    assert data["summary"]["ngram"] == 2 and "target_met" not in data["summary"]   # no 20% level
    five, thirty = data["rows"][0], data["rows"][1]
    assert five["pairs"] == 40 and five["tp"] + five["fn"] == 40
    assert five["recall"] >= 0.9 and five["precision"] >= 0.9
    assert five["mean_jaccard"] > thirty["mean_jaccard"]
    assert "| kind" in report.to_text()
    again = dedup.run(namespace("--mutations", "--originals", "40", "--levels", "5,30",
                                "--ngram", "2", "--threshold", "0.6")).to_json()
    assert again["rows"] == data["rows"]                 # seeded: the same numbers twice


def test_bad_arguments_fail_fast(tmp_path):
    with pytest.raises(ConfigError):
        dedup.run(namespace("--mutations", "--threshold", "1.5"))
    with pytest.raises(ConfigError):
        dedup.run(namespace("--mutations", "--source", str(tmp_path / "missing.jsonl")))
    with pytest.raises(ConfigError):
        dedup.run(namespace("--dolma", str(tmp_path)))


def test_dolma_mode_on_a_made_up_directory(tmp_path):
    docs = [{"id": "a", "text": "x\ny"}, {"id": "b", "text": "y\nz\nx"}]
    expected = [{"id": "a", "attributes": {"bff_duplicate_paragraph_spans": []}},
                {"id": "b", "attributes": {"bff_duplicate_paragraph_spans": [[0, 2, 1], [4, 7, 1]]}}]
    for name, rows in ((dedup.DOLMA_DOCUMENTS, docs), (dedup.DOLMA_EXPECTED, expected)):
        with gzip.open(tmp_path / name, "wt") as fh:
            fh.write("\n".join(json.dumps(r) for r in rows) + "\n")
    report = dedup.run(namespace("--dolma", str(tmp_path))).to_json()
    assert report["summary"]["tp"] == 1 and report["summary"]["fp"] == 1 and report["summary"]["fn"] == 1
    assert report["details"]["disagreements"] == [{"id": "b", "span": [4, 6], "kind": "false_positive"},
                                                  {"id": "b", "span": [4, 7], "kind": "missed"}]
    assert report["summary"]["second_pass_all_duplicate"] is True


# ---- development corpus (tier d) --------------------------------------------------------------

@pytest.mark.corpus
def test_dolma_paragraph_dedup_matches_expected(corpus):
    root = corpus / "near_duplicates" / "dolma_dedup_test"
    if not root.is_dir():
        pytest.skip(f"dolma dedup test data not found at {root}")
    report = dedup.run(namespace("--dolma", str(root))).to_json()
    summary = report["summary"]
    assert summary["documents"] == 10 and summary["expected_spans"] == 43
    assert (summary["tp"], summary["fp"], summary["fn"]) == (43, 0, 0)
    assert report["details"]["disagreements"] == []
    assert summary["second_pass_all_duplicate"] is True
