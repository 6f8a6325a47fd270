"""Global page-level graph dedup for PDFs: pages repeated across documents are boilerplate.

Pages are nodes; MinHash-LSH near-duplicate edges join them (`near`); a connected cluster
whose pages come from at least `min_documents` distinct documents (a publisher's copyright
page, a licence, a cover, a template) is left out of every document it occurs in. Each page
row keeps its text and records the cluster (`dedup_cluster`) and why it left the document
(`removed="repeated_page"`), so a rejected page is always readable.

Which pages take part: parsed pages with at least `min_words` words. Failed and near-empty
pages carry no evidence. The cap on how much of one document may go is applied at merge
(`merge.merge_document`, `max_removed_share`), where a document's pages meet.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable

import apache_beam as beam
from apache_beam.metrics import Metrics

from scicurate.records import STATUS_OK, PageResult

REASON_REPEATED_PAGE = "repeated_page"
NAMESPACE = "pdf_page_dedup"


def doc_of(page_id: str) -> str:
    """The document part of a page id (`records.page_id`: "<doc_id>:<index>")."""
    return page_id.rsplit(":", 1)[0]


def takes_part(page: PageResult, min_words: int) -> bool:
    return page.status == STATUS_OK and len(page.text.split()) >= min_words


def repeated_clusters(labels: Iterable[tuple[str, str]], min_documents: int) -> dict[str, str]:
    """{page_id: cluster} for pages in clusters spanning >= min_documents documents. Pure
    reference of what `RepeatedPages` computes in Beam."""
    members: dict[str, list[str]] = {}
    for page_id, label in labels:
        members.setdefault(label, []).append(page_id)
    return {p: label for label, pages in members.items()
            if len({doc_of(p) for p in pages}) >= min_documents for p in pages}


def mark(page: PageResult, cluster: str) -> PageResult:
    """The page with its cluster and removal reason set (or cleared, when `cluster` is "")."""
    removed = REASON_REPEATED_PAGE if cluster else ""
    if page.dedup_cluster == cluster and page.removed == removed:
        return page
    return dataclasses.replace(page, dedup_cluster=cluster, removed=removed)


def _repeated_pages(element):
    label, grouped = element
    if any(True for _ in grouped["documents"]):
        for page_id in grouped["pages"]:
            yield page_id, label


class _MarkPage(beam.DoFn):
    def __init__(self) -> None:
        self.repeated = Metrics.counter(NAMESPACE, "pages_in_repeated_clusters")

    def process(self, element):
        _page_id, grouped = element
        clusters = sorted(set(grouped["cluster"]))
        cluster = clusters[0] if clusters else ""
        for page in grouped["page"]:
            if cluster:
                self.repeated.inc()
            yield mark(page, cluster)


class RepeatedPages(beam.PTransform):
    """PageResult -> the same PageResult, marked when its near-duplicate cluster spans at least
    `min_documents` documents. Every input page comes out exactly once."""

    def __init__(self, min_documents: int = 2, threshold: float = 0.8, min_words: int = 8,
                 label: str | None = None) -> None:
        super().__init__(label)
        self.min_documents = min_documents
        self.threshold = threshold
        self.min_words = min_words

    def expand(self, pages):
        from scicurate.dedup.config import MinHashConfig
        from scicurate.dedup.transforms import NearDuplicateClusters

        min_documents, min_words = self.min_documents, self.min_words
        # Pages are short and boilerplate pages are often near-identical: 3-grams keep enough
        # shingles on a 30-word licence page for a stable estimate. Equal-weight banding: a
        # removed page is removed from every document, so this stage wants precision.
        config = MinHashConfig(ngram=3, threshold=self.threshold, weights=(0.5, 0.5))
        # -> (page_id, cluster label) for pages with a near duplicate anywhere in the run
        labels = (
            pages
            | "TakePart" >> beam.Filter(takes_part, min_words)
            | "PageTexts" >> beam.Map(lambda p: (p.page_id, p.text))
            | "DistinctPages" >> beam.Distinct()
            | "NearDuplicates" >> NearDuplicateClusters(config)
        )
        # -> (cluster, documents in it) for clusters spanning >= min_documents documents;
        # counted with a combiner, so a cluster of a million copyright pages is no hot key
        doc_counts = (
            labels
            | "ClusterDocument" >> beam.Map(lambda kv: (kv[1], doc_of(kv[0])))
            | "DistinctClusterDocuments" >> beam.Distinct()
            | "OnePerDocument" >> beam.Map(lambda kv: (kv[0], 1))
            | "DocumentsPerCluster" >> beam.CombinePerKey(sum)
            | "Repeated" >> beam.Filter(lambda kv: kv[1] >= min_documents)
        )
        # -> (page_id, cluster) for the pages of those clusters (page ids streamed, not held)
        repeated = (
            {"pages": labels | "ByCluster" >> beam.Map(lambda kv: (kv[1], kv[0])), "documents": doc_counts}
            | "JoinCounts" >> beam.CoGroupByKey()
            | "ClusterPages" >> beam.FlatMap(_repeated_pages)
        )
        return (
            {"page": pages | "ByPageId" >> beam.Map(lambda p: (p.page_id, p)), "cluster": repeated}
            | "JoinClusters" >> beam.CoGroupByKey()
            | "MarkPages" >> beam.ParDo(_MarkPage())
        )
