"""`scicurate run recall`: the pool reader, the threshold stage, the iterative rule and the
summary as pure cores, then the Beam pipeline end to end with a real (tiny) fastText recall
model and a fake OpenAI server as the spot-checking LLM."""

from __future__ import annotations

import gzip
import io
import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fake_openai import FakeOpenAI

from scicurate.classifiers import recall_fasttext as rf
from scicurate.config import ConfigError
from scicurate.parsers import pool_input
from scicurate.pipelines import recall_steps as steps
from scicurate.recall_records import (ModelInfo, PoolDoc, RecallDeadLetter, RecallFiltered, RecallRunConfig,
                                      ScoredDoc)

from conftest import recall_labels

# ---- the pool reader ---------------------------------------------------------------------------


def _read(data: bytes, name: str, limit: int = 1000) -> list:
    return list(pool_input.read_pool(io.BytesIO(data), name, max_text_bytes=limit))


def test_pool_rows_become_docs_filtered_or_dead_letters_one_each():
    lines = [
        {"id": "a", "text": "quark boson", "url": "https://www.example.org/x"},
        {"doc_id": "b", "text": "lemma"},                 # the PDF pipeline's id column
        {"text": "no id at all"},                          # content-hash id
        {"id": "e", "text": "   "},                        # empty: filtered
        {"id": "n"},                                       # no text: dead letter
        {"id": "big", "text": "x" * 2000},                 # over the limit: dead letter
        ["not", "an", "object"],
    ]
    data = "".join(json.dumps(row) + "\n" for row in lines).encode() + b"{not json\n\n"
    items = _read(data, "pool.jsonl")
    assert len(items) == len(lines) + 1
    docs = [i for i in items if isinstance(i, PoolDoc)]
    assert [d.doc_id for d in docs[:2]] == ["a", "b"] and docs[2].doc_id.startswith("sha256:")
    assert docs[2].doc_id == pool_input.content_id("no id at all")
    assert docs[0].url_domain == "example.org" and docs[1].url == "" and docs[1].url_domain == ""
    filtered = [i for i in items if isinstance(i, RecallFiltered)]
    assert [(f.doc_id, f.reason) for f in filtered] == [("e", "empty_text")]
    dead = [(d.doc_id, d.reason) for d in items if isinstance(d, RecallDeadLetter)]
    assert dead == [("n", "bad_record"), ("big", "too_large"), ("", "bad_record"), ("", "bad_record")]
    assert "pool.jsonl:8: not JSON" in [d for d in items if isinstance(d, RecallDeadLetter)][-1].message


def test_truncated_gzip_keeps_the_rows_before_the_break_and_parquet_is_read(tmp_path):
    raw = gzip.compress("".join(json.dumps({"id": str(i), "text": f"text {i} " * 50}) + "\n" for i in range(200)).encode())
    items = _read(raw[: len(raw) // 2], "pool.jsonl.gz", limit=10_000)
    assert isinstance(items[-1], RecallDeadLetter) and items[-1].reason == "corrupt_input"
    assert 0 < len(items) - 1 < 200 and all(isinstance(i, PoolDoc) for i in items[:-1])
    assert [i.doc_id for i in items[:-1]] == [str(i) for i in range(len(items) - 1)]

    table = pa.table({"page_id": ["p1", "p2"], "text": ["boson", ""], "url": ["http://a.b.co.uk/1", None]})
    path = tmp_path / "pages.parquet"
    pq.write_table(table, path)
    got = _read(path.read_bytes(), str(path))
    assert isinstance(got[0], PoolDoc) and (got[0].doc_id, got[0].url_domain) == ("p1", "b.co.uk")
    assert isinstance(got[1], RecallFiltered) and got[1].doc_id == "p2"
    no_text = tmp_path / "x.parquet"
    pq.write_table(pa.table({"id": ["1"]}), no_text)
    assert _read(no_text.read_bytes(), str(no_text))[0].reason == "bad_record"
    assert _read(b"garbage", "broken.parquet")[0].reason == "corrupt_input"
    with pytest.raises(ValueError, match="not a pool file"):
        pool_input.pool_format("pool.csv")


# ---- thresholds, the iterative rule, the summary ---------------------------------------------

def _model(name: str, thresholds: dict, met: dict | None = None) -> ModelInfo:
    met = met or {d: True for d in thresholds}
    return ModelInfo(model_dir=f"/m/{name}", name=name, labels=("chemistry", "other", "physics"),
                     thresholds=tuple(sorted(thresholds.items())), precision=tuple((d, 0.9) for d in sorted(thresholds)),
                     met_target=tuple(sorted(met.items())))


def _scored(doc_id: str, *scores: dict, url_domain: str = "") -> ScoredDoc:
    s = ScoredDoc(PoolDoc(doc_id, "t", f"http://{url_domain}/{doc_id}" if url_domain else "", url_domain, "f"))
    for i, sc in enumerate(scores):
        s = s.add(f"m{i}", sc)
    return s


def test_thresholds_combine_models_and_hold_back_unmet_domains():
    a = _model("m0", {"physics": 0.5, "chemistry": 0.5})
    b = _model("m1", {"physics": 0.8, "chemistry": 0.5})
    both = RecallRunConfig(models=(a, b))
    doc = _scored("d", {"physics": 0.7, "chemistry": 0.6}, {"physics": 0.7, "chemistry": 0.55})
    decision = steps.decide(doc, both)
    assert (decision.domain, decision.passing, decision.best_domain) == ("chemistry", ("chemistry",), "physics")
    anyone = steps.decide(doc, both.replace(combine="any"))
    assert (anyone.domain, anyone.passing) == ("physics", ("chemistry", "physics"))   # higher mean wins
    moved = steps.decide(doc, both.replace(thresholds=(("chemistry", 0.99),)))         # no re-scoring
    assert moved.domain == "" and moved.best_score == 0.7
    # a card threshold that missed its target precision recalls nothing unless allowed
    unmet = RecallRunConfig(models=(_model("m0", {"physics": 0.5, "chemistry": 0.1}, {"physics": True, "chemistry": False}),))
    one = _scored("x", {"physics": 0.2, "chemistry": 0.9})
    assert steps.decide(one, unmet).domain == "" and set(unmet.held_back()) == {"chemistry"}
    assert steps.decide(one, unmet.replace(allow_unmet=True)).domain == "chemistry"
    assert steps.decide(one, unmet.replace(domains=("physics",))).passing == ()
    with pytest.raises(ConfigError, match="not scored"):
        unmet.replace(domains=("geology",))
    with pytest.raises(ValueError, match="2 models"):
        steps.decide(one, both)


def test_hot_url_domains_give_their_other_pages_as_seed_candidates():
    config = RecallRunConfig(models=(_model("m0", {"physics": 0.5}),), candidate_share=0.3, candidate_min_pages=4)
    docs = [_scored(f"p{i}", {"physics": 0.9 if i < 2 else 0.1}, url_domain="phys.org") for i in range(5)]
    docs += [_scored("s1", {"physics": 0.9}, url_domain="small.org")]          # one page: never hot
    decisions = [steps.decide(d, config) for d in docs]
    combine = steps.UrlDomainRecall()
    acc = combine.merge_accumulators([combine.add_input(combine.create_accumulator(), d) for d in decisions[:5]])
    stats = steps.url_domain_stats("phys.org", combine.extract_output(acc), config)
    assert (stats.pages, stats.recalled, stats.hot) == (5, (("physics", 2),), ("physics",))
    small = steps.url_domain_stats("small.org", [1, {"physics": 1}], config)
    assert small.hot == ()
    hot = {"phys.org": stats}
    candidates = [c for d in decisions for c in steps.seed_candidates(d, hot, 2)]
    assert [(c.doc_id, c.domains, c.shares, c.round) for c in candidates] == [
        (f"p{i}", ("physics",), (0.4,), 2) for i in (2, 3, 4)]


def test_summary_reports_purity_and_accounts_for_every_row():
    config = RecallRunConfig(models=(_model("m0", {"physics": 0.5, "chemistry": 0.5}, {"physics": True, "chemistry": False}),))
    combine = steps.BuildSummary(config)
    pairs = [("inputs", 10), ("recalled", 4), ("recalled_by_domain.physics", 4), ("filtered", 5),
             ("filtered_by_reason.below_threshold", 4), ("filtered_by_reason.empty_text", 1),
             ("dead_letter", 2), ("dead_letter_by_reason.bad_record", 1), ("dead_letter_by_reason.unreadable", 1),
             ("spot_check.physics:yes", 3), ("spot_check.physics:no", 1)]
    acc = combine.create_accumulator()
    for pair in pairs:
        acc = combine.add_input(acc, pair)
    summary = combine.extract_output(acc)
    assert summary["accounted"] is True and summary["dead_letter_rows"] == 1
    physics = summary["purity"]["physics"]
    assert (physics["recalled"], physics["validation_precision"], physics["expected_in_domain"]) == (4, 0.9, 3.6)
    assert (physics["spot_checked"], physics["spot_precision"]) == (4, 0.75)
    assert summary["purity"]["chemistry"]["held_back"] and summary["purity"]["chemistry"]["recalled"] == 0
    assert summary["recalled_share"] == 0.5


# ---- end to end ------------------------------------------------------------------------------



@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("recall-model")
    config = rf.RecallConfig(dim=16, bucket=10_000, min_count=1, target_precision=0.9, min_predicted=2,
                             path_dim=16, path_epoch=25, path_bucket=10_000)
    card = rf.train_recall(recall_labels("t", 20), out, validation=recall_labels("v", 6), config=config)
    assert card["path_model"]["nodes"] == 2 and all(t["met_target"] for t in card["thresholds"].values())
    again = rf.train_recall(recall_labels("t", 20), out.parent / "again", validation=recall_labels("v", 6), config=config)
    assert again["path_model"]["sha256"] == card["path_model"]["sha256"]       # byte-identical rerun
    return out


def test_the_path_model_places_a_text_in_its_subfield(model_dir):
    model = rf.load_recall_model(model_dir)
    texts = ["gluon hadron quark collider muon", "phonon lattice superconductor crystal band"]
    assert [p for p, _ in model.paths(texts, ["physics", "physics"])] == [
        ("physics", "physics.particle_physics"), ("physics", "physics.condensed_matter")]
    assert model.paths(["reagent solvent"], ["chemistry"]) == [(("chemistry",), 0.0)]   # no chemistry nodes
    with pytest.raises(ConfigError, match="train recall"):
        rf.load_recall_model(model_dir.parent / "absent")


def _spot_checker(body: dict, n: int) -> str:
    text = json.loads(body["messages"][-1]["content"].split("Text:\n", 1)[1].split("\n\nReply", 1)[0])["text"]
    if "tricky" in text:
        return "{broken"
    domain = re.search(r"corpus of ([a-z ]+)\.", body["messages"][0]["content"]).group(1)
    yes = domain == "physics" and "quark" in text or domain == "chemistry"
    return json.dumps({"in_domain": yes, "subfield": "none", "topic": "none"})


def _pool(tmp_path: Path) -> Path:
    rows = []
    for i in range(6):
        rows.append({"id": f"q{i}", "text": "quark boson collider gluon hadron muon " * 3, "url": f"https://hep.example.org/{i}"})
    for i in range(6):
        rows.append({"id": f"o{i}", "text": "election football market recipe holiday film", "url": f"https://hep.example.org/n{i}"})
    rows.append({"id": "c0", "text": "reagent titration solvent catalyst tricky", "url": "https://chem.example.com/a"})
    rows.append({"id": "c1", "text": "reagent titration solvent catalyst ester", "url": "https://chem.example.com/b"})
    rows.append({"id": "m0", "text": "phonon lattice superconductor crystal band magnon electron " * 2})
    rows.append({"id": "blank", "text": ""})
    path = tmp_path / "pool.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "{cut off\n")
    (tmp_path / "pool2.jsonl.gz").write_bytes(gzip.compress(b'{"id": "z", "text": "election football market recipe holiday film"}\n')[:-6])
    return tmp_path / "pool*"


def _parquet_rows(directory: Path) -> list[dict]:
    files = sorted(directory.rglob("*.parquet"))
    return [row for f in files for row in pq.read_table(f).to_pylist()]


def test_run_recall_end_to_end(model_dir, tmp_path, capsys):
    from scicurate import cli

    out = tmp_path / "run"
    with FakeOpenAI(_spot_checker) as server:
        rc = cli.main(["run", "recall", "--input", str(_pool(tmp_path)), "--output", str(out),
                       "--model", str(model_dir), "--spot-check", "3", "--candidate-share", "0.3",
                       "--llm-endpoint", server.url, "--llm-model", "fake-vlm", "--llm-timeout", "5"])
        asked = len(server.requests)
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    summary = json.loads(captured.out)
    physics = _parquet_rows(out / "recalled" / "physics")
    chemistry = _parquet_rows(out / "recalled" / "chemistry")
    assert sorted(r["doc_id"] for r in physics) == ["m0"] + [f"q{i}" for i in range(6)]
    assert sorted(r["doc_id"] for r in chemistry) == ["c0", "c1"]
    by_id = {r["doc_id"]: r for r in physics}
    assert by_id["q0"]["path"] == ["physics", "physics.particle_physics"]
    assert by_id["m0"]["path"] == ["physics", "physics.condensed_matter"] and by_id["m0"]["url_domain"] == ""
    assert by_id["q0"]["url_domain"] == "example.org" and by_id["q0"]["round"] == 1
    assert set(json.loads(by_id["q0"]["scores"])) == {rf.load_recall_model(model_dir).name}
    filtered = {r["doc_id"]: r for r in _parquet_rows(out / "filtered")}
    assert {k: v["reason"] for k, v in filtered.items()} == {
        **{f"o{i}": "below_threshold" for i in range(6)}, "z": "below_threshold", "blank": "empty_text"}
    dead = _parquet_rows(out / "dead_letter")
    assert sorted(d["reason"] for d in dead) == ["bad_record", "corrupt_input"]
    assert len(_parquet_rows(out / "scores")) == 16
    # every pool row accounted: 17 lines in pool.jsonl (one not JSON) and the one row pool2's
    # gzip gave before it broke (the break itself is a file-level dead letter, not a row)
    assert summary["accounted"] is True and summary["inputs"] == 18
    assert (summary["recalled"], summary["filtered"], summary["dead_letter_rows"]) == (9, 8, 1)
    assert summary["recalled_by_domain"] == {"chemistry": 2, "physics": 7}
    # spot-check: 3 physics + 2 chemistry asked; the broken answer is counted as failed
    spot = _parquet_rows(out / "spot_check")
    assert len(spot) == 5 and asked >= 5          # the client retries the broken answer
    assert summary["purity"]["physics"]["spot_checked"] == 3
    assert summary["purity"]["chemistry"] == {**summary["purity"]["chemistry"], "spot_yes": 1, "spot_failed": 1}
    assert summary["purity"]["physics"]["validation_precision"] >= 0.9
    # example.org: 6 of 12 pages recalled (> 0.3): the 6 others are next round's seed candidates
    urls = {r["url_domain"]: r for r in _parquet_rows(out / "url_domains")}
    assert urls["example.org"]["pages"] == 12 and urls["example.org"]["hot"] == ["physics"]
    candidates = [json.loads(line) for f in sorted((out / "seed_candidates").glob("*.jsonl")) for line in f.read_text().splitlines()]
    assert sorted(c["id"] for c in candidates) == [f"o{i}" for i in range(6)]
    assert candidates[0]["domains"] == ["physics"] and candidates[0]["shares"] == [0.5]
    assert summary["seed_candidates"] == 6 and summary["hot_url_domains"] == 1

    # a threshold override re-decides without re-training; a missing model fails at start-up
    again = tmp_path / "again"
    assert cli.main(["run", "recall", "--input", str(tmp_path / "pool.jsonl"), "--output", str(again),
                     "--model", str(model_dir), "--spot-check", "0", "--threshold", "chemistry=1.0"]) == 0
    moved = json.loads(capsys.readouterr().out)
    assert moved["recalled_by_domain"] == {"chemistry": 0, "physics": 7}
    assert moved["purity"]["chemistry"]["validation_precision"] is None     # not measured at that threshold
    assert cli.main(["run", "recall", "--input", str(tmp_path / "pool.jsonl"), "--output", str(again),
                     "--model", str(tmp_path / "nope")]) == 2
    assert "train recall" in capsys.readouterr().err
    assert cli.main(["run", "recall", "--input", str(tmp_path / "pool.jsonl"), "--output", str(again),
                     "--model", str(model_dir), "--threshold", "physics"]) == 2
