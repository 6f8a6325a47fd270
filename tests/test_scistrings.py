"""Scientific-string tagging (`classifiers/scistrings.py`) and `scicurate eval scistrings`: SMILES found
in prose and look-alikes left alone, sequences inline and in FASTA records, offsets into the original
text, idempotent tags, the caps, and the evaluator on a tiny corpus built here (the development
corpus run skips when absent)."""

from __future__ import annotations

import argparse
import csv
import json

import pytest
from rdkit import Chem

from conftest import corpus_dir
from scicurate.classifiers import scistrings as ss
from scicurate.config import ConfigError
from scicurate.evals import commands
from scicurate.evals import scistrings as ev

# Real SMILES (ESOL-style molecules and textbook ones), each with the syntax that proves it is SMILES.
SMILES = [
    "c1ccccc1",                              # benzene: aromatic ring
    "CC(=O)Oc1ccccc1C(=O)O",                 # aspirin
    "CN1C=NC2=C1C(=O)N(C(=O)N2C)C",          # caffeine
    "CC(C)=CCCC(C)=CC(=O)",                  # citral, ends on a branch
    "C/C=C/C",                               # trans-2-butene, stereo bonds
    "N[C@@H](C)C(=O)O",                      # L-alanine, chiral bracket atom
    "[Na+].[Cl-]",                           # a salt: two charged bracket atoms
    "[NH4+]",                                # one charged bracket atom
    "CC#N",                                  # acetonitrile: triple bond, 3 atoms
    "CCCCCCCCCCCCCCCC",                      # hexadecane: bare carbon chain
    "CCOCC",                                 # diethyl ether: bare, carbon-rich
    "ClCCCCl",                               # 1,3-dichloropropane: bare with halogens
    "O=S(=O)(O)O",                           # sulfuric acid: inorganic, 5 atoms
    "OCC3OC(OCC2OC(OC(C#N)c1ccccc1)C(O)C(O)C2O)C(O)C(O)C3O",   # amygdalin
]

# Prose look-alikes: acronyms, words, formulas, oxidation states, math, citations, code, colours.
NOT_SMILES = [
    "CNS", "NBS", "PBS", "DNA", "SJS", "WAS", "BLF", "ALD", "NCCN", "PCCC", "SCC", "CCS",
    "CO", "NO", "I", "Br", "Cl", "C", "S", "on", "no", "Con", "Bob", "SPOON", "CONSCIOUS",
    "H2O", "CO2", "N2O", "P2O5", "LiFePO4", "Ba0.95La0.05FeO3-δ", "CH3COOH", "Ca(NO3)2", "(NH4)2SO4", "CCl4",
    "P(III)", "N(III)", "Fe(III)", "Cu(II)",
    "P=NP", "O(N)", "C=O", "C=C", "N=N", "x=1", "CO/NO", "N.O.S.",
    "[12]", "[1,2]", "[C]", "[3H]", "(I)", "(S)",
    "https://example.org/CCO", "C++", "C#", "F#", "#CCCCCC", "13C", "1H", "C18", "S1", "C2v",
]


def smiles_spans(text: str) -> list[str]:
    return [s.text for s in ss.tag(text).spans if s.kind == "smiles"]


# ---- SMILES -------------------------------------------------------------------------------------

@pytest.mark.parametrize("smiles", SMILES)
def test_real_smiles_in_prose_are_tagged_with_rdkit_canonical_form(smiles):
    text = f"The compound {smiles} was dissolved in water."
    result = ss.tag(text)
    assert [s.text for s in result.spans] == [smiles]
    span = result.spans[0]
    assert span.kind == "smiles" and text[span.start:span.end] == smiles
    assert span.canonical == Chem.MolToSmiles(Chem.MolFromSmiles(smiles))
    assert result.text == f"The compound <SMILES>{smiles}</SMILES> was dissolved in water."


@pytest.mark.parametrize("string", NOT_SMILES)
def test_prose_look_alikes_are_not_tagged(string):
    text = f"We measured {string} in all samples, as before."
    result = ss.tag(text)
    assert result.spans == () and result.text == text


@pytest.mark.parametrize("template, expected", [
    ("(SMILES: {x}).", "(SMILES: <SMILES>{x}</SMILES>)."),
    ("[SMILES: {x}]", "[SMILES: <SMILES>{x}</SMILES>]"),
    ("'{x}',", "'<SMILES>{x}</SMILES>',"),
    ("\"{x}\";", "\"<SMILES>{x}</SMILES>\";"),
    ("({x})", "(<SMILES>{x}</SMILES>)"),
    ("is {x}.", "is <SMILES>{x}</SMILES>."),
    ("is {x}:", "is <SMILES>{x}</SMILES>:"),
])
def test_prose_punctuation_around_smiles_stays_outside_the_tag(template, expected):
    for x in ("CC(C)C(=O)O", "c1ccncc1", "CC(=O)N"):
        assert ss.tag(template.format(x=x)).text == expected.format(x=x)


def test_smiles_glued_to_a_word_is_not_a_candidate():
    assert smiles_spans("xc1ccccc1 and c1ccccc1y and c1ccccc1-based") == []


@pytest.mark.parametrize("candidate, reason", [
    ("c1ccccc1", "ok_ring"),
    ("[Na+].[Cl-]", "ok_bracket"),
    ("CC(C)O", "ok_syntax"),
    ("CCCCO", "ok_chain"),
    ("CCO", "bare_too_short"),
    ("NCCN", "bare_acronym_like"),
    ("CCCP", "bare_acronym_like"),
    ("C=O", "too_few_atoms"),
    ("[C]", "too_few_atoms"),
    ("P=NP", "inorganic_short"),
    ("CO2", "formula"),
    ("P(III)", "oxidation_state"),
    ("cco", "aromatic_without_ring"),
    ("C1CC", "formula"),               # an unpaired digit is a count, not a ring bond
    ("C(C)(C)(C)(C)C", "rdkit_invalid"),
    ("C[", "unbalanced_bracket"),
    ("", "empty"),
])
def test_judge_smiles_gives_the_reason(candidate, reason):
    verdict = ss.judge_smiles(candidate)
    assert verdict.reason == reason
    assert verdict.accepted == reason.startswith("ok_")


def test_too_long_candidates_skip_rdkit():
    config = ss.SciStringConfig(max_smiles_chars=10)
    assert ss.judge_smiles("CCCCCCCCCCCC", config).reason == "too_long"
    assert smiles_spans("C" * 1200) == []


@pytest.mark.parametrize("token, formula", [
    ("CO2", True), ("P2O5", True), ("Fe0.95O", True), ("Ca(NO3)2", True), ("C6H12O6", True),
    ("C1CCCCC1", False), ("CCO", False), ("c1ccccc1", False), ("C12CC1CC2", False),
])
def test_looks_like_formula(token, formula):
    assert ss.looks_like_formula(token) is formula


def test_trim_candidate_removes_prose_punctuation_only():
    assert ss.trim_candidate("(CCO).") == (1, 4)
    assert ss.trim_candidate("CC(C)C)") == (0, 6)
    assert ss.trim_candidate("CC(=O),") == (0, 6)
    assert ss.trim_candidate("[NH4+]]") == (0, 6)


# ---- sequences ----------------------------------------------------------------------------------

INSULIN_B = "FVNQHLCGSHLVEALYLVCGERGFFYTPKT"                    # human insulin B chain
UBIQUITIN = "MQIFVKTLTGKTITLEVEPSDTIENVKAKIQDKEGIPPDQQRLIFAGKQLEDGRTLSDYNIQKESTLHLVLRLRGG"
T7_PROMOTER = "TAATACGACTCACTATAGGG"
M13_FORWARD = "GTAAAACGACGGCCAGT"


def test_inline_sequences_get_fasta_tags_and_their_alphabet():
    text = (f"The T7 primer 5'-{T7_PROMOTER}-3' and M13 {M13_FORWARD.lower()} amplify it; the RNA "
            f"GGGAGACCACAACGGUUUCCC binds, and the insulin B chain {INSULIN_B} folds.")
    result = ss.tag(text)
    assert [(s.kind, s.text) for s in result.spans] == [
        ("dna", T7_PROMOTER), ("dna", M13_FORWARD.lower()), ("rna", "GGGAGACCACAACGGUUUCCC"), ("protein", INSULIN_B)]
    assert [s.alphabet for s in result.spans] == ["dna", "dna", "rna", "protein"]
    assert result.spans[1].canonical == M13_FORWARD
    assert f"5'-<FASTA>{T7_PROMOTER}</FASTA>-3'" in result.text
    assert f"chain <FASTA>{INSULIN_B}</FASTA> folds" in result.text


def test_genbank_blocks_of_ten_are_one_sequence():
    text = "ORIGIN atgcgtacgt tagcatgcat gcatg end"
    (span,) = ss.tag(text).spans
    assert span.kind == "dna" and span.text == "atgcgtacgt tagcatgcat gcatg"
    assert span.canonical == "ATGCGTACGTTAGCATGCATGCATG"


@pytest.mark.parametrize("text", [
    "Peptides such as RGD and YIGSR bind integrins.",                 # short peptides
    "The polyQ tract QQQQQQQQQQQQQQQQQQQQQQQQ expands.",                # low complexity
    "A homopolymer AAAAAAAAAAAAAAAAAAAA was added.",                   # fewer than 3 distinct bases
    "THEREPRESENTATIVESMETINTHEGARDENAREAANDSAT here.",               # caps prose run together
    "A caps heading DEPARTMENT MANAGEMENT STRATEGIES was printed.",
    "a cat at a gate can tan",                                       # nucleotide letters in words
])
def test_prose_is_not_a_sequence(text):
    assert [s for s in ss.tag(text).spans if s.kind != "smiles"] == []


def test_fasta_records_tag_their_sequence_lines_and_keep_the_header():
    text = ("Sequences used:\n"
            f">sp|P0CG48|UBIQ_HUMAN Ubiquitin\n{UBIQUITIN[:40]}\n{UBIQUITIN[40:]}\n"
            f">primer T7\n{T7_PROMOTER}\n\nThe end.")
    result = ss.tag(text)
    assert [(s.kind, s.alphabet, s.header) for s in result.spans] == [
        ("fasta", "protein", "sp|P0CG48|UBIQ_HUMAN Ubiquitin"), ("fasta", "dna", "primer T7")]
    protein, dna = result.spans
    assert protein.text == f"{UBIQUITIN[:40]}\n{UBIQUITIN[40:]}" and protein.canonical == UBIQUITIN
    assert dna.canonical == T7_PROMOTER
    assert result.text == ("Sequences used:\n"
                           f">sp|P0CG48|UBIQ_HUMAN Ubiquitin\n<FASTA>{UBIQUITIN[:40]}\n{UBIQUITIN[40:]}</FASTA>\n"
                           f">primer T7\n<FASTA>{T7_PROMOTER}</FASTA>\n\nThe end.")


@pytest.mark.parametrize("text", [
    "> Note: this is a Markdown quote\nIntroduction\n",            # "> " is a quote, not a header
    ">header\nIntroduction to the methods\n",                      # prose line after a header
    ">header\nShort\n",                                            # title case, too short
])
def test_not_fasta(text):
    assert ss.tag(text).spans == ()


# ---- tagging: offsets, idempotence, determinism, caps, stats -----------------------------------

MIXED = (f"Aspirin CC(=O)Oc1ccccc1C(=O)O and the primer {T7_PROMOTER} were used; CNS and H2O were not.\n"
         f">seq1 insulin B\n{INSULIN_B}\n")


def test_spans_are_offsets_into_the_original_and_strip_tags_inverts():
    result = ss.tag(MIXED)
    assert [s.kind for s in result.spans] == ["smiles", "dna", "fasta"]
    assert all(MIXED[s.start:s.end] == s.text for s in result.spans)
    assert ss.strip_tags(result.text) == MIXED
    assert ss.render(MIXED, result.spans) == result.text


def test_tagged_offset_carries_original_offsets_to_the_tagged_text():
    result = ss.tag(MIXED)
    for offset in range(len(MIXED) + 1):
        moved = ss.tagged_offset(result.spans, offset)
        assert ss.strip_tags(result.text[:moved]) == MIXED[:offset]
    for span in result.spans:        # a span's own bounds land just outside its tags
        assert result.text[ss.tagged_offset(result.spans, span.start):].startswith(f"<{span.tag}>")


def test_tagging_is_idempotent_and_deterministic():
    once = ss.tag(MIXED)
    twice = ss.tag(once.text)
    assert twice.text == once.text and twice.spans == ()
    assert twice.stats["already_tagged"] == 3
    assert ss.tag(MIXED) == once


def test_text_partly_tagged_gets_only_the_rest_tagged():
    text = "Known <SMILES>c1ccccc1</SMILES> and new CCN(CC)CC."
    result = ss.tag(text)
    assert result.text == "Known <SMILES>c1ccccc1</SMILES> and new <SMILES>CCN(CC)CC</SMILES>."
    assert [s.start for s in result.spans] == [text.index("CCN")]


def test_stats_count_every_candidate_by_outcome():
    result = ss.tag("x CC(C)O y (CCO) z C=O w c1ccccc1 v H2O P(III)")
    assert result.stats == {"smiles_candidates": 5, "smiles": 2, "smiles_rejected.bare_too_short": 1,
                            "smiles_rejected.too_few_atoms": 1, "smiles_rejected.oxidation_state": 1}


def test_doc_char_cap_keeps_the_rest_untagged_and_says_so():
    text = "a c1ccccc1 b " + "x" * 50 + " CCN(CC)CC"
    result = ss.tag(text, ss.SciStringConfig(max_doc_chars=20))
    assert result.capped and result.stats["capped_doc_chars"] == 1
    assert [s.text for s in result.spans] == ["c1ccccc1"]
    assert result.text.endswith(" CCN(CC)CC")


def test_rdkit_call_cap_stops_the_scan_and_says_so():
    text = "CCN(CC)CC c1ccccc1 CC(C)O"
    result = ss.tag(text, ss.SciStringConfig(max_rdkit_calls=2))
    assert result.capped and result.stats["capped_rdkit_calls"] == 1
    assert [s.text for s in result.spans] == ["CCN(CC)CC", "c1ccccc1"]


def test_pathological_tokens_do_not_backtrack():
    # each "(" once restarted a scan to the end of the run (quadratic); now one pass gives up at "x"
    assert ss.tag("C(" * 20000 + "x").spans == ()
    assert ss.tag(">h\nACGTACGTACGT\n" * 2000).stats["fasta"] == 2000


def test_switches_turn_kinds_off():
    assert [s.kind for s in ss.tag(MIXED, ss.SciStringConfig(smiles=False)).spans] == ["dna", "fasta"]
    assert [s.kind for s in ss.tag(MIXED, ss.SciStringConfig(sequences=False)).spans] == ["smiles"]


def test_records_validate():
    with pytest.raises(ValueError, match="kind"):
        ss.SciSpan("inchi", 0, 1, "C", "C")
    with pytest.raises(ValueError, match="bad span"):
        ss.SciSpan("smiles", 0, 3, "C", "C")
    with pytest.raises(ValueError, match="alphabet"):
        ss.SciSpan("dna", 0, 4, "ACGT", "ACGT", "protein")
    with pytest.raises(ValueError, match="min_protein"):
        ss.SciStringConfig(min_protein=0)
    with pytest.raises(ValueError, match="share"):
        ss.SciStringConfig(min_bare_carbon_share=1.5)
    span = ss.SciSpan("smiles", 0, 3, "CCO", "CCO")
    with pytest.raises(ValueError, match="overlap"):
        ss.render("CCO", [span, span])


def test_no_rdkit_output_on_stderr(capfd):
    ss.tag("C1CC C(C)(C)(C)(C)C c1cccc1")
    assert capfd.readouterr().err == ""


# ---- eval scistrings ----------------------------------------------------------------------------

HOSTS = [
    "We describe a new algorithm for the analysis of sparse graphs in this paper. It works well.",
    "The patients were followed for twelve months after the initial surgical treatment was done.",
    "Samples were annealed at high temperature and then cooled slowly to room temperature overnight.",
]


def tiny_corpus(tmp_path, positives, negatives):
    (tmp_path / "chem_bio" / "smiles").mkdir(parents=True)
    (tmp_path / "chem_bio" / "hard_negatives").mkdir(parents=True)
    (tmp_path / "text").mkdir()
    with (tmp_path / "chem_bio" / "smiles" / "mols.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["Compound ID", "smiles"])
        writer.writerows([[f"m{i}", s + " "] for i, s in enumerate(positives)])
    with (tmp_path / "chem_bio" / "hard_negatives" / "acr.tsv").open("w") as f:
        f.write("string\tsource\n" + "".join(f"{s}\tx\n" for s in negatives))
    with (tmp_path / "text" / "labeled_texts.dev.jsonl").open("w") as f:
        for i, host in enumerate(HOSTS):
            f.write(json.dumps({"id": str(i), "text": host}) + "\n")
    return tmp_path


def eval_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    ev.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_embed_places_the_string_at_its_offsets_in_both_modes():
    sentences = ev.split_sentences(HOSTS)
    assert len(sentences) == 3      # "It works well." is under 60 characters
    case = ev.Case("CC(=O)O", True, "g", 0)
    for mode in ev.MODES:
        e = ev.embed(case, mode, sentences, seed=0)
        assert e.sentence[e.start:e.end] == "CC(=O)O"
        assert ("SMILES" in e.sentence) == (mode == "cue")
        assert ev.embed(case, mode, sentences, seed=0) == e
    assert len({ev.embed(case, "bare", sentences, seed=s).sentence for s in range(8)}) > 1


def test_eval_counts_tp_fn_and_rdkit_groups_on_a_tiny_corpus(tmp_path):
    corpus = tiny_corpus(tmp_path, ["c1ccccc1", "CC(=O)O", "CCO"], ["CNS", "NBS", "H2O", "CNS"])
    report = ev.run(eval_args("--corpus", str(corpus), "--seed", "3"))
    for mode in ev.MODES:
        assert report.summary[f"tp.{mode}"] == 2 and report.summary[f"fn.{mode}"] == 1
        assert report.summary[f"fp.{mode}"] == 0 and report.summary[f"precision.{mode}"] == 1.0
        assert report.summary[f"recall.{mode}"] == pytest.approx(2 / 3)
        assert report.summary[f"target_met.{mode}"] is False
    rows = {(r["mode"], r["group"]): r for r in report.rows}
    assert rows[("bare", "acr/rdkit_valid")]["items"] == 3 and rows[("bare", "acr/rdkit_valid")]["strings"] == 2
    assert rows[("bare", "acr/rdkit_invalid")]["items"] == 1
    assert rows[("bare", "mols")]["tp"] == 2 and rows[("bare", "mols")]["recall"] == pytest.approx(2 / 3)
    assert report.details["fn_reasons"] == {"bare": {"bare_too_short": 1}, "cue": {"bare_too_short": 1}}
    assert {f["string"] for f in report.details["false_negatives"]} == {"CCO"}


def test_eval_counts_false_positives_by_kind():
    sentences = ev.split_sentences(HOSTS)
    negative = ev.embed(ev.Case("CNS", False, "n", 0), "bare", sentences, 0)
    positive = ev.embed(ev.Case("CC(=O)O", True, "p", 0), "bare", sentences, 0)

    def tagger_of(*ranges):
        def tagger(text):
            return tuple(ss.SciSpan("smiles", s, e, text[s:e], "x") for s, e in ranges), False, {}
        return tagger

    # the insertion is never before the first word, so [0, 2) is host prose
    bad = ev.score(negative, tagger_of((0, 2), (negative.start, negative.end)))
    assert (bad.tp, bad.fp_inserted, bad.fp_boundary, bad.fp_background) == (False, 1, 0, 1)
    shifted = ev.score(positive, tagger_of((positive.start, positive.end - 1)))
    assert (shifted.tp, shifted.fp_boundary) == (False, 1)
    good = ev.score(positive, tagger_of((positive.start, positive.end)))
    assert (good.tp, good.fp) == (True, 0)
    m = ev.metrics([bad, shifted, good])
    assert (m["tp"], m["fp"], m["fn"], m["precision"], m["recall"]) == (1, 3, 1, 0.25, 0.5)


def test_eval_missing_corpus_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="--corpus"):
        ev.run(eval_args("--corpus", str(tmp_path)))


def test_eval_is_registered_and_runs_from_the_cli(tmp_path, capsys):
    from scicurate.cli import main

    assert "scistrings" in commands()
    corpus = tiny_corpus(tmp_path, ["c1ccccc1"], ["CNS"])
    assert main(["eval", "scistrings", "--corpus", str(corpus), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["name"] == "scistrings" and report["summary"]["recall.bare"] == 1.0


@pytest.mark.corpus
def test_development_corpus_meets_the_target():
    root = corpus_dir()
    if not (root / ev.SMILES_DIR).is_dir() or not (root / ev.SENTENCES_FILE).is_file():
        pytest.skip(f"development corpus not found at {root} (set SCICURATE_CORPUS to run corpus tests)")
    report = ev.run(eval_args("--corpus", str(root)))
    for mode in ev.MODES:
        assert report.summary[f"precision.{mode}"] >= ev.TARGET_PRECISION
        assert report.summary[f"recall.{mode}"] >= ev.TARGET_RECALL
    groups = {r["group"] for r in report.rows}
    assert any(g.endswith("/rdkit_valid") for g in groups) and any(g.endswith("/rdkit_invalid") for g in groups)
