"""Exact dedup: (a) hashing and representative rule, (b) Beam ExactDedup wiring and counters."""

from __future__ import annotations

import hashlib
import random

import apache_beam as beam
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to
from scicurate.dedup.exact import (
    DUPLICATES,
    KEPT,
    REASON_EXACT_DUPLICATE,
    DuplicateRecord,
    choose_representative,
    normalise_text,
    resolve_group,
    text_hash,
)
from scicurate.dedup.transforms import ExactDedup

DOCS = [
    ("d3", "Hello  World"),
    ("d1", "hello world"),
    ("d2", " HELLO\tworld\n"),
    ("d10", "Ｈｅｌｌｏ world"),  # full-width letters: NFKC folds them
    ("d5", "Another page"),
    ("d4", "Unique text"),
    ("d6", "another   PAGE"),
]


# ---- tier a ----------------------------------------------------------------------------------


def test_text_hash_normalises_nfkc_case_and_whitespace():
    assert normalise_text(" Ｈｅｌｌｏ\u00a0 World\n") == "hello world"
    assert text_hash("Hello  World") == text_hash("hello world")
    assert text_hash("hello world") == hashlib.sha256(b"hello world").hexdigest()
    assert text_hash("hello world") != text_hash("hello worlds")


def test_text_hash_raw_mode_hashes_raw_text():
    assert text_hash("Hello  World", normalise=False) != text_hash("hello world", normalise=False)
    assert text_hash("Hello  World", normalise=False) == hashlib.sha256(b"Hello  World").hexdigest()
    with pytest.raises(TypeError):
        text_hash(b"bytes")


def test_choose_representative_is_smallest_string_id():
    assert choose_representative(["d3", "d1", "d2"]) == "d1"
    assert choose_representative(["9", "10"]) == "10"  # string order, not numeric
    assert choose_representative(iter(["b", "a"])) == "a"
    with pytest.raises(ValueError):
        choose_representative([])


def test_resolve_group_keeps_one_and_reports_the_rest():
    out = list(resolve_group("h", [("b", "x"), ("a", "X"), ("c", "x ")]))
    assert out == [
        (DUPLICATES, DuplicateRecord(id="b", duplicate_of="a", text_hash="h")),
        (KEPT, ("a", "X")),
        (DUPLICATES, DuplicateRecord(id="c", duplicate_of="a", text_hash="h")),
    ]
    assert out[0][1].reason == REASON_EXACT_DUPLICATE


def test_duplicate_record_validates():
    with pytest.raises(ValueError):
        DuplicateRecord(id="", duplicate_of="a", text_hash="h")
    with pytest.raises(ValueError):
        DuplicateRecord(id="a", duplicate_of="", text_hash="h")


# ---- tier b ----------------------------------------------------------------------------------


def _expected(docs, normalise):
    groups: dict[str, list[tuple[str, str]]] = {}
    for doc_id, text in docs:
        groups.setdefault(text_hash(text, normalise), []).append((doc_id, text))
    kept, dups = [], []
    for digest, members in groups.items():
        rep = min(members)
        kept.append(rep)
        dups += [DuplicateRecord(id=i, duplicate_of=rep[0], text_hash=digest) for i, _ in members if i != rep[0]]
    return sorted(kept), dups


def test_exact_dedup_pipeline():
    shuffled = list(DOCS)
    random.Random(7).shuffle(shuffled)
    assert shuffled != DOCS
    kept_norm, dups_norm = _expected(DOCS, True)
    kept_raw, dups_raw = _expected(DOCS, False)
    # Hand-checked expectations, so the test does not only mirror the code.
    assert kept_norm == [("d1", "hello world"), ("d4", "Unique text"), ("d5", "Another page")]
    assert {d.id: d.duplicate_of for d in dups_norm} == {"d3": "d1", "d2": "d1", "d10": "d1", "d6": "d5"}
    assert kept_raw == sorted(DOCS) and dups_raw == []

    with BeamTestPipeline(runner="FnApiRunner") as p:
        norm = p | "Docs" >> beam.Create(DOCS) | "Norm" >> ExactDedup()
        assert_that(norm[KEPT], equal_to(kept_norm), label="NormKept")
        assert_that(norm[DUPLICATES], equal_to(dups_norm), label="NormDuplicates")
        total = (
            (norm[KEPT] | "KeptIds" >> beam.Map(lambda kv: kv[0]),
             norm[DUPLICATES] | "DupIds" >> beam.Map(lambda d: d.id))
            | "AllIds" >> beam.Flatten()
        )
        assert_that(total, equal_to([doc_id for doc_id, _ in DOCS]), label="EachInputOnce")

        again = p | "Shuffled" >> beam.Create(shuffled) | "NormShuffled" >> ExactDedup()
        assert_that(again[KEPT], equal_to(kept_norm), label="ShuffledKept")
        assert_that(again[DUPLICATES], equal_to(dups_norm), label="ShuffledDuplicates")

        raw = p | "RawDocs" >> beam.Create(DOCS) | "Raw" >> ExactDedup(normalise=False)
        assert_that(raw[KEPT], equal_to(sorted(DOCS)), label="RawKept")
        assert_that(raw[DUPLICATES], equal_to([]), label="RawDuplicates")

    counters: dict[tuple[str, str], int] = {}
    for r in p.result.metrics().query(MetricsFilter().with_namespace("dedup_exact"))["counters"]:
        key = (r.key.step.split("/")[0], r.key.metric.name)
        counters[key] = counters.get(key, 0) + r.committed
    assert counters == {
        ("Norm", "kept"): 3, ("Norm", "duplicates"): 4,
        ("NormShuffled", "kept"): 3, ("NormShuffled", "duplicates"): 4,
        ("Raw", "kept"): 7,
    }
