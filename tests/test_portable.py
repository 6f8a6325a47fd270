"""Every `scicurate run` pipeline on Beam's PortableRunner gives the rows of the default runner.

The portable run uses the SDK's own job service (`--runner=PortableRunner --job_endpoint=embed
--environment_type=LOOPBACK`): the pipeline goes through the job API that Flink and Dataflow
use (runner API protos, pickled DoFns, a gRPC SDK harness), while the default run is scicurate's
in-process FnApiRunner. Each pipeline runs once per runner through `cli.main` on a small shipped
or generated input chosen to reach every stage and every output dataset (dead letters
included), with LLM stages answered by tests/fake_openai.py. Then:

- every Parquet dataset (and the recall run's seed-candidate JSONL) holds the same rows, compared
  as sorted lists, since row order is not guaranteed;
- summary.json is equal as a whole, `config` included (neither run's output path nor runner is
  in it);
- the outputs are real: every dataset has rows, the run accounts for every input.

Left out of the comparison, because they differ between any two runs of one runner:
`latency_s` inside the `llm` columns (the wall-clock seconds of each model call), and
run_info.json (it records the runner and the wall time by design).
"""

from __future__ import annotations

import gzip
import json
import shutil
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import pyarrow.parquet as pq
import pytest

from fake_openai import FakeOpenAI, Reply
from scicurate import cli

from conftest import FIXTURE_PDFS, FIXTURES, recall_labels

pytestmark = pytest.mark.slow

PORTABLE = ("--runner=PortableRunner", "--job_endpoint=embed", "--environment_type=LOOPBACK")
RUNNERS = {"default": (), "portable": PORTABLE}
RUNNER_NAMES = {"default": "FnApiRunner", "portable": "PortableRunner"}
# wall-clock measures that differ between any two runs, whatever the runner
VOLATILE = frozenset({"latency_s"})


# ---- reading a run's outputs -----------------------------------------------------------------

def _stable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


def _canonical(row: dict) -> str:
    return json.dumps(_stable(row), sort_keys=True, ensure_ascii=False, default=repr)


def datasets(out: Path) -> dict[str, list[str]]:
    """{dataset folder relative to `out`: its rows, canonical JSON, sorted} for every Parquet
    dataset and every JSONL output under `out`."""
    found: dict[str, list[str]] = {}
    for folder in sorted({p.parent for p in out.rglob("*.parquet")}):
        rows = pq.read_table(folder).to_pylist()
        found[str(folder.relative_to(out))] = sorted(map(_canonical, rows))
    for folder in sorted({p.parent for p in out.rglob("*.jsonl")}):
        lines = [line for f in sorted(folder.glob("*.jsonl")) for line in f.read_text(encoding="utf-8").splitlines()]
        found[str(folder.relative_to(out))] = sorted(_canonical(json.loads(line)) for line in lines)
    return found


def files(out: Path) -> list[str]:
    return sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() and p.name != "run_info.json")


def summary(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text(encoding="utf-8"))


def run_both(base: Path, argv: Callable[[Path], list[str]]) -> dict:
    """The same command on each runner -> {runner: output folder, "seconds": {runner: wall}}."""
    result: dict[str, Any] = {"seconds": {}}
    for runner, flags in RUNNERS.items():
        out = base / runner
        started = time.perf_counter()
        rc = cli.main([*argv(out), *flags])
        result["seconds"][runner] = round(time.perf_counter() - started, 1)
        assert rc == 0, f"{runner} run exited {rc}"
        ran = json.loads((out / "run_info.json").read_text(encoding="utf-8"))["runner"]
        assert ran.endswith(RUNNER_NAMES[runner]), f"the {runner} run ran on {ran}"
        result[runner] = out
    return result


# ---- pdf -------------------------------------------------------------------------------------

PROSE = ("The measured cross section agrees with the prediction of the standard model within two deviations. "
         "We describe the detector, the selection of events and the estimate of the background from control "
         "samples. Systematic uncertainties are dominated by the calibration of the energy scale.")
VLM_ANSWER = "## Scanned notes\n\nThe field obeys \\(\\nabla \\cdot E = \\rho\\).\n\n\\[\nE = -\\nabla \\phi\n\\]"


def _vlm(body: dict, n: int) -> Reply:
    """A page without a text layer gets a transcription; a page with one gets an empty answer,
    which the client retries warmer and the page then keeps its low-cost text (a fallback)."""
    user = body["messages"][-1]["content"]
    prompt = next(part["text"] for part in user if part.get("type") == "text")
    return Reply(VLM_ANSWER if "(no text layer)" in prompt else "")


def _pdf_inputs(folder: Path) -> Path:
    """Fixture PDFs for every pdf stage: a shared licence page (page dedup), a second file of
    paper_a with other bytes (document near-dup), math (routing, formula check), a scan (no text
    layer, to the VLM), a corrupt file (dead letter) and a garbled one (filtered)."""
    import pikepdf
    from fpdf import FPDF

    folder.mkdir()
    for name in ("paper_a.pdf", "paper_b.pdf", "equations.pdf", "image_only.pdf", "corrupt.pdf"):
        shutil.copy(FIXTURE_PDFS / name, folder / name)
    with pikepdf.open(FIXTURE_PDFS / "paper_a.pdf") as pdf:
        pdf.docinfo["/Title"] = "paper a, second version"
        pdf.save(folder / "paper_a_v2.pdf", static_id=True)
    shift = str.maketrans("abcdefghijklmnopqrstuvwxyz", "qwertyuiopasdfghjklzxcvbnm")
    garbled = FPDF()
    garbled.set_creation_date(datetime(2024, 1, 1, tzinfo=timezone.utc))
    garbled.set_font("Helvetica", size=11)
    garbled.add_page()
    garbled.multi_cell(0, 6, PROSE.translate(shift))
    garbled.output(str(folder / "garbled.pdf"))
    return folder


@pytest.fixture(scope="module")
def pdf_runs(tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("pdf")
    inputs = _pdf_inputs(base / "in")
    with FakeOpenAI(_vlm) as server:
        return run_both(base, lambda out: [
            "run", "pdf", "--input", str(inputs / "*.pdf"), "--output", str(out), "--tokenizer", "words",
            "--route-budget", "0.3", "--high-cost", "vlm", "--llm-endpoint", server.url, "--llm-model", "fake-vlm",
            "--llm-timeout", "10"])


# ---- web -------------------------------------------------------------------------------------

GOOD = {"science_domain": "physics", "informative": True, "quality": 4, "format": "article", "issues": []}
MESSY = {"science_domain": "chemistry", "informative": True, "quality": 3, "format": "article",
         "issues": ["navigation"]}
SPAM = {"science_domain": "not_science", "informative": False, "quality": 0, "format": "product", "issues": ["ads"]}
SHOP = (["This amazing gadget", "Our best selling blender", "The cheap phone case", "This discount watch",
         "The luxury handbag", "Every bargain speaker", "This limited offer", "The top rated vacuum"],
        ["costs", "beats", "saves", "includes", "offers", "guarantees", "gives", "brings"],
        ["a huge discount", "free shipping for you", "the lowest price online", "a bonus gift card",
         "half the normal cost", "a cashback reward", "an extra coupon code", "the hottest savings"],
        ["if you buy it today", "for a short time only", "while the stock lasts", "before the offer ends",
         "with our exclusive code", "at checkout right now", "for all new customers", "on every order this week"])


def _web_inputs(folder: Path) -> str:
    """The shipped crawl (WARC, a cut WARC, JSONL with bad lines) and a shop of three pages that
    pass the page filters, one a near-copy of another: the agent tags the shop as spam (discard)."""
    folder.mkdir()
    for path in (FIXTURES / "web").glob("*.*[zl]"):
        shutil.copy(path, folder / path.name)
    rows = []
    for i in range(3):
        words = [kind[k * i:] + kind[:k * i] for k, kind in enumerate(SHOP, 1)]
        text = " ".join(f"<p>{' '.join(parts)}.</p>" for parts in zip(*words))
        rows.append({"url": f"https://www.deals-hub.com/item-{i}",
                     "html": f"<html><head><title>Item {i}</title></head><body><article><h1>Item {i}</h1>"
                             f"{text}</article></body></html>"})
    copy = rows[0]["html"].replace("Item 0</h1>", "Item 0, again</h1>")
    rows.append({"url": "https://www.deals-hub.com/item-0-copy", "html": copy})
    (folder / "shop.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(folder / "*.*[zl]")


def _web_agent(body: dict, n: int) -> str:
    """Triage tags by site (physics blog retained, chemistry site rewritten, the rest
    discarded); a rewrite returns the page unchanged but for one page, where it invents
    numbers (rejected by the guards)."""
    user = [m for m in body["messages"] if m["role"] == "user"][-1]["content"]
    page = json.loads(user.split("Page:\n", 1)[1].split("\n", 1)[0])
    if body.get("response_format"):
        url = page["url"]
        return json.dumps(GOOD if "physics-notes" in url else MESSY if "chem.example" in url else SPAM)
    if "Arrhenius" in page["text"]:
        return page["text"] + "\n\nThe lecture hall seats 420 students in 12 rows since 2031."
    return page["text"]


@pytest.fixture(scope="module")
def web_runs(tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("web")
    inputs = _web_inputs(base / "in")
    with FakeOpenAI(_web_agent) as server:
        return run_both(base, lambda out: [
            "run", "web", "--input", inputs, "--output", str(out), "--rules", "lenient",
            "--min-domain-pages", "3", "--llm-endpoint", server.url, "--llm-model", "fake-vlm", "--llm-timeout", "10",
            "--extract-workers", "1"])


# ---- recall ----------------------------------------------------------------------------------



def _recall_pool(folder: Path) -> str:
    """Recalled physics and chemistry texts (one URL domain hot: seed candidates), texts below
    threshold, an empty text (filtered), a line that is not JSON and a cut gzip (dead letters)."""
    folder.mkdir()
    rows = [{"id": f"q{i}", "text": "quark boson collider gluon hadron muon " * 3, "url": f"https://hep.example.org/{i}"}
            for i in range(6)]
    rows += [{"id": f"o{i}", "text": "election football market recipe holiday film", "url": f"https://hep.example.org/n{i}"}
             for i in range(6)]
    rows += [{"id": "c0", "text": "reagent titration solvent catalyst tricky", "url": "https://chem.example.com/a"},
             {"id": "c1", "text": "reagent titration solvent catalyst ester", "url": "https://chem.example.com/b"},
             {"id": "m0", "text": "phonon lattice superconductor crystal band magnon electron " * 2},
             {"id": "blank", "text": ""}]
    (folder / "pool.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + "{cut off\n")
    line = b'{"id": "z", "text": "election football market recipe holiday film"}\n'
    (folder / "pool2.jsonl.gz").write_bytes(gzip.compress(line, mtime=0)[:-6])
    return str(folder / "pool*")


def _spot_checker(body: dict, n: int) -> str:
    """In domain when the text has the domain's words; an unparseable answer for one text."""
    text = body["messages"][-1]["content"].split("Text:\n", 1)[1]
    if "tricky" in text:
        return "{broken"
    system = body["messages"][0]["content"]
    yes = ("corpus of physics" in system and "quark" in text) or "corpus of chemistry" in system
    return json.dumps({"in_domain": yes, "subfield": "none", "topic": "none"})


@pytest.fixture(scope="module")
def recall_runs(tmp_path_factory) -> dict:
    from scicurate.classifiers import recall_fasttext as rf

    base = tmp_path_factory.mktemp("recall")
    model = base / "model"
    config = rf.RecallConfig(dim=16, bucket=10_000, min_count=1, target_precision=0.9, min_predicted=2,
                             path_dim=16, path_epoch=25, path_bucket=10_000)
    rf.train_recall(recall_labels("t", 20), model, validation=recall_labels("v", 6), config=config)
    pool = _recall_pool(base / "in")
    with FakeOpenAI(_spot_checker) as server:
        return run_both(base, lambda out: [
            "run", "recall", "--input", pool, "--output", str(out), "--model", str(model), "--spot-check", "3",
            "--candidate-share", "0.3", "--llm-endpoint", server.url, "--llm-model", "fake-vlm", "--llm-timeout", "10"])


# ---- exam ------------------------------------------------------------------------------------

def _exam_checker(body: dict, n: int) -> str:
    """The fixture's multi-blank items: one incomplete, one unparseable answer, the rest complete."""
    item = json.loads(body["messages"][-1]["content"].split("Item:\n", 1)[1].split("\n\nReply", 1)[0])
    if item["stem"].startswith("Newton's second law"):
        return "{broken"
    if item["answer"] == "1,000":
        return json.dumps({"complete": False, "missing": ["blank 1: no answer part"]})
    return json.dumps({"complete": True, "missing": []})


@pytest.fixture(scope="module")
def exam_runs(tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("exam")
    with FakeOpenAI(_exam_checker) as server:
        return run_both(base, lambda out: [
            "run", "exam", "--input", str(FIXTURES / "exam" / "items.jsonl"), "--output", str(out),
            "--llm-endpoint", server.url, "--llm-model", "fake-vlm", "--llm-timeout", "10"])


# ---- images ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def images_runs(tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("images")
    return run_both(base, lambda out: [
        "run", "images", "--input", str(FIXTURES / "images" / "pairs.jsonl"), "--output", str(out)])


# ---- the comparison --------------------------------------------------------------------------

# Every dataset each run must write, with rows: the inputs above reach each one.
EXPECTED_DATASETS = {
    "pdf": {"documents", "pages", "filtered", "dead_letter"},
    "web": {"pages", "filtered", "dead_letter", "verdicts", "tags"},
    "recall": {"recalled/physics", "recalled/chemistry", "scores", "filtered", "dead_letter", "url_domains",
               "spot_check", "seed_candidates"},
    "exam": {"kept", "filtered", "dead_letter"},
    "images": {"kept", "filtered", "dead_letter"},
}


@pytest.fixture(scope="module", params=sorted(EXPECTED_DATASETS))
def runs(request) -> tuple[str, dict]:
    name = request.param
    result = request.getfixturevalue(f"{name}_runs")
    print(f"\n{name}: " + ", ".join(f"{runner} {s} s" for runner, s in result["seconds"].items()))
    return name, result


def _difference(default: list[str], portable: list[str]) -> str:
    a, b = Counter(default), Counter(portable)
    only_default, only_portable = sorted((a - b).elements()), sorted((b - a).elements())
    return (f"{len(only_default)} rows only in the default run, {len(only_portable)} only in the portable run; "
            f"first of each:\n{only_default[:1]}\n{only_portable[:1]}")


def test_portable_runner_writes_the_same_rows(runs):
    name, result = runs
    default, portable = datasets(result["default"]), datasets(result["portable"])
    assert sorted(portable) == sorted(default)
    for dataset, rows in default.items():
        assert portable[dataset] == rows, f"{name} {dataset}: " + _difference(rows, portable[dataset])
    assert files(result["portable"]) == files(result["default"])          # the same shard names


def test_portable_runner_writes_the_same_summary(runs):
    name, result = runs
    default, portable = summary(result["default"]), summary(result["portable"])
    differing = sorted(k for k in default.keys() | portable.keys() if default.get(k) != portable.get(k))
    assert portable == default, f"{name} summary.json differs in {differing}"


def test_the_runs_wrote_every_dataset_and_account_for_every_input(runs):
    name, result = runs
    written = datasets(result["default"])
    assert set(written) == EXPECTED_DATASETS[name]
    assert all(written[d] for d in written), [d for d in written if not written[d]]
    s = summary(result["default"])
    assert s["accounted"] is True and s["inputs"] > 0
