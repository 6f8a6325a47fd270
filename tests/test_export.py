"""`scicurate export`: runs -> deduplicated, labelled, mixed, shuffled training shards.

The runs here are written with the project's own Parquet schemas (a pdf run's documents/, a web
run's pages/ + verdicts/, recall runs' recalled/<domain>/), so every rule is exercised on known
rows; tests/test_export_e2e.py runs the real pipelines first. Counts use a whitespace word-level
tokenizer (one token per word) so token arithmetic can be checked by hand.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tokenizers import Tokenizer, models, pre_tokenizers

from scicurate import schema
from scicurate.config import ConfigError
from scicurate.export import ExportConfig, ExportError, run_export
from scicurate.parsers.pool_input import content_id as text_id
from scicurate.mixture import (
    Mixture,
    ShardSpec,
    allocate_cell,
    budget_for,
    cell_shares,
    load_mixture,
    mixture_from_dict,
)

VOCAB = [f"w{i:04d}" for i in range(3000)]


def words(seed: int, n: int = 120) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(VOCAB) for _ in range(n))


def edited(text: str, seed: int, share: float = 0.08) -> str:
    rng = random.Random(seed)
    out = text.split()
    for i in rng.sample(range(len(out)), int(len(out) * share)):
        out[i] = "zz" + out[i]
    return " ".join(out)


def write_rows(path: Path, parquet_schema: pa.Schema, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(schema.with_defaults(parquet_schema, rows), path)


def pdf_run(root: Path, docs: list[dict]) -> Path:
    write_rows(root / "documents" / "part-00000-of-00001.parquet", schema.DOCUMENT_SCHEMA, docs)
    (root / "pages").mkdir(parents=True)
    (root / "summary.json").write_text(json.dumps({"inputs": len(docs), "documents": len(docs)}))
    (root / "run_info.json").write_text(json.dumps({"input": str(root / "in" / "*.pdf")}))
    return root


def web_run(root: Path, pages: list[dict]) -> Path:
    write_rows(root / "pages" / "part-00000-of-00001.parquet", schema.WEB_PAGE_SCHEMA, pages)
    (root / "verdicts").mkdir(parents=True)
    (root / "summary.json").write_text(json.dumps({"inputs": len(pages)}))
    return root


def recall_run(root: Path, rows: list[dict]) -> Path:
    by_domain: dict[str, list[dict]] = {}
    for row in rows:
        by_domain.setdefault(row["domain"], []).append({"path": [row["domain"]], **row})
    for domain, part in by_domain.items():
        write_rows(root / "recalled" / domain / "part-00000-of-00001.parquet", schema.RECALLED_SCHEMA, part)
    (root / "summary.json").write_text(json.dumps({"inputs": len(rows)}))
    return root


@pytest.fixture
def tokenizer(tmp_path) -> str:
    vocab = {"[UNK]": 0}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    path = tmp_path / "tokenizer.json"
    tok.save(str(path))
    return str(path)


PAPER = words(1)                                   # found as a PDF and as a web page
CHEM = words(2, 60) + " the solvent <SMILES>CCO</SMILES> and <SMILES>c1ccccc1</SMILES> " + words(3, 40)


@pytest.fixture
def runs(tmp_path) -> dict[str, Path]:
    pdf = pdf_run(tmp_path / "pdf", [
        {"doc_id": "pdf-paper", "source": "in/paper.pdf", "text": PAPER, "edu_score": 3.5,
         "spans": [{"page_index": 0, "start": 0, "end": 10, "parser": "mineru-flash", "tier": "flash", "route": "low_cost",
                    "route_reason": "", "status": "ok", "is_fallback": False, "removed": ""}]},
        {"doc_id": "pdf-copy", "source": "in/copy.pdf", "text": edited(PAPER, 5), "duplicate_of": "pdf-paper"},
        {"doc_id": "pdf-chem", "source": "in/chem.pdf", "text": CHEM},
        {"doc_id": "pdf-unlabelled", "source": "in/u.pdf", "text": words(4)},
    ])
    web = web_run(tmp_path / "web", [
        # the paper again, as a web page: other case and spacing -> exact duplicate (normalised)
        {"page_id": "web-paper", "url": "https://example.org/paper", "text": "  " + PAPER.upper().replace(" ", "  "),
         "extractor": "trafilatura"},
        # near duplicate of a recall pool text (8% of words changed)
        {"page_id": "web-near", "url": "https://example.org/near", "text": edited(words(10), 7)},
        {"page_id": "web-math", "url": "https://example.org/math", "text": words(11)},
    ])
    labels = recall_run(tmp_path / "recall_labels", [
        {"doc_id": "pdf-paper", "text": PAPER, "domain": "physics", "score": 0.9},
        {"doc_id": "pdf-chem", "text": CHEM, "domain": "chemistry", "score": 0.8},
        {"doc_id": "web-math", "text": words(11), "domain": "mathematics", "score": 0.7},
    ])
    pool = recall_run(tmp_path / "recall_pool", [
        {"doc_id": "p-near", "text": words(10), "domain": "physics", "score": 0.9},
        # recalled into two domains: the higher score wins, the other row is `second_label`
        {"doc_id": "p-two", "text": words(12), "domain": "physics", "score": 0.6},
        {"doc_id": "p-two", "text": words(12), "domain": "mathematics", "score": 0.95},
        *({"doc_id": f"p-phys-{i}", "text": words(100 + i), "domain": "physics", "score": 0.9} for i in range(12)),
        *({"doc_id": f"p-math-{i}", "text": words(200 + i), "domain": "mathematics", "score": 0.9} for i in range(12)),
        *({"doc_id": f"p-chem-{i}", "text": words(300 + i), "domain": "chemistry", "score": 0.9} for i in range(3)),
    ])
    return {"pdf": pdf, "web": web, "labels": labels, "pool": pool}


def mixture(**changes) -> Mixture:
    data = {"domains": {"physics": 0.4, "mathematics": 0.4, "chemistry": 0.2}, "max_repeats": 2,
            "shard": {"target_tokens": 1000, "row_group_rows": 3}, "tolerance": 0.05}
    data.update(changes)
    return mixture_from_dict(data)


def export(runs, out: Path, tokenizer: str, mix: Mixture | None = None) -> dict:
    config = ExportConfig(mixture=mix or mixture(), tokenizer=tokenizer, interleaved=False)
    return run_export([str(p) for p in runs.values()], str(out), config, progress=lambda _line: None)


def read(out: Path, name: str) -> list[dict]:
    return pq.read_table(out / name).to_pylist()


# ---- mixture arithmetic ----------------------------------------------------------------------

def test_a_mixture_file_is_validated_with_messages(tmp_path):
    good = tmp_path / "m.yaml"
    good.write_text("domains: {physics: 0.5, chemistry: 0.5}\nshard: {target_rows: 10}\n")
    mix, digest = load_mixture(good)
    assert mix.shard.target_rows == 10 and mix.shard.target_tokens is None
    assert digest == hashlib.sha256(good.read_bytes()).hexdigest()
    for text, words_in_error in [
        ("domains: {physics: 0.5, chemistry: 0.4}", "sum to 1"),
        ("domains: {physiks: 1.0}", "unknown 'physiks'"),
        ("domains: {physics: 1.0}\nbudget: 5", "unknown keys"),
        ("domains: {physics: 1.0}\nshard: {target_rows: 5, target_tokens: 5}", "exactly one"),
        ("domains: {physics: 1.0}\nsources: {pdf: 2.0}", "sum to 1"),
        ("domains: {physics: 1.0}\nmax_repeats: 0", "max_repeats"),
        ("domains: {physics: 1.0}\ndedup: {prefer: [pdf, web]}", "prefer"),
        ("[1, 2", "not YAML"),
    ]:
        bad = tmp_path / "bad.yaml"
        bad.write_text(text)
        with pytest.raises(ConfigError, match=words_in_error):
            load_mixture(bad)


def test_allocation_downsamples_to_within_half_a_document_and_upsamples_up_to_the_cap():
    docs = [(key, 10, i) for i, key in enumerate(range(100, 200))]         # 100 docs x 10 tokens
    copies, result = allocate_cell(docs, target=333, max_repeats=2)
    assert abs(result.achieved - 333) <= 5 and not result.short
    assert set(copies.values()) == {1} and result.documents == len(copies)
    copies, result = allocate_cell(docs, target=1500, max_repeats=2)        # 1.5x: all once, half twice
    assert result.achieved == 1500 and sorted(set(copies.values())) == [1, 2] and not result.short
    copies, result = allocate_cell(docs, target=5000, max_repeats=2)        # 5x asked, 2x allowed
    assert result.achieved == 2000 and set(copies.values()) == {2} and result.short
    assert allocate_cell(docs, target=0, max_repeats=2)[0] == {}
    assert allocate_cell([], target=10, max_repeats=2)[1].short


def test_source_shares_are_renormalised_over_the_sources_a_domain_has():
    mix = mixture(sources={"pdf": 0.5, "web": 0.25, "recall": 0.25})
    available = {("physics", "pdf"): 100, ("physics", "web"): 100, ("mathematics", "recall"): 50,
                 ("chemistry", "web"): 10}
    shares = cell_shares(mix, available)
    assert shares[("physics", "pdf")] == pytest.approx(0.4 * 0.5 / 0.75)
    assert shares[("physics", "web")] == pytest.approx(0.4 * 0.25 / 0.75)
    assert shares[("mathematics", "recall")] == pytest.approx(0.4)
    assert sum(shares.values()) == pytest.approx(1.0)
    # no budget given: the largest one every cell fills within max_repeats (chemistry: 2 x 10 / 0.2)
    assert budget_for(mix, available, shares) == 100


# ---- the export ------------------------------------------------------------------------------

def test_every_document_is_accounted_for_and_the_manifest_adds_up(runs, tmp_path, tokenizer):
    out = tmp_path / "export"
    manifest = export(runs, out, tokenizer)
    shards = sorted((out / "shards").glob("part-*.parquet"))
    assert [f"shards/{p.name}" for p in shards] == [s["path"] for s in manifest["shards"]]
    assert len(shards) > 1                                                   # 1000-token shards
    rows = [r for p in shards for r in pq.read_table(p).to_pylist()]
    assert len(rows) == manifest["counts"]["rows"] == sum(s["rows"] for s in manifest["shards"])
    assert sum(r["tokens"] for r in rows) == manifest["counts"]["tokens"] == sum(s["tokens"] for s in manifest["shards"])
    assert all(r["tokens"] == len(r["text"].split()) for r in rows)
    for entry, path in zip(manifest["shards"], shards):
        assert entry["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        table = pq.read_table(path)
        assert entry["rows"] == table.num_rows and table.schema.equals(schema.EXPORT_SHARD_SCHEMA, check_metadata=False)
        assert entry["tokens"] <= 1000 or entry["rows"] == 1
        assert pq.ParquetFile(path).metadata.row_group(0).num_rows <= 3
    # every input row: in a shard (first copy) or filtered, exactly once
    filtered = read(out, "filtered")
    inputs = 4 + 3 + 3 + 3 + 12 + 12 + 3
    firsts = [r for r in rows if r["repeat"] == 0]
    assert len(firsts) + len(filtered) == inputs == manifest["counts"]["documents_read"]
    assert manifest["accounted"] is True
    assert len({r["id"] for r in rows}) == len(rows)                        # repeats get ~k ids


def test_cross_source_duplicates_keep_the_pdf_and_say_which_copy_they_duplicate(runs, tmp_path, tokenizer):
    out = tmp_path / "export"
    export(runs, out, tokenizer)
    filtered = {(r["source"], r["doc_id"]): r for r in read(out, "filtered")}
    web_copy = filtered[("web", "web-paper")]
    assert web_copy["reason"] == "exact_duplicate" and web_copy["duplicate_of"] == text_id(PAPER)
    # web ranks above recall: the pool's text is the one dropped, and its label moves to the page
    near = filtered[("recall", "p-near")]
    assert near["reason"] == "near_duplicate" and near["duplicate_of"] == text_id(edited(words(10), 7))
    kept = {r["doc_id"]: r for r in read(out, "shards") if r["repeat"] == 0}["web-near"]
    assert kept["domain"] == "physics" and kept["label_from"] == f"inherited:{text_id(words(10))}"
    assert filtered[("pdf", "pdf-copy")]["reason"] == "duplicate_in_run"
    assert filtered[("pdf", "pdf-copy")]["duplicate_of"] == text_id(PAPER)
    assert filtered[("recall", "p-two")]["reason"] == "second_label"
    used = {k[1] for k, r in filtered.items() if r["reason"] == "used_as_label"}
    assert used == {"pdf-paper", "pdf-chem", "web-math"}
    assert filtered[("pdf", "pdf-unlabelled")]["reason"] == "not_in_mixture"


def test_recall_labels_reach_pdf_and_web_documents_with_provenance(runs, tmp_path, tokenizer):
    out = tmp_path / "export"
    export(runs, out, tokenizer)
    rows = {(r["source"], r["doc_id"]): r for r in read(out, "shards") if r["repeat"] == 0}
    paper = rows[("pdf", "pdf-paper")]
    assert paper["domain"] == "physics" and paper["domain_path"] == ["physics"]
    assert paper["label_from"] == f"recall:{runs['labels']}" and paper["parser"] == "mineru-flash"
    assert paper["origin"] == "in/paper.pdf" and paper["run"] == str(runs["pdf"])
    assert json.loads(paper["scores"])["edu_score"] == 3.5
    assert rows[("web", "web-math")]["domain"] == "mathematics"
    two = rows[("recall", "p-two")]
    assert two["domain"] == "mathematics"                                   # 0.95 beats 0.6
    chem = rows[("pdf", "pdf-chem")]
    assert chem["scistring_tokens"] == 2 and chem["tokens"] == 105          # one word per tagged span here
    assert chem["domain"] == "chemistry"


def test_domain_shares_meet_the_mixture_where_data_suffices_and_short_domains_are_named(runs, tmp_path, tokenizer):
    out = tmp_path / "export"
    manifest = export(runs, out, tokenizer, mixture(budget_tokens=6000))
    shares = {d["domain"]: d for d in manifest["shares"]["domains"]}
    # chemistry gives 930 of its 1,200: the others' fair share is 2,400 / (2,400 + 2,400 + 930)
    for name in ("physics", "mathematics"):
        assert shares[name]["target_share_given_short"] == pytest.approx(2400 / 5730, abs=1e-6)
        assert abs(shares[name]["achieved_share"] - 2400 / 5730) <= 0.02, shares[name]
        assert shares[name]["within_tolerance"] and not shares[name]["short"]
    assert not shares["chemistry"]["within_tolerance"] and shares["chemistry"]["achieved_tokens"] == 930
    # chemistry has 4 documents (465 tokens): 1,200 asked, at most 2 copies each -> short
    assert shares["chemistry"]["short"] and manifest["shares"]["short_domains"] == ["chemistry"]
    rows = read(out, "shards")
    assert max(r["repeat"] for r in rows if r["domain"] == "chemistry") == 1
    achieved = sum(r["tokens"] for r in rows if r["domain"] == "physics")
    assert achieved == shares["physics"]["achieved_tokens"]


def test_budget_left_null_fills_the_scarcest_domain_and_downsamples_the_rest(runs, tmp_path, tokenizer):
    out = tmp_path / "export"
    manifest = export(runs, out, tokenizer, mixture(max_repeats=1))
    # chemistry (465 tokens at 0.2) sets the budget: 2,325 tokens; physics and mathematics give 930 of 1,680
    assert manifest["shares"]["budget_tokens"] == 2325
    shares = manifest["shares"]
    assert shares["short_domains"] == [] and shares["within_tolerance"]
    assert manifest["counts"]["filtered"]["downsampled"] > 0
    reasons = {r["reason"] for r in read(out, "filtered")}
    assert "downsampled" in reasons


def test_a_rerun_reproduces_every_file_byte_for_byte_and_the_seed_moves_rows(runs, tmp_path, tokenizer):
    first, second, other = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    export(runs, first, tokenizer)
    export(runs, second, tokenizer)
    export(runs, second, tokenizer)                                         # over its own earlier output

    def files(root: Path) -> dict[str, bytes]:
        return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
                if p.is_file() and p.name != "run_info.json"}

    assert files(first) == files(second)
    assert (first / "report.html").is_file() and not (second / "_spill").exists()
    export(runs, other, tokenizer, mixture(seed=7))
    order = lambda root: [r["id"] for r in read(root, "shards")]            # noqa: E731
    assert order(first) != order(other)
    assert order(first) != sorted(order(first))                             # shuffled, not id order


def test_shards_read_back_with_duckdb_polars_and_hugging_face_datasets(runs, tmp_path, tokenizer, monkeypatch):
    out = tmp_path / "export"
    manifest = export(runs, out, tokenizer)
    glob = str(out / "shards" / "*.parquet")
    duckdb = pytest.importorskip("duckdb", reason="duckdb is in the dev extra")
    n, tokens = duckdb.connect().execute(f"select count(*), sum(tokens) from read_parquet('{glob}')").fetchall()[0]
    assert (n, tokens) == (manifest["counts"]["rows"], manifest["counts"]["tokens"])
    polars = pytest.importorskip("polars", reason="polars is in the dev extra")
    frame = polars.read_parquet(glob)
    assert frame.height == n and frame["tokens"].sum() == tokens
    assert set(frame.columns) >= {"id", "text", "tokens", "domain", "source", "origin", "run"}
    datasets = pytest.importorskip("datasets", reason="datasets is in the dev extra")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    ds = datasets.load_dataset("parquet", data_files=glob, split="train", cache_dir=str(tmp_path / "hf"))
    assert ds.num_rows == n and sum(ds["tokens"]) == tokens


def test_source_shares_split_a_domain_between_sources(runs, tmp_path, tokenizer):
    out = tmp_path / "export"
    mix = mixture(domains={"physics": 1.0}, sources={"pdf": 0.5, "web": 0.0, "recall": 0.5}, budget_tokens=600)
    manifest = export(runs, out, tokenizer, mix)
    by_source = {s["source"]: s for s in manifest["shares"]["sources"]}
    # physics/pdf is one 120-word paper: 300 asked, 2 copies allowed -> 240; recall fills its 300
    assert by_source["pdf"]["achieved_tokens"] == 240
    assert abs(by_source["recall"]["achieved_tokens"] - 300) <= 60


def test_unreadable_parts_become_dead_letters_and_bad_inputs_are_refused(runs, tmp_path, tokenizer):
    broken = runs["pool"] / "recalled" / "physics" / "part-00001-of-00002.parquet"
    broken.write_bytes(b"PAR1 this is not parquet")
    out = tmp_path / "export"
    manifest = export(runs, out, tokenizer)
    dead = read(out, "dead_letter")
    assert [(d["reason"], d["source"]) for d in dead] == [("unreadable_dataset", str(broken))]
    assert manifest["counts"]["dead_letter"] == {"unreadable_dataset": 1} and manifest["accounted"]
    unfinished = tmp_path / "unfinished"
    pdf_run(unfinished, [{"doc_id": "x", "text": "y"}])
    (unfinished / "summary.json").unlink()
    with pytest.raises(ConfigError, match="did not finish"):
        export({"x": unfinished}, tmp_path / "o2", tokenizer)
    with pytest.raises(ConfigError, match="not a pdf, web or recall run"):
        export({"x": tmp_path}, tmp_path / "o3", tokenizer)
    with pytest.raises(ExportError, match="overlap"):
        export(runs, runs["pdf"] / "export", tokenizer)


def test_the_report_draws_the_mixture_and_one_length_histogram_per_domain(runs, tmp_path, tokenizer):
    out = tmp_path / "export"
    manifest = export(runs, out, tokenizer)
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 1 + len(manifest["token_lengths"]["domains"])
    assert "Content-Security-Policy" in html and "<script" not in html
    assert "mathematics" in html and "OK" in html


def test_the_cli_writes_the_manifest_and_prints_the_summary(runs, tmp_path, tokenizer, capsys):
    from scicurate.cli import main

    mix = tmp_path / "mix.yaml"
    mix.write_text("domains: {physics: 0.5, mathematics: 0.5}\nshard: {target_rows: 5}\n")
    rc = main(["export", "--inputs", *map(str, runs.values()), "--mixture", str(mix), "--output",
               str(tmp_path / "cli"), "--tokenizer", tokenizer, "--no-interleaved"])
    out = capsys.readouterr().out
    assert rc == 0 and "accounted: yes" in out and "filtered not_in_mixture" in out
    manifest = json.loads((tmp_path / "cli" / "manifest.json").read_text())
    assert all(s["rows"] <= 5 for s in manifest["shards"])
    assert manifest["mixture"]["file_sha256"] == hashlib.sha256(mix.read_bytes()).hexdigest()
    assert main(["export", "--inputs", str(tmp_path / "nope"), "--output", str(tmp_path / "x")]) == 2


def test_shard_spec_needs_exactly_one_size():
    with pytest.raises(ConfigError):
        ShardSpec(target_tokens=None, target_rows=None)


def test_a_natural_mixture_takes_every_unique_document_once(runs, tmp_path, tokenizer):
    out = tmp_path / "export"
    manifest = export(runs, out, tokenizer, mixture_from_dict({"domains": "natural"}))
    rows = read(out, "shards")
    assert {r["repeat"] for r in rows} == {0}
    reasons = manifest["counts"]["filtered"]
    assert "downsampled" not in reasons and "not_in_mixture" not in reasons
    assert any(r["domain"] == "unlabelled" for r in rows)
    shares = manifest["shares"]
    assert shares["within_tolerance"] and not shares["short_domains"]
    assert manifest["mixture"]["domains"] == "natural"
    with pytest.raises(ConfigError, match="natural"):
        Mixture(domains=(("physics", 1.0),), natural=True)


def test_relative_pdf_paths_start_where_the_run_ran_not_where_the_export_runs(tmp_path, monkeypatch):
    from scicurate.export_interleave import input_folder, origin_path
    from scicurate.export_read import RunSpec

    spec = RunSpec(path="r", pipeline="pdf", summary={}, files=(),
                   run_info={"input": "papers/**/*.pdf", "cwd": str(tmp_path / "work")})
    monkeypatch.chdir(tmp_path)
    assert input_folder(spec) == str(tmp_path / "work" / "papers")
    assert origin_path(spec, "papers/a/x.pdf") == str(tmp_path / "work" / "papers" / "a" / "x.pdf")
    assert origin_path(spec, "/abs/x.pdf") == "/abs/x.pdf"
    assert origin_path(spec, "https://h/x.pdf") == "https://h/x.pdf"      # refused later, never fetched
    older = RunSpec(path="r", pipeline="pdf", summary={}, files=(), run_info={"input": "in/*.pdf"})
    assert input_folder(older) == str(tmp_path / "in")                     # runs before `cwd` was recorded
    assert input_folder(RunSpec(path="r", pipeline="pdf", summary={}, files=(), run_info=None)) is None
