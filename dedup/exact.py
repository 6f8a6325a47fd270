"""Exact (hash) deduplication: the pure core. The Beam shell is ``transforms.ExactDedup``.

In:  PCollection of ``(id, text)`` pairs, ids unique strings.
Out: ``kept`` -> ``(id, text)`` one per distinct (normalised) text, the representative;
     ``duplicates`` -> ``DuplicateRecord`` for every other member of a group.
Every input lands in exactly one of the two outputs (inputs = kept + duplicates).
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

KEPT = "kept"
DUPLICATES = "duplicates"
REASON_EXACT_DUPLICATE = "exact_duplicate"


def normalise_text(text: str) -> str:
    """NFKC, lowercase, and every run of Unicode whitespace collapsed to one space (ends stripped).

    NFKC folds compatibility forms (ligatures, full-width digits, non-breaking spaces) that PDF
    extractors emit inconsistently; case and spacing differences are extraction noise, not content.
    """
    return " ".join(unicodedata.normalize("NFKC", text).lower().split())


def text_hash(text: str, normalise: bool = True) -> str:
    """sha256 hex digest of the (by default normalised) text, UTF-8 encoded."""
    if not isinstance(text, str):
        raise TypeError(f"text must be str, got {type(text).__name__}")
    body = normalise_text(text) if normalise else text
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def choose_representative(ids: Iterable[str]) -> str:
    """The representative of a duplicate group: the smallest id (Python string order).

    Why the smallest id: it depends only on the set of ids in the group, so it is the same on
    every rerun, on every runner and for every bundle split or retry; "first seen" would depend
    on arrival order, which Beam does not define. Ids are compared as strings ("10" < "9").
    """
    best = min(ids, default=None)
    if best is None:
        raise ValueError("choose_representative needs at least one id")
    return best


@dataclass(frozen=True, slots=True)
class DuplicateRecord:
    """One removed document: ``id`` duplicates the kept document ``duplicate_of``."""

    id: str
    duplicate_of: str
    text_hash: str
    reason: str = REASON_EXACT_DUPLICATE

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise ValueError("DuplicateRecord.id must be a non-empty string")
        if not isinstance(self.duplicate_of, str) or not self.duplicate_of:
            raise ValueError("DuplicateRecord.duplicate_of must be a non-empty string")
        if not self.reason:
            raise ValueError("DuplicateRecord.reason must be non-empty")


def resolve_group(digest: str, members: Iterable[tuple[str, str]]) -> Iterator[tuple[str, object]]:
    """Split one hash group into ``(KEPT, (id, text))`` and ``(DUPLICATES, DuplicateRecord)``.

    ``members`` is iterated twice (first for the representative, then to emit) and never held in
    memory, so a hot group (a licence page repeated a million times) costs no worker memory; a
    Beam GroupByKey value iterable is re-iterable. If an id occurs twice in one group, its first
    occurrence is kept and the second reported as a duplicate of itself, so counts still add up.
    """
    rep = choose_representative(doc_id for doc_id, _ in members)
    kept = False
    for doc_id, text in members:
        if doc_id == rep and not kept:
            kept = True
            yield KEPT, (doc_id, text)
        else:
            yield DUPLICATES, DuplicateRecord(id=doc_id, duplicate_of=rep, text_hash=digest)


def __getattr__(name: str):
    # ``from scicurate.dedup.exact import ExactDedup`` works without importing Beam for the core.
    if name == "ExactDedup":
        from scicurate.dedup.transforms import ExactDedup

        return ExactDedup
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
