"""`scicurate recall annotate` end to end: a fake OpenAI server plays the strong LLM (LLM mode),
and a labelled file becomes silver rows without one (seed mode); `train recall` reads both."""

from __future__ import annotations

import json
import re

from fake_openai import FakeOpenAI, Reply

from scicurate import cli

WORDS = {"physics": ("quark", "boson"), "chemistry": ("reagent", "titration")}


def _labeller(body: dict, n: int):
    system = body["messages"][0]["content"]
    domain = re.search(r"corpus of ([a-z ]+)\.", system).group(1).replace(" ", "_")
    text = json.loads(body["messages"][-1]["content"].split("Text:\n", 1)[1].split("\n\nReply", 1)[0])["text"]
    if "server error" in text:
        return Reply("", status=400)
    yes = any(w in text for w in WORDS.get(domain, ()))
    sub = {"physics": "particle_physics", "chemistry": "analytical_chemistry"}[domain]
    topic = "theory" if domain == "physics" else "none"
    return json.dumps({"in_domain": yes, "subfield": sub if yes else "none", "topic": topic if yes else "none"})


def _pool(tmp_path):
    texts = {"p1": "a quark model", "p2": "boson masses", "c1": "the reagent was added", "c2": "titration curves",
             "b1": "quark and reagent both", "o1": "the football final", "e1": "server error here", "x": " "}
    path = tmp_path / "pool.jsonl"
    path.write_text("".join(json.dumps({"id": k, "text": v}) + "\n" for k, v in texts.items()))
    return path


def test_annotate_a_pool_with_an_llm(tmp_path, capsys):
    out = tmp_path / "silver.jsonl"
    with FakeOpenAI(_labeller) as server:
        rc = cli.main(["recall", "annotate", "--pool", str(_pool(tmp_path)), "--output", str(out),
                       "--domains", "physics,chemistry", "--sample", "100",
                       "--llm-endpoint", server.url, "--llm-model", "fake-vlm", "--llm-timeout", "5"])
        sent = len(server.requests)
    err = capsys.readouterr().err
    assert rc == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == sorted(["p1", "p2", "c1", "c2", "b1", "o1", "e1"])   # blank text never sampled
    by_id = {r["id"]: r for r in rows}
    assert by_id["p1"]["domain"] == ["physics"] and by_id["c2"]["domain"] == ["chemistry"]
    assert by_id["b1"]["domain"] == ["physics", "chemistry"] and by_id["o1"]["domain"] == ["other"]
    assert by_id["p1"]["paths"] == {"physics": ["physics", "physics.particle_physics", "physics.particle_physics.theory"]}
    assert by_id["c1"]["paths"] == {"chemistry": ["chemistry", "chemistry.analytical_chemistry"]}
    assert all(r["complete"] for i, r in by_id.items() if i != "e1") and by_id["e1"]["complete"] is False
    assert set(by_id["e1"]["failures"]) == {"physics", "chemistry"}
    assert by_id["p1"]["prompts"] == ["recall_chemistry@1", "recall_physics@1"] and by_id["p1"]["source"] == "llm"
    summary = json.loads(err[err.index("{"):])
    assert summary["rows"] == 7 and summary["complete"] == 6 and summary["llm_calls"] == 14 and sent >= 14
    assert summary["by_domain"] == {"chemistry": 3, "other": 2, "physics": 3}


def test_seed_mode_and_bad_flags(tmp_path, capsys):
    labels = tmp_path / "labels.jsonl"
    rows = [{"id": "a", "text": "t", "domain": "physics", "split": "in_domain", "source": "arxiv",
             "source_label": "hep-th"},
            {"id": "b", "text": "t", "domain": "non_science", "split": "negative"}]
    labels.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "seed.jsonl"
    assert cli.main(["recall", "annotate", "--seed-labels", str(labels), "--split", "in_domain",
                     "--output", str(out)]) == 0
    silver = [json.loads(line) for line in out.read_text().splitlines()]
    assert silver == [{"id": "a", "text": "t", "domain": ["physics"], "complete": True, "failures": {},
                       "model": "", "paths": {"physics": ["physics", "physics.particle_physics",
                                                          "physics.particle_physics.theory"]},
                       "prompts": [], "source": "seed"}]
    capsys.readouterr()
    pool = _pool(tmp_path)
    assert cli.main(["recall", "annotate", "--pool", str(pool), "--output", str(out), "--domains", "astrology"]) == 2
    assert "target domains are" in capsys.readouterr().err
    assert cli.main(["recall", "annotate", "--pool", str(pool), "--output", str(out),
                     "--llm-endpoint", "http://127.0.0.1:9/v1"]) == 2
    assert "--llm-model" in capsys.readouterr().err
