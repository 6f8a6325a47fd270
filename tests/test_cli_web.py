"""`scicurate run web`, `scicurate train web-classifiers` and `scicurate eval web --extractor
scicurate` through the CLI entry point, in process (`cli.main([...])`, FnApiRunner): exit codes,
the summary on stdout, the datasets on disk, and the loop from the triage agent's tags to
trained fastText models back into a run. The agent is tests/fake_openai.py; no embedded model."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from fake_openai import FakeOpenAI
from scicurate import cli

ROOT = Path(__file__).resolve().parents[1]
WEB = ROOT / "tests" / "fixtures" / "web"
INPUTS = str(WEB / "*.*[zl]")          # crawl.warc.gz, truncated.warc.gz, pages.jsonl
DATASETS = ("pages", "filtered", "dead_letter", "verdicts", "tags")
# stages that run before any model scores a page: their rows carry no scores
UNSCORED_STAGES = ("screen", "extract", "exact_dedup")


def _read(out: Path) -> dict:
    data = {name: pq.read_table(str(out / name)).to_pylist() for name in DATASETS}
    data["summary"] = json.loads((out / "summary.json").read_text())
    return data


def _run_cli(capsys, *args: str) -> tuple[int, dict | None, str]:
    """(exit status, the summary JSON printed on stdout or None, stderr)."""
    capsys.readouterr()
    rc = cli.main(list(args))
    captured = capsys.readouterr()
    start = captured.out.find("{")
    printed = json.loads(captured.out[start:]) if start >= 0 else None
    return rc, printed, captured.err


# ---- a plain run --------------------------------------------------------------------------------

@pytest.mark.slow
def test_run_web_writes_every_dataset_and_accounts_for_every_input(tmp_path, capsys):
    out = tmp_path / "run"
    rc, printed, err = _run_cli(capsys, "run", "web", "--input", INPUTS, "--output", str(out), "--no-agent")
    assert rc == 0, err
    assert "3 input files" in err and "agent off" in err
    for name in DATASETS:
        assert list((out / name).glob("*.parquet")), name
    data = _read(out)
    s = data["summary"]
    # stdout is the summary without its config
    assert printed == {k: v for k, v in s.items() if k != "config"}
    assert printed["accounted"] is True and printed["inputs"] == 31
    assert s["written"] == len(data["pages"]) > 0
    assert s["filtered"] == len(data["filtered"]) and s["dead_letter"] == len(data["dead_letter"]) == 3
    assert s["inputs"] == s["written"] + s["filtered"] + s["dead_letter"]
    assert Counter(d["reason"] for d in data["dead_letter"]) == {"bad_record": 2, "corrupt_input": 1}
    assert Counter(f["filter_reason"] for f in data["filtered"])["not_html"] == 2
    # no agent: no tags, no LLM call, every domain retained for want of an agent
    assert data["tags"] == [] and s["llm_calls"] == 0 and s["pages_sampled"] == 0
    assert data["verdicts"] and {v["reasons"][0] for v in data["verdicts"]} <= {"no_agent", "small_domain"}
    assert all(p["verdict"] == "retain" for p in data["pages"])
    # the config is recorded in the file (not on stdout), agent off
    assert s["config"]["agent"] is False and s["config"]["input"] == INPUTS
    info = json.loads((out / "run_info.json").read_text())
    assert info["inputs_files"] == 3 and info["input"] == INPUTS and info["runner"].endswith("FnApiRunner")
    assert info["agent_model"] == ""


@pytest.mark.slow
def test_languages_filter_every_other_language_with_its_reason(tmp_path, capsys):
    out = tmp_path / "run"
    rc, printed, err = _run_cli(capsys, "run", "web", "--input", INPUTS, "--output", str(out), "--no-agent",
                                "--languages", "de")
    assert rc == 0, err
    assert "languages de" in err
    data = _read(out)
    # every fixture page is English: none is written
    assert data["pages"] == []
    by_language = [f for f in data["filtered"] if f["filter_reason"].startswith("language")]
    assert by_language and all(f["filter_reason"] == "language:en" and f["lang"] == "en"
                               and f["filter_stage"] == "page_filter" for f in by_language)
    # every page that reached the page filters was English, and nothing else stopped it first
    assert [f for f in data["filtered"] if f["filter_stage"] == "page_filter"] == by_language
    assert printed["filtered_reasons"]["language"] == len(by_language)
    assert printed["filter_checks_failed"]["language:en"] == len(by_language)
    assert printed["accounted"] is True and printed["written"] == 0
    assert data["summary"]["config"]["languages"] == ["de"]


# ---- refused before any input is read -------------------------------------------------------

def test_an_out_of_range_score_is_a_configuration_error(tmp_path, capsys):
    out = tmp_path / "run"
    rc, printed, err = _run_cli(capsys, "run", "web", "--input", INPUTS, "--output", str(out), "--no-agent",
                                "--min-lang-score", "2")
    assert rc == 2 and printed is None
    assert "configuration error" in err and "min_lang_score" in err
    assert not out.exists()


def test_a_pattern_that_matches_nothing_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    pattern = str(tmp_path / "nothing-here-*.warc.gz")
    rc, printed, err = _run_cli(capsys, "run", "web", "--input", pattern, "--output", str(out), "--no-agent")
    assert rc == 2 and printed is None
    assert "no files match --input" in err and pattern in err
    assert not out.exists()


def test_the_embedded_agent_is_refused_for_remote_workers(tmp_path, capsys):
    """The loopback model server cannot serve Dataflow workers: refused before any model starts
    or any input is read (DataflowRunner is only named, never contacted)."""
    out = tmp_path / "run"
    rc, printed, err = _run_cli(capsys, "run", "web", "--input", INPUTS, "--output", str(out),
                                "--llm-backend", "embedded", "--runner=DataflowRunner")
    assert rc == 2 and printed is None
    assert "configuration error" in err and "DataflowRunner" in err and "--llm-endpoint" in err
    assert not out.exists()


def test_a_missing_classifier_model_is_refused_with_the_training_hint(tmp_path, capsys):
    out = tmp_path / "run"
    rc, _, err = _run_cli(capsys, "run", "web", "--input", INPUTS, "--output", str(out), "--no-agent",
                          "--quality-model", str(tmp_path / "missing.bin"))
    assert rc == 2 and "missing.bin" in err and "scicurate train web-classifiers" in err
    assert not out.exists()


# ---- tags -> trained classifiers -> a run that uses them ---------------------------------------

# Generated pages: per domain, pages whose sentences draw subject, verb, object and phrase
# without replacement from the domain kind's lists, so every page is distinct (no exact, near
# or line duplicates) and passes the default Gopher/C4/FineWeb rules.
_KINDS = {
    "hq": (["The cooled sample", "Our superconducting film", "The laser cavity", "A thin graphene layer",
            "The neutron beam", "Each magnetic domain", "The optical lattice", "The quantum dot",
            "The crystal surface", "A trapped ion", "The plasma column", "The photon detector"],
           ["showed", "revealed", "produced", "suppressed", "enhanced", "shifted", "reduced", "doubled",
            "stabilised", "absorbed"],
           ["a sharp resonance", "the expected phase transition", "a weak magnetic moment",
            "the spin wave spectrum", "a narrow absorption line", "the thermal conductivity",
            "an unusual energy gap", "the electron mobility", "the coherence time", "a small Hall signal"],
           ["when the field was increased", "at low temperature", "under uniaxial strain",
            "after careful annealing", "in every repeated measurement", "with the pump beam switched on",
            "near the critical point", "in the presence of disorder", "within the error bars of the model",
            "as the theory of the group predicts"]),
    "lq": (["This amazing gadget", "Our best selling blender", "The cheap phone case", "This discount watch",
            "The luxury handbag", "Every bargain speaker", "This limited offer", "The top rated vacuum",
            "Our mega deal bundle", "This flash sale item", "The premium headset", "This trendy lamp"],
           ["costs", "beats", "saves", "includes", "offers", "guarantees", "gives", "brings", "delivers",
            "unlocks"],
           ["a huge discount", "free shipping for you", "the lowest price online", "a bonus gift card",
            "half the normal cost", "a cashback reward", "an extra coupon code", "the hottest savings",
            "a special member price", "a surprise voucher"],
           ["if you buy it today", "for a short time only", "while the stock lasts", "before the offer ends",
            "with our exclusive code", "at checkout right now", "for all new customers",
            "on every order this week", "when you click the button", "and you will love it"]),
}
_DOMAINS = {"quantum-lab.org": "hq", "cell-physics.net": "hq", "deals-hub.com": "lq", "coupon-world.biz": "lq"}
_PAGES_PER_DOMAIN = 6
HQ_TAGS = {"science_domain": "physics", "informative": True, "quality": 4, "format": "article", "issues": []}
LQ_TAGS = {"science_domain": "not_science", "informative": False, "quality": 1, "format": "product",
           "issues": ["ads"]}


def _sentences(kind: str, rng: random.Random, n: int = 8) -> list[str]:
    lists = [rng.sample(words, n) for words in _KINDS[kind]]
    return [" ".join(parts) + "." for parts in zip(*lists)]


def _write_pages(path: Path) -> dict[str, str]:
    """JSONL rows {url, html}; returns {url: kind}."""
    kinds, rows = {}, []
    for domain, kind in _DOMAINS.items():
        for i in range(_PAGES_PER_DOMAIN):
            s = _sentences(kind, random.Random(f"{domain}/{i}"))
            paras = "".join(f"<p>{' '.join(s[j:j + 2])}</p>" for j in range(0, len(s), 2))
            url = f"https://www.{domain}/page-{i}"
            rows.append({"url": url, "html": f"<html><head><title>{domain} {i}</title></head><body><article>"
                                              f"<h1>{domain} page {i}</h1>{paras}</article></body></html>"})
            kinds[url] = kind
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return kinds


def _agent_by_domain(body: dict, n: int) -> str:
    user = [m for m in body["messages"] if m["role"] == "user"][-1]["content"]
    url = json.loads(user.split("Page:\n", 1)[1].split("\n", 1)[0])["url"]
    return json.dumps(LQ_TAGS if _DOMAINS[url.split("/")[2].removeprefix("www.")] == "lq" else HQ_TAGS)


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    """Tag the generated pages through `run web` with the fake agent, train on the tags, then
    score the fixtures with the trained models. Returns every step's status and output."""
    base = tmp_path_factory.mktemp("loop")
    kinds = _write_pages(base / "generated.jsonl")
    result = {"kinds": kinds, "base": base}
    with FakeOpenAI(_agent_by_domain) as server:
        result["tag_rc"] = cli.main([
            "run", "web", "--input", str(base / "generated.jsonl"), "--output", str(base / "tagged"),
            "--llm-endpoint", server.url, "--llm-model", "fake-vlm", "--llm-backend", "endpoint",
            "--min-domain-pages", "3", "--no-rewrite"])
        result["requests"] = list(server.requests)
    result["tagged"] = _read(base / "tagged")
    result["train_rc"] = cli.main(["train", "web-classifiers", "--tags", str(base / "tagged" / "tags"),
                                   "--output", str(base / "models"), "--min-rows", "5"])
    result["scored_rc"] = cli.main([
        "run", "web", "--input", INPUTS, "--output", str(base / "scored"), "--no-agent",
        "--quality-model", str(base / "models" / "quality.bin"),
        "--format-model", str(base / "models" / "format.bin"), "--min-quality", "0.99"])
    result["scored"] = _read(base / "scored")
    return result


@pytest.mark.slow
def test_the_agent_run_tags_every_generated_page_by_domain(loop):
    assert loop["tag_rc"] == 0
    tagged = loop["tagged"]
    s = tagged["summary"]
    assert s["accounted"] is True and s["inputs"] == len(loop["kinds"]) == 24
    # every generated page survives the page filters and dedup, and is sampled and tagged once
    assert s["filtered_stages"].get("page_filter", 0) == 0 and s["dead_letter"] == 0
    tags = tagged["tags"]
    assert len(tags) == s["pages_sampled"] == s["tags_ok"] == len(loop["requests"]) == 24
    assert {t["url"] for t in tags} == set(loop["kinds"])
    for t in tags:
        expected = HQ_TAGS if loop["kinds"][t["url"]] == "hq" else LQ_TAGS
        assert t["ok"] and (t["quality"], t["format"], t["informative"]) == (
            expected["quality"], expected["format"], expected["informative"])
    verdicts = {v["domain"]: v["verdict"] for v in tagged["verdicts"]}
    assert verdicts == {"quantum-lab.org": "retain", "cell-physics.net": "retain",
                        "deals-hub.com": "discard", "coupon-world.biz": "discard"}


@pytest.mark.slow
def test_train_writes_both_models_and_a_card_from_the_tags(loop, capsys):
    assert loop["train_rc"] == 0
    models = loop["base"] / "models"
    assert (models / "quality.bin").stat().st_size > 0 and (models / "format.bin").stat().st_size > 0
    card = json.loads((models / "model_card.json").read_text())
    assert card["rows"]["read"] == 24 and card["rows"]["used"] == {"quality": 24, "format": 24}
    quality, fmt = card["models"]["quality"], card["models"]["format"]
    assert quality["labels"] == ["hq", "lq"] and fmt["labels"] == ["article", "product"]
    for model in (quality, fmt):
        assert model["rows"]["train"] + model["rows"]["holdout"] == 24
        assert len(model["label_counts"]["train"]) == 2     # both labels were trained on
    assert sum(quality["label_counts"]["train"].values()) == quality["rows"]["train"]


@pytest.mark.slow
def test_too_few_rows_for_training_is_a_configuration_error(loop, tmp_path, capsys):
    capsys.readouterr()
    rc = cli.main(["train", "web-classifiers", "--tags", str(loop["base"] / "tagged" / "tags"),
                   "--output", str(tmp_path / "models"), "--min-rows", "25"])
    err = capsys.readouterr().err
    assert rc == 2 and "configuration error" in err and "24 usable rows" in err and "25 rows" in err
    assert not (tmp_path / "models" / "quality.bin").exists()


@pytest.mark.slow
def test_the_trained_models_score_and_filter_a_run(loop):
    assert loop["scored_rc"] == 0
    data = loop["scored"]
    s = data["summary"]
    assert s["accounted"] is True and s["inputs"] == 31
    card = json.loads((loop["base"] / "models" / "model_card.json").read_text())
    names = f"{card['models']['quality']['name']},{card['models']['format']['name']}"
    rows = data["pages"] + data["filtered"]
    scored = [r for r in rows if r.get("filter_stage") not in UNSCORED_STAGES]
    unscored = [r for r in rows if r.get("filter_stage") in UNSCORED_STAGES]
    assert scored and unscored
    for r in scored:
        assert 0.0 <= r["quality_score"] <= 1.0 and r["classifier"] == names, r["url"]
        assert r["format"] in ("article", "product") and 0.0 < r["format_score"] <= 1.0
    # pages filtered before the models ran say so: not measured
    assert all(r["quality_score"] == -1.0 and r["classifier"] == "" for r in unscored)
    # the threshold: every scored page under 0.99 is filtered for it, and no other page
    below = {r["page_id"] for r in scored if r["quality_score"] < 0.99}
    flagged = {f["page_id"] for f in data["filtered"] if "quality_classifier" in f["filter_reasons"]}
    assert below and flagged == below
    assert s["filter_checks_failed"]["quality_classifier"] == len(below)
    assert all(p["quality_score"] >= 0.99 for p in data["pages"])
    # the summary records which models were used
    assert s["config"]["quality_model"].endswith("quality.bin") and s["config"]["min_quality"] == 0.99


# ---- eval web --extractor scicurate: domain line dedup on top of trafilatura ------------------

BOILERPLATE = "Subscribe to the Harbour Physics Gazette for weekly notes on tides and waves"
_TOPICS = ["tidal resonance in narrow bays", "internal waves on the continental shelf",
           "rip currents near sandbars", "the damping of swell by sea ice", "wave setup on coral reefs"]


def _article(title: str, body: list[str], extra: str) -> str:
    paras = "".join(f"<p>{p}</p>" for p in body)
    return (f"<html><head><title>{title}</title></head><body><nav><a href='/'>Home</a></nav>"
            f"<article><h1>{title}</h1>{paras}<p>{extra}</p></article><footer>Footer</footer></body></html>")


def _topic_paragraphs(topic: str) -> list[str]:
    return [f"This note describes {topic} as measured by our group over three field seasons.",
            f"The measurements of {topic} agree with a simple linear model once friction is included, "
            "and the remaining scatter is explained by changes in the wind over each day.",
            f"We close with open questions about {topic} that the next campaign should answer."]


@pytest.fixture(scope="module")
def snippets(tmp_path_factory):
    base = tmp_path_factory.mktemp("eval")
    html = base / "html"
    html.mkdir()
    records = []
    for i, topic in enumerate(_TOPICS):           # five pages of one domain, each with the line
        (html / f"a{i}.html").write_text(_article(f"Note {i}", _topic_paragraphs(topic), BOILERPLATE))
        records.append({"local_file": f"html/a{i}.html", "url": f"https://www.harbour-physics.org/notes/{i}",
                        "with": [f"This note describes {topic}"], "without": [BOILERPLATE]})
    # one page of another domain carries the same line as content: one page is no boilerplate
    topic = "sediment transport in estuaries"
    (html / "b0.html").write_text(_article("Estuary", _topic_paragraphs(topic), BOILERPLATE))
    records.append({"local_file": "html/b0.html", "url": "https://estuary-lab.net/sediment",
                    "with": [f"This note describes {topic}", BOILERPLATE], "without": []})
    truth = base / "truth.jsonl"
    truth.write_text("".join(json.dumps(r) + "\n" for r in records))
    return html, truth


def _eval(capsys, html: Path, truth: Path, extractor: str) -> dict:
    capsys.readouterr()
    rc = cli.main(["eval", "web", "--html", str(html), "--truth", str(truth), "--extractor", extractor, "--json"])
    out = capsys.readouterr().out
    assert rc == 0
    return json.loads(out)


def test_eval_scicurate_drops_a_domain_boilerplate_line_trafilatura_keeps(snippets, capsys):
    html, truth = snippets
    plain = _eval(capsys, html, truth, "trafilatura")
    ours = _eval(capsys, html, truth, "scicurate")
    for report in (plain, ours):
        assert report["summary"]["documents"] == 6 and report["summary"]["skipped_missing_file"] == 0
        assert report["summary"]["extraction_errors"] == 0 and report["summary"]["empty_predictions"] == 0
        # every "with" snippet, the other domain's copy of the line included, is found by both
        assert report["summary"]["tp"] == 7 and report["summary"]["fn"] == 0
    a_pages = [f"https://www.harbour-physics.org/notes/{i}" for i in range(5)]
    # trafilatura keeps the line on every page of the domain; scicurate's line dedup removes it
    assert all(plain["details"]["documents"][u]["found_without"] == [BOILERPLATE] for u in a_pages)
    assert plain["summary"]["fp"] == 5 and plain["summary"]["tn"] == 0
    assert all(ours["details"]["documents"][u]["found_without"] == [] for u in a_pages)
    assert ours["summary"]["fp"] == 0 and ours["summary"]["tn"] == 5
    assert ours["summary"]["extractor"] == "scicurate" and ours["summary"]["precision"] == 1.0
    assert ours["details"]["documents"]["https://estuary-lab.net/sediment"]["missed_with"] == []
