"""`scicurate eval dedup`: precision and recall of our dedup against two ground truths.

* ``--mutations`` — generated, seeded near-duplicate sets scored as PAIRS against
  ``dedup.near.cluster_labels``. N originals (``--originals``, default 500) of about
  ``--words`` (200) words are drawn from a seeded synthetic vocabulary with Zipf(1) word
  frequencies (so unrelated texts share common words, as real ones do), or, with
  ``--source FILE.jsonl``, are real texts (``text`` field, at least 50 words, exact copies
  dropped). Each original gets one mutated copy per edit level (``--levels``, default
  5,10,20,30 % of its words) and one reordered copy (``--reorder-share``, default 10 %); the same
  number of unrelated texts is added as negatives. Edit kinds (``mutate``):

  - ``substitute``: k = round(share x words) distinct positions get a different vocabulary word;
  - ``insert``: a vocabulary word is inserted before each of k distinct positions;
  - ``delete``: k distinct positions are removed;
  - ``mix`` (the edit levels): k distinct positions, each edited by a uniformly chosen one of
    the three above;
  - ``reorder``: two non-overlapping spans of round(share x words) words swap places (the words
    are unchanged; only the 2-4 span borders create new n-grams).

  Truth: a copy is a duplicate of its original. Each edit level is clustered in its own run
  (originals + that level's copies + negatives) so its precision is its own; the "all" row
  clusters everything at once, where copies of one original are also true pairs of each other.
  A predicted pair is any two ids in one cluster: TP when both come from the same original, FP
  otherwise; FN = true pairs not in one cluster. ``false_merges`` = sum over predicted clusters
  of (distinct originals or negatives in it - 1). ``mean_jaccard`` is the exact Jaccard of the
  pairs' shingle sets (``dedup.minhash.shingles`` at the run's n-gram size) and
  ``jaccard_ge_threshold`` the share of pairs at or above the threshold: the recall an exact
  Jaccard dedup would reach, i.e. how hard the level is for this n before any MinHash error.

* ``--dolma DIR`` — allenai/dolma's paragraph-dedup test (``tests/data/provided/deduper/
  documents/000.json.gz`` and ``tests/data/expected/dedupe-paragraphs.json.gz``, as
  ``DIR/documents_000.json.gz`` and ``DIR/expected_dedupe-paragraphs.json.gz``). Both are gzip
  JSON lines; a document has ``id``, ``text`` (plus ``source``, ``added``, ``created``,
  ``metadata``); an expected record has ``id`` and ``attributes.bff_duplicate_paragraph_spans``
  = ``[[start, end, 1], ...]``. What the expected file shows (checked against it): paragraphs
  are ``text.split("\\n")``; offsets count characters (code points, not bytes); each span
  includes one newline after the paragraph, *also after the last one*, whose end is therefore
  ``len(text) + 1``; a paragraph is marked when an identical paragraph came earlier in file
  order (earlier documents or earlier in the same one). dolma's test reads the file twice (a
  second copy under ``pathnotd0cumentz``), but the expected spans are those of the first pass;
  the second pass, where every paragraph is a duplicate, is checked separately
  (``second_pass_all_duplicate``). Our prediction: exact paragraph dedup with
  ``dedup.exact.text_hash(p, normalise=False)``; spans are scored by equality of (start, end).
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import statistics
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Hashable, Iterable, Mapping, Sequence

from scicurate.config import ConfigError
from scicurate.evals import EvalCommand, EvalReport, register

TARGET = "recall >= 0.95 at precision >= 0.95 for 20% token edits"
TARGET_LEVEL = 20
TARGET_PRECISION = TARGET_RECALL = 0.95

EDIT_KINDS = ("substitute", "insert", "delete", "mix", "reorder")
_BASIC_EDITS = ("substitute", "insert", "delete")
DEFAULT_LEVELS = (5, 10, 20, 30)
MIN_SOURCE_WORDS = 50
MAX_DISAGREEMENTS = 10

DOLMA_DOCUMENTS = "documents_000.json.gz"
DOLMA_EXPECTED = "expected_dedupe-paragraphs.json.gz"
DOLMA_ATTRIBUTE = "bff_duplicate_paragraph_spans"


# ---- pure scoring -------------------------------------------------------------------------------

def _pairs(m: int) -> int:
    return m * (m - 1) // 2


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def _f1(precision: float | None, recall: float | None) -> float | None:
    if precision is None or recall is None:
        return None
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def pair_scores(predicted_labels: Mapping[str, Hashable], truth_groups: Mapping[str, Hashable]) -> dict[str, Any]:
    """Pairwise precision/recall of a clustering.

    ``predicted_labels`` is ``{id: cluster label}`` (``cluster_labels``' output; an absent id is a
    cluster of its own); ``truth_groups`` is ``{id: group}`` (the original a copy comes from; an
    absent id is a group of its own). A predicted pair is two ids with one label; it is a TP when
    they also share a group, else an FP; true pairs not predicted are FNs. Precision (recall) is
    None when nothing was predicted (nothing is true). ``false_merges`` sums, over predicted
    clusters, the number of distinct groups in it minus one; ``merged_clusters`` counts clusters
    holding more than one group."""
    clusters: dict[Hashable, list[str]] = defaultdict(list)
    for doc_id, label in predicted_labels.items():
        clusters[label].append(doc_id)
    predicted = tp = false_merges = merged = 0
    for members in clusters.values():
        predicted += _pairs(len(members))
        groups = Counter(truth_groups.get(m, ("__alone__", m)) for m in members)
        tp += sum(_pairs(c) for c in groups.values())
        false_merges += len(groups) - 1
        merged += len(groups) > 1
    true = sum(_pairs(c) for c in Counter(truth_groups.values()).values())
    precision, recall = _ratio(tp, predicted), _ratio(tp, true)
    return {"tp": tp, "fp": predicted - tp, "fn": true - tp, "precision": precision, "recall": recall,
            "f1": _f1(precision, recall), "false_merges": false_merges, "merged_clusters": merged}


def span_scores(predicted: Mapping[str, Iterable[Sequence[int]]], expected: Mapping[str, Iterable[Sequence[int]]],
                max_disagreements: int = MAX_DISAGREEMENTS) -> dict[str, Any]:
    """Precision/recall of duplicate spans by equality of (start, end) per document (a third
    element, dolma's score, is ignored). Documents missing from one side have no spans there.
    ``disagreements`` lists up to ``max_disagreements`` of them in document, then span order:
    ``{"id", "span": [start, end], "kind": "false_positive" | "missed"}``."""
    tp = fp = fn = 0
    disagreements: list[dict[str, Any]] = []
    for doc_id in list(dict.fromkeys([*predicted, *expected])):
        pred = {(int(s[0]), int(s[1])) for s in predicted.get(doc_id, ())}
        exp = {(int(s[0]), int(s[1])) for s in expected.get(doc_id, ())}
        tp += len(pred & exp)
        fp += len(pred - exp)
        fn += len(exp - pred)
        wrong = [(span, "false_positive") for span in pred - exp] + [(span, "missed") for span in exp - pred]
        for span, kind in sorted(wrong):
            if len(disagreements) < max_disagreements:
                disagreements.append({"id": doc_id, "span": list(span), "kind": kind})
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    return {"tp": tp, "fp": fp, "fn": fn, "precision": precision, "recall": recall,
            "f1": _f1(precision, recall), "disagreements": disagreements, "n_disagreements": fp + fn}


# ---- mutations ------------------------------------------------------------------------------------

def _other_word(word: str, pool: Sequence[str], rng: random.Random) -> str:
    for _ in range(8):
        candidate = rng.choice(pool)
        if candidate != word:
            return candidate
    return word + "x"


def mutate(words: Sequence[str], share: float, rng: random.Random, kind: str = "mix",
           vocab: Sequence[str] | None = None) -> list[str]:
    """A mutated copy of ``words`` (see the module docstring for each ``kind``): k =
    round(share x len(words)) edits at k distinct positions, or for ``reorder`` two spans of k
    words (at most half the text each) swapped. New words come from ``vocab`` (default: the
    text's own words). Uses only ``rng.sample``, ``rng.choice`` and ``rng.randrange``."""
    if kind not in EDIT_KINDS:
        raise ValueError(f"edit kind must be one of {', '.join(EDIT_KINDS)}; got {kind!r}")
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"edit share must be in [0, 1]; got {share}")
    words = list(words)
    n = len(words)
    k = round(share * n)
    if kind == "reorder":
        span = min(k, n // 2)
        if span < 1:
            return words
        a = rng.randrange(0, n - 2 * span + 1)
        b = rng.randrange(a + span, n - span + 1)
        return words[:a] + words[b:b + span] + words[a + span:b] + words[a:a + span] + words[b + span:]
    pool = list(vocab) if vocab else words
    positions = sorted(rng.sample(range(n), k))
    edits = {p: (rng.choice(_BASIC_EDITS) if kind == "mix" else kind) for p in positions}
    out: list[str] = []
    for i, word in enumerate(words):
        edit = edits.get(i)
        if edit == "substitute":
            out.append(_other_word(word, pool, rng))
        elif edit == "insert":
            out.extend((rng.choice(pool), word))
        elif edit != "delete":
            out.append(word)
    return out


def synthetic_vocabulary(size: int, rng: random.Random) -> list[str]:
    """``size`` distinct pseudo-words of 2-4 consonant-vowel syllables, in draw order (that order
    is the Zipf rank)."""
    consonants, vowels = "bcdfghjklmnprstvz", "aeiou"
    seen: dict[str, None] = {}
    while len(seen) < size:
        word = "".join(rng.choice(consonants) + rng.choice(vowels) for _ in range(rng.randint(2, 4)))
        seen.setdefault(word)
    return list(seen)


def synthetic_texts(count: int, words: int, vocab: Sequence[str], rng: random.Random) -> list[list[str]]:
    """``count`` texts of 0.9-1.1 x ``words`` words drawn with Zipf(1) frequencies over ``vocab``."""
    cum, total = [], 0.0
    for rank in range(len(vocab)):
        total += 1.0 / (rank + 1)
        cum.append(total)
    lo, hi = max(1, round(0.9 * words)), max(1, round(1.1 * words))
    return [rng.choices(vocab, cum_weights=cum, k=rng.randint(lo, hi)) for _ in range(count)]


def source_texts(path: Path, count: int, rng: random.Random) -> list[list[str]]:
    """Up to ``count`` seeded-sampled texts of at least 50 words from a JSONL ``text`` field,
    exact copies (same word sequence) dropped, as word lists."""
    if not path.is_file():
        raise ConfigError(f"--source {path} does not exist")
    eligible: dict[tuple[str, ...], None] = {}
    with path.open(encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                text = json.loads(line).get("text")
            except (json.JSONDecodeError, AttributeError) as exc:
                raise ConfigError(f"--source {path}:{line_no} is not a JSON object: {exc}") from None
            if isinstance(text, str) and len(text.split()) >= MIN_SOURCE_WORDS:
                eligible.setdefault(tuple(text.split()))
    texts = list(eligible)
    picked = rng.sample(texts, min(count, len(texts)))
    return [list(t) for t in picked]


def _jaccard(a: set, b: set) -> float:
    union = len(a | b)
    return len(a & b) / union if union else 1.0


def _mutation_run(originals: dict[str, str], copies: dict[str, tuple[str, str]], negatives: dict[str, str],
                  config, verify: bool, shingle_sets: dict[str, set]) -> dict[str, Any]:
    from scicurate.dedup.minhash import shingles
    from scicurate.dedup.near import cluster_labels, learned_config

    items = [*originals.items(), *((cid, text) for cid, (_, text) in copies.items()), *negatives.items()]
    # learn the common words once here, so the Jaccard columns see the shingles dedup sees
    config = learned_config([text for _, text in items], config)
    labels = cluster_labels(items, config, verify=verify)
    truth = {oid: oid for oid in originals} | {cid: oid for cid, (oid, _) in copies.items()}
    scores = pair_scores(labels, truth)
    jaccards = []
    for cid, (oid, text) in copies.items():
        if oid not in shingle_sets:
            shingle_sets[oid] = set(shingles(originals[oid], config))
        jaccards.append(_jaccard(shingle_sets[oid], set(shingles(text, config))))
    scores["pairs"] = len(copies)
    scores["mean_jaccard"] = statistics.fmean(jaccards) if jaccards else None
    scores["jaccard_ge_threshold"] = (sum(j >= config.threshold for j in jaccards) / len(jaccards)
                                      if jaccards else None)
    scores["clustered_ids"] = len(labels)
    scores["dropped_words"] = len(config.drop_words)
    return scores


def run_mutations(originals: Sequence[Sequence[str]], negatives: Sequence[Sequence[str]], levels: Sequence[int],
                  reorder_share: float, config, verify: bool, seed: int,
                  vocab: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """One row per edit level ("mix"), one for "reorder" (when ``reorder_share`` > 0) and an
    "all" row clustering every copy together. Copy ``o00007~mix20`` is made with
    ``random.Random(f"{seed}/o00007/mix/20")``, so any copy can be regenerated alone."""
    orig = {f"o{i:05d}": list(w) for i, w in enumerate(originals)}
    orig_text = {oid: " ".join(w) for oid, w in orig.items()}
    neg_text = {f"n{i:05d}": " ".join(w) for i, w in enumerate(negatives)}
    plan = [("mix", level, level / 100) for level in levels]
    if reorder_share > 0:
        plan.append(("reorder", round(reorder_share * 100), reorder_share))
    shingle_sets: dict[str, set] = {}
    rows, every_copy = [], {}
    for kind, level, share in plan:
        copies = {}
        for oid, words in orig.items():
            rng = random.Random(f"{seed}/{oid}/{kind}/{level}")
            copies[f"{oid}~{kind}{level:02d}"] = (oid, " ".join(mutate(words, share, rng, kind, vocab)))
        every_copy |= copies
        rows.append({"kind": kind, "level": f"{level}%"} | _mutation_run(orig_text, copies, neg_text, config,
                                                                         verify, shingle_sets))
    rows.append({"kind": "all", "level": "together"} | _mutation_run(orig_text, every_copy, neg_text, config,
                                                                     verify, shingle_sets))
    return rows


# ---- dolma paragraph dedup --------------------------------------------------------------------------

def read_gzip_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise ConfigError(f"{path} does not exist (expected dolma's test file there)")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def dolma_paragraphs(text: str) -> list[tuple[int, int, str]]:
    """(start, end, paragraph) as dolma's paragraph deduper spans them: ``text.split("\\n")``,
    character offsets, each span one character (the newline) longer than its paragraph, the
    last one too (so its end is ``len(text) + 1``, as in dolma's expected output)."""
    out, offset = [], 0
    for paragraph in text.split("\n"):
        end = offset + len(paragraph) + 1
        out.append((offset, end, paragraph))
        offset = end
    return out


def duplicate_paragraph_spans(documents: Iterable[tuple[str, str]], seen: set[str] | None = None
                              ) -> dict[str, list[list[int]]]:
    """``{id: [[start, end, 1], ...]}`` for every paragraph whose ``text_hash(p, normalise=False)``
    appeared earlier in reading order; ``seen`` carries the hashes across calls (passes)."""
    from scicurate.dedup.exact import text_hash

    seen = set() if seen is None else seen
    out: dict[str, list[list[int]]] = {}
    for doc_id, text in documents:
        spans = []
        for start, end, paragraph in dolma_paragraphs(text):
            digest = text_hash(paragraph, normalise=False)
            if digest in seen:
                spans.append([start, end, 1])
            seen.add(digest)
        out[doc_id] = spans
    return out


def run_dolma(directory: Path) -> EvalReport:
    if not directory.is_dir():
        raise ConfigError(f"--dolma {directory} is not a folder")
    docs = read_gzip_jsonl(directory / DOLMA_DOCUMENTS)
    expected_rows = read_gzip_jsonl(directory / DOLMA_EXPECTED)
    try:
        pairs = [(str(d["id"]), d["text"]) for d in docs]
        expected = {str(r["id"]): r.get("attributes", {}).get(DOLMA_ATTRIBUTE, []) for r in expected_rows}
    except (KeyError, TypeError) as exc:
        raise ConfigError(f"unexpected dolma record layout under {directory}: {exc!r}") from None
    seen: set[str] = set()
    predicted = duplicate_paragraph_spans(pairs, seen)
    second = duplicate_paragraph_spans(pairs, seen)
    n_paragraphs = {doc_id: len(dolma_paragraphs(text)) for doc_id, text in pairs}
    second_all = all(len(second[i]) == n_paragraphs[i] for i, _ in pairs)
    scores = span_scores(predicted, expected)
    only_expected = sorted(set(expected) - set(predicted))
    summary = {
        "mode": "dolma paragraph dedup", "dolma": str(directory), "documents": len(pairs),
        "paragraphs": sum(n_paragraphs.values()),
        "empty_paragraphs": sum(1 for _, t in pairs for *_, p in dolma_paragraphs(t) if not p),
        "expected_spans": sum(len(v) for v in expected.values()),
        "predicted_spans": sum(len(v) for v in predicted.values()),
        "tp": scores["tp"], "fp": scores["fp"], "fn": scores["fn"],
        "precision": scores["precision"], "recall": scores["recall"], "f1": scores["f1"],
        "second_pass_all_duplicate": second_all,
    }
    rows = tuple({"id": doc_id, "paragraphs": n_paragraphs[doc_id], "expected": len(expected.get(doc_id, [])),
                  "predicted": len(predicted[doc_id]),
                  "agree": {tuple(s[:2]) for s in predicted[doc_id]} == {tuple(s[:2]) for s in expected.get(doc_id, [])}}
                 for doc_id, _ in pairs)
    notes = (
        "dolma paragraph spans: text.split('\\n'), character offsets, each span includes the following "
        "newline (the last one too: end = len(text) + 1); a paragraph is a duplicate when an identical "
        "one came earlier in file order",
        "prediction: exact paragraph hash dedup.exact.text_hash(p, normalise=False); scored by equality "
        "of (start, end); dolma's bloom filter may give false positives, which would show as missed spans",
        "dolma's test reads the file twice; its expected spans are the first pass; second_pass_all_duplicate "
        "checks that a second read marks every paragraph",
    )
    if only_expected:
        notes += (f"{len(only_expected)} expected ids have no document: {only_expected[:5]}",)
    return EvalReport(name="dedup (dolma paragraph-dedup test)", summary=summary,
                      columns=("id", "paragraphs", "expected", "predicted", "agree"), rows=rows, notes=notes,
                      details={"disagreements": scores["disagreements"],
                               "n_disagreements": scores["n_disagreements"],
                               "predicted": predicted, "expected": expected})


# ---- command --------------------------------------------------------------------------------------

def _levels(value: str) -> tuple[int, ...]:
    try:
        levels = tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"--levels takes comma-separated integers (percent); got {value!r}")
    if not levels or any(not 0 <= v <= 100 for v in levels):
        raise argparse.ArgumentTypeError(f"--levels must be percentages in 0..100; got {value!r}")
    return levels


def _weights(value: str) -> tuple[float, float]:
    try:
        fp, fn = (float(v) for v in value.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--weights takes FP,FN (two numbers); got {value!r}")
    return fp, fn


def _bands_rows(value: str) -> tuple[int, int]:
    try:
        bands, rows = (int(v) for v in value.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--bands-rows takes BxR, e.g. 42x3; got {value!r}")
    return bands, rows


def add_arguments(parser: argparse.ArgumentParser) -> None:
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--mutations", action="store_true",
                      help="score near-dup clustering on generated mutated copies (seeded)")
    mode.add_argument("--dolma", metavar="DIR",
                      help=f"score exact paragraph dedup on dolma's test ({DOLMA_DOCUMENTS}, {DOLMA_EXPECTED})")
    parser.add_argument("--source", metavar="FILE.jsonl",
                        help="real texts (a 'text' field, >= 50 words) instead of the synthetic vocabulary")
    parser.add_argument("--originals", type=int, default=500, help="originals, and as many negatives (default 500)")
    parser.add_argument("--words", type=int, default=200, help="words per synthetic text, +-10%% (default 200)")
    parser.add_argument("--vocabulary", type=int, default=5000, help="synthetic vocabulary size (default 5000)")
    parser.add_argument("--levels", type=_levels, default=DEFAULT_LEVELS,
                        help="edit levels, percent of words (default 5,10,20,30)")
    parser.add_argument("--reorder-share", type=float, default=0.10,
                        help="span length of the reorder copy, share of words (default 0.10; 0 = none)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated data (default 0)")
    parser.add_argument("--ngram", type=int, help="MinHash word n-gram size (default: MinHashConfig's)")
    parser.add_argument("--threshold", type=float, help="MinHash Jaccard threshold (default: MinHashConfig's)")
    parser.add_argument("--num-perm", type=int, help="MinHash permutations (default: MinHashConfig's)")
    parser.add_argument("--weights", type=_weights, metavar="FP,FN",
                        help="false-positive,false-negative weights of the band/row choice (default: MinHashConfig's)")
    parser.add_argument("--bands-rows", type=_bands_rows, metavar="BxR", help="LSH layout, e.g. 42x3 (default: chosen)")
    parser.add_argument("--hash", choices=("sha1", "wordmix"), help="shingle hashing (default: MinHashConfig's)")
    parser.add_argument("--common-words", type=int, metavar="K",
                        help="drop the K words found in most texts before shingling (default: MinHashConfig's; 0 = off)")
    parser.add_argument("--no-verify", action="store_true",
                        help="keep every LSH bucket pair (skip the signature Jaccard check)")


def run(args: argparse.Namespace) -> EvalReport:
    """``--dolma DIR`` or ``--mutations``; see the module docstring for what each scores."""
    if getattr(args, "dolma", None):
        return run_dolma(Path(args.dolma))
    from scicurate.dedup.config import MinHashConfig

    changes = {field: value for field, value in (("ngram", args.ngram), ("threshold", args.threshold),
                                                 ("num_perm", args.num_perm), ("weights", args.weights),
                                                 ("hash", args.hash), ("common_words", args.common_words))
               if value is not None}
    if args.bands_rows is not None:
        changes["bands"], changes["rows"] = args.bands_rows
    config = MinHashConfig().replace(**changes)
    verify = not args.no_verify
    if args.originals < 1:
        raise ConfigError("--originals must be at least 1")
    if not 0.0 <= args.reorder_share <= 0.5:
        raise ConfigError("--reorder-share must be in [0, 0.5]")
    rng = random.Random(args.seed)
    vocab = synthetic_vocabulary(args.vocabulary, rng) if not args.source else None
    if args.source:
        texts = source_texts(Path(args.source), 2 * args.originals, rng)
        if len(texts) < 2:
            raise ConfigError(f"--source {args.source} has fewer than 2 texts of >= {MIN_SOURCE_WORDS} words")
        half = len(texts) // 2
        originals, negatives = texts[:half], texts[half:2 * half]
        # new words for edits: drawn from every sampled text's words (corpus frequencies), not
        # from the edited text itself, whose own words would hide unigram edits
        vocab = [w for text in texts for w in text]
    else:
        if args.words < 1 or args.vocabulary < 2:
            raise ConfigError("--words must be at least 1 and --vocabulary at least 2")
        originals = synthetic_texts(args.originals, args.words, vocab, rng)
        negatives = synthetic_texts(args.originals, args.words, vocab, rng)
    levels = tuple(args.levels)
    rows = run_mutations(originals, negatives, levels, args.reorder_share, config, verify, args.seed, vocab)
    target_row = next((r for r in rows if r["kind"] == "mix" and r["level"] == f"{TARGET_LEVEL}%"), None)
    target = {"target": TARGET}
    if target_row is not None:
        met = ((target_row["precision"] or 0.0) >= TARGET_PRECISION and (target_row["recall"] or 0.0) >= TARGET_RECALL)
        target |= {"target_precision": target_row["precision"], "target_recall": target_row["recall"],
                   "target_met": met}
    summary = {
        "mode": "mutations", "source": args.source or f"synthetic Zipf(1) vocabulary of {args.vocabulary}",
        "originals": len(originals), "negatives": len(negatives),
        "mean_words": statistics.fmean(len(w) for w in originals), "seed": args.seed,
        "ngram": config.ngram, "threshold": config.threshold, "num_perm": config.num_perm,
        "common_words": config.common_words, "weights": list(config.weights), "bands": config.bands, "rows": config.rows, "verify": verify, "minhash_seed": config.seed,
        "hash": config.hash,
    } | target
    columns = ("kind", "level", "pairs", "mean_jaccard", "jaccard_ge_threshold", "tp", "fp", "fn",
               "precision", "recall", "f1", "false_merges")
    notes = (
        "each edit level is clustered alone (originals + its copies + negatives); 'all' clusters every copy "
        "together, where two copies of one original are also a true pair",
        "precision/recall over pairs of ids in one predicted cluster; false_merges = sum over clusters of "
        "(distinct originals or negatives - 1); None = no pair predicted (precision) or true (recall)",
        "mean_jaccard: exact Jaccard of the pair's shingle sets at this ngram; jaccard_ge_threshold: share of "
        "pairs an exact Jaccard >= threshold test would find (the ceiling before MinHash/LSH error)",
    )
    if args.source:
        notes += ("--source: inserted/substituted words are drawn from all sampled texts' words (corpus frequencies)",
                  "real texts may contain genuine near-duplicates of each other; those count as FPs here",)
    return EvalReport(name="dedup (near-duplicate mutations)", summary=summary, columns=columns,
                      rows=tuple(rows), notes=notes,
                      details={"rows": rows, "levels": list(levels), "reorder_share": args.reorder_share})


register(EvalCommand(
    "dedup",
    "score dedup: near-duplicate clustering on seeded mutated copies (pair P/R per edit level), "
    "or exact paragraph dedup on dolma's paragraph-dedup test",
    add_arguments,
    run,
))
