"""`scicurate eval scistrings`: precision and recall of the SMILES tagger (`classifiers/scistrings.py`)
on real SMILES and real look-alikes, each embedded in a real sentence.

Goes in: the development corpus (`--corpus DIR`, default $SCICURATE_CORPUS or `../shared/corpus`):
- positives: every `chem_bio/smiles/*.csv` with a `smiles` column (ESOL, 1,128 molecules);
- negatives: every `chem_bio/hard_negatives/*.tsv` with a `string` column (disease acronyms from
  NCBI-disease, material mentions from the Olivetti synthesis corpus), one item per row (mention),
  so frequent strings weigh as they do in text. Each negative is first parsed with RDKit and falls in
  `rdkit_valid` (a look-alike that is syntactically SMILES: CNS, NBS, S) or `rdkit_invalid`; both
  are negatives in prose;
- host sentences: sentences of `text/labeled_texts.dev.jsonl` (`text`), 60-400 characters.

Each string is embedded twice, in a host sentence picked by a seeded hash of (mode, group, row):
- `bare`: inserted between two words at a hashed word position, with no cue word at all;
- `cue`: inserted at a hashed word position inside one of a few templates that name SMILES
  (`(SMILES: X)`, `(SMILES X)`, `[SMILES: X]`, `, SMILES X,`), negatives included, so both modes
  compare like with like. The tagger reads no cue words; the mode tests punctuation and brackets.

Scoring per embedded sentence, with the inserted string at [a, b):
- positive: TP when a `smiles` span is exactly [a, b); otherwise FN. A span that overlaps [a, b)
  without being equal is also an FP (`boundary`);
- negative: any span overlapping [a, b) is an FP (`inserted`);
- any span elsewhere in the sentence is an FP (`background`: the tagger fired on the host prose);
- precision = TP / (TP + FP), recall = TP / positives, F1 their harmonic mean, per mode.
Precision depends on the mix: all negative mentions against all positives (about 6 to 1 here).

Target: precision >= 0.98 at recall >= 0.9, per mode. Sequences are not scored: the corpus holds no
real protein or nucleotide sequence (checked: no FASTA file, no run of 10+ nucleotides or 12+
residues in the labelled texts); the unit tests cover them.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from scicurate.config import ConfigError
from scicurate.evals import EvalCommand, EvalReport, register

TARGET = "precision >= 0.98 at recall >= 0.9"
TARGET_PRECISION, TARGET_RECALL = 0.98, 0.90
MODES = ("bare", "cue")
CUE_TEMPLATES = ("(SMILES: {x})", "(SMILES {x})", "[SMILES: {x}]", ", SMILES {x},")
MIN_SENTENCE, MAX_SENTENCE = 60, 400
SMILES_DIR = "chem_bio/smiles"
NEGATIVES_DIR = "chem_bio/hard_negatives"
SENTENCES_FILE = "text/labeled_texts.dev.jsonl"


@dataclass(frozen=True, slots=True)
class Case:
    """One string to embed: a positive SMILES or a negative look-alike, with its group."""

    string: str
    positive: bool
    group: str          # positives: the CSV's stem; negatives: "<tsv stem>/rdkit_valid|rdkit_invalid"
    row: int


@dataclass(frozen=True, slots=True)
class Embedded:
    case: Case
    mode: str
    sentence: str
    start: int          # the inserted string is sentence[start:end]
    end: int

    def __post_init__(self) -> None:
        if self.sentence[self.start:self.end] != self.case.string:
            raise ValueError(f"embedding of {self.case.string!r} is misplaced")


@dataclass(frozen=True, slots=True)
class Outcome:
    embedded: Embedded
    tp: bool
    fp_inserted: int      # spans overlapping a negative's insertion
    fp_boundary: int      # spans overlapping a positive's insertion, not equal to it
    fp_background: int    # spans elsewhere in the host sentence
    spans: tuple[tuple[int, int, str], ...]

    @property
    def fp(self) -> int:
        return self.fp_inserted + self.fp_boundary + self.fp_background


# ---- corpus -------------------------------------------------------------------------------------

def default_corpus() -> Path:
    env = os.environ.get("SCICURATE_CORPUS")
    return Path(env) if env else Path.cwd().parent / "shared" / "corpus"


def rdkit_valid(string: str) -> bool:
    from scicurate.classifiers.scistrings import rdkit_mol

    return rdkit_mol(string) is not None


def read_positives(folder: Path) -> list[Case]:
    """Every row of every CSV in `folder` that has a `smiles` column (header matched case-insensitively)."""
    cases: list[Case] = []
    for path in sorted(folder.glob("*.csv")):
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            column = next((c for c in reader.fieldnames or () if c.strip().lower() == "smiles"), None)
            if column is None:
                continue
            for row, record in enumerate(reader):
                string = (record[column] or "").strip()
                if string:
                    cases.append(Case(string, True, path.stem, row))
    return cases


def read_negatives(folder: Path) -> list[Case]:
    """Every row of every TSV in `folder` with a `string` column, grouped by file and RDKit validity."""
    cases: list[Case] = []
    valid: dict[str, bool] = {}
    for path in sorted(folder.glob("*.tsv")):
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
            if "string" not in (reader.fieldnames or ()):
                continue
            for row, record in enumerate(reader):
                string = (record["string"] or "").strip()
                if not string:
                    continue
                if string not in valid:
                    valid[string] = rdkit_valid(string)
                kind = "rdkit_valid" if valid[string] else "rdkit_invalid"
                cases.append(Case(string, False, f"{path.stem}/{kind}", row))
    return cases


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\"'])")


def split_sentences(texts: Iterable[str]) -> list[str]:
    """Sentences of 60-400 characters, whitespace collapsed, in input order, unique, without `<`
    (no tags in the hosts)."""
    seen: set[str] = set()
    sentences: list[str] = []
    for text in texts:
        for sentence in _SENTENCE_END.split(" ".join(text.split())):
            if MIN_SENTENCE <= len(sentence) <= MAX_SENTENCE and "<" not in sentence and sentence not in seen:
                seen.add(sentence)
                sentences.append(sentence)
    return sentences


def read_sentences(path: Path) -> list[str]:
    from scicurate.jsonl import read_objects

    return split_sentences(obj["text"] for _, obj in read_objects(path) if isinstance(obj.get("text"), str))


# ---- embedding and scoring ----------------------------------------------------------------------

def _hash(seed: int, *key: Any) -> int:
    digest = hashlib.sha256(":".join(str(k) for k in (seed, *key)).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big")


def embed(case: Case, mode: str, sentences: Sequence[str], seed: int) -> Embedded:
    """Insert `case.string` into a hashed host sentence at a hashed word position (module docstring)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}; got {mode!r}")
    key = (mode, case.group, case.row, case.string)
    host = sentences[_hash(seed, "sentence", *key) % len(sentences)]
    words = host.split(" ")
    k = 1 + _hash(seed, "position", *key) % max(1, len(words) - 1)     # never before the first word
    if mode == "bare":
        piece, offset = case.string, 0
    else:
        template = CUE_TEMPLATES[_hash(seed, "template", *key) % len(CUE_TEMPLATES)]
        piece = template.format(x=case.string)
        offset = template.index("{x}")
    before = " ".join(words[:k])
    sep = "" if piece.startswith(",") else " "
    sentence = before + sep + piece + (" " + " ".join(words[k:]) if words[k:] else "")
    start = len(before) + len(sep) + offset
    return Embedded(case, mode, sentence, start, start + len(case.string))


def score(embedded: Embedded, tagger=None) -> Outcome:
    """Tag the embedded sentence and count TP / FP kinds (module docstring)."""
    if tagger is None:
        from scicurate.classifiers.scistrings import find_spans as tagger
    spans, _, _ = tagger(embedded.sentence)
    a, b = embedded.start, embedded.end
    tp = False
    inserted = boundary = background = 0
    for span in spans:
        overlaps = span.start < b and a < span.end
        if embedded.case.positive and span.kind == "smiles" and (span.start, span.end) == (a, b):
            tp = True
        elif overlaps and embedded.case.positive:
            boundary += 1
        elif overlaps:
            inserted += 1
        else:
            background += 1
    return Outcome(embedded, tp, inserted, boundary, background,
                   tuple((s.start, s.end, s.kind) for s in spans))


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def metrics(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    positives = sum(1 for o in outcomes if o.embedded.case.positive)
    tp = sum(1 for o in outcomes if o.tp)
    fp = sum(o.fp for o in outcomes)
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, positives)
    f1 = (2 * precision * recall / (precision + recall) if precision and recall else
          (0.0 if precision is not None and recall is not None else None))
    return {"positives": positives, "negatives": len(outcomes) - positives, "tp": tp, "fp": fp,
            "fn": positives - tp, "precision": precision, "recall": recall, "f1": f1,
            "fp_inserted": sum(o.fp_inserted for o in outcomes),
            "fp_boundary": sum(o.fp_boundary for o in outcomes),
            "fp_background": sum(o.fp_background for o in outcomes)}


def evaluate(positives: Sequence[Case], negatives: Sequence[Case], sentences: Sequence[str], seed: int = 0,
             tagger=None) -> dict[str, list[Outcome]]:
    """{mode: one Outcome per case} for every mode."""
    if not sentences:
        raise ValueError("no host sentences")
    cases = list(positives) + list(negatives)
    return {mode: [score(embed(c, mode, sentences, seed), tagger) for c in cases] for mode in MODES}


# ---- report -------------------------------------------------------------------------------------

def to_report(results: dict[str, list[Outcome]], *, source: str, seed: int, sentences: int) -> EvalReport:
    from scicurate.classifiers.scistrings import DEFAULT_CONFIG, VERSION, judge_smiles, rdkit_version

    summary: dict[str, Any] = {"source": source, "tagger": VERSION, "rdkit": rdkit_version(), "seed": seed,
                               "host_sentences": sentences, "target": TARGET}
    for mode, outcomes in results.items():
        m = metrics(outcomes)
        for key in ("precision", "recall", "f1", "tp", "fp", "fn"):
            summary[f"{key}.{mode}"] = m[key]
        summary[f"target_met.{mode}"] = bool(m["precision"] is not None and m["recall"] is not None
                                            and m["precision"] >= TARGET_PRECISION and m["recall"] >= TARGET_RECALL)
    columns = ("mode", "group", "label", "items", "strings", "tagged", "tp", "fp", "fn", "recall", "fp_rate")
    rows = []
    details: dict[str, Any] = {"false_positives": [], "false_negatives": [], "fn_reasons": {}}
    for mode, outcomes in results.items():
        groups: dict[str, list[Outcome]] = {}
        for o in outcomes:
            groups.setdefault(o.embedded.case.group, []).append(o)
        for group in sorted(groups):
            items = groups[group]
            positive = items[0].embedded.case.positive
            tp = sum(1 for o in items if o.tp)
            fp = sum(o.fp for o in items)
            tagged = sum(1 for o in items if o.tp or o.fp_inserted or o.fp_boundary)
            rows.append({"mode": mode, "group": group, "label": "positive" if positive else "negative",
                         "items": len(items), "strings": len({o.embedded.case.string for o in items}),
                         "tagged": tagged, "tp": tp, "fp": fp, "fn": len(items) - tp if positive else 0,
                         "recall": tp / len(items) if positive else None,
                         "fp_rate": fp / len(items)})
        reasons: Counter[str] = Counter()
        for o in outcomes:
            e = o.embedded
            if o.fp:
                details["false_positives"].append({
                    "mode": mode, "group": e.case.group, "string": e.case.string, "sentence": e.sentence,
                    "inserted": [e.start, e.end], "spans": [list(s) for s in o.spans],
                    "tagged": [e.sentence[s:t] for s, t, _ in o.spans]})
            if e.case.positive and not o.tp:
                reason = judge_smiles(e.case.string, DEFAULT_CONFIG).reason
                reasons[reason] += 1
                details["false_negatives"].append({
                    "mode": mode, "group": e.case.group, "string": e.case.string, "reason": reason,
                    "sentence": e.sentence, "tagged": [e.sentence[s:t] for s, t, _ in o.spans]})
        details["fn_reasons"][mode] = dict(reasons.most_common())
    notes = (
        "bare: string inserted between two words, no cue word; cue: inside a template naming SMILES "
        f"({', '.join(CUE_TEMPLATES)}); the tagger reads no cue words, so cue tests punctuation and brackets",
        "negatives are every mention row (frequency-weighted), each RDKit-checked: rdkit_valid = parses as "
        "SMILES, still a negative in prose; precision depends on the positive:negative mix",
        "TP = a smiles span exactly on the inserted string; FP = any span on a negative's insertion, a span "
        "overlapping a positive with other bounds, or any span in the host prose (background)",
        "sequences are not scored here: the corpus holds no real protein or nucleotide sequence; "
        "tests/test_scistrings.py covers them",
        "fn_reasons in details: judge_smiles' reason for each missed positive (bare_too_short = fewer than "
        "4 atoms without SMILES syntax, e.g. CCO, CO: indistinguishable from acronyms in prose)",
    )
    return EvalReport(name="scistrings", summary=summary, columns=columns, rows=tuple(rows), notes=notes,
                      details=details)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--corpus", help="development corpus root (default $SCICURATE_CORPUS or ../shared/corpus): "
                                         f"reads {SMILES_DIR}/*.csv, {NEGATIVES_DIR}/*.tsv, {SENTENCES_FILE}")
    parser.add_argument("--seed", type=int, default=0, help="seed of the host-sentence and position hashes (default 0)")


def run(args: argparse.Namespace) -> EvalReport:
    corpus = Path(getattr(args, "corpus", None) or default_corpus())
    seed = getattr(args, "seed", 0) or 0
    missing = [p for p in (corpus / SMILES_DIR, corpus / NEGATIVES_DIR, corpus / SENTENCES_FILE) if not p.exists()]
    if missing:
        raise ConfigError(f"scistrings eval: {', '.join(map(str, missing))} not found; pass --corpus DIR "
                          "(the development corpus root) or set SCICURATE_CORPUS")
    positives = read_positives(corpus / SMILES_DIR)
    negatives = read_negatives(corpus / NEGATIVES_DIR)
    sentences = read_sentences(corpus / SENTENCES_FILE)
    if not positives:
        raise ConfigError(f"{corpus / SMILES_DIR}: no CSV with a 'smiles' column")
    if not sentences:
        raise ConfigError(f"{corpus / SENTENCES_FILE}: no sentence of {MIN_SENTENCE}-{MAX_SENTENCE} characters")
    results = evaluate(positives, negatives, sentences, seed)
    return to_report(results, source=str(corpus), seed=seed, sentences=len(sentences))


COMMAND = register(EvalCommand(
    name="scistrings",
    help="SMILES tagging: precision/recall on real SMILES and RDKit-checked look-alikes embedded in real sentences",
    add_arguments=add_arguments,
    run=run,
))
