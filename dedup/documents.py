"""Document-level near-dup marking: a thin Beam shell over `NearDuplicateClusters` that keeps
every record and marks the near-duplicates, so nothing is lost and a reader filters.

    records -> (id, text) -> NearDuplicateClusters -> (id, cluster label)
    records + labels (CoGroupByKey on id) -> the same records, each one whose cluster label
    is not its own id rewritten by `mark(record, label)`

The representative of a cluster is its smallest id (the cluster label): with content-hash
ids that is arbitrary but deterministic, so a rerun marks the same records. Records with
empty text never join a cluster (`near` skips texts without shingles).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics

NAMESPACE = "dedup_documents"


class _ApplyLabels(beam.DoFn):
    def __init__(self, mark: Callable[[Any, str], Any]) -> None:
        self.mark = mark
        self.marked = Metrics.counter(NAMESPACE, "near_duplicates")

    def process(self, element):
        doc_id, grouped = element
        labels = list(grouped["label"])
        for record in grouped["record"]:
            if labels and labels[0] != doc_id:
                self.marked.inc()
                yield self.mark(record, labels[0])
            else:
                yield record


class MarkNearDuplicates(beam.PTransform):
    """Records -> the same records, near-duplicates (``near.NearDuplicateClusters`` with
    ``config``) other than their cluster's smallest id passed through ``mark(record, label)``.
    ``key(record)`` is the record id (a string), ``text(record)`` what is compared. Counter:
    ``dedup_documents/near_duplicates``."""

    def __init__(self, key: Callable[[Any], str], text: Callable[[Any], str],
                 mark: Callable[[Any, str], Any], config=None, label: str | None = None) -> None:
        super().__init__(label)
        self.key, self.text, self.mark, self.config = key, text, mark, config

    def expand(self, records):
        from scicurate.dedup.transforms import NearDuplicateClusters

        key, text = self.key, self.text
        labels = (
            records
            | "IdText" >> beam.Map(lambda r: (key(r), text(r)))
            | "NearDuplicates" >> NearDuplicateClusters(self.config)
        )
        keyed = records | "KeyById" >> beam.Map(lambda r: (key(r), r))
        return (
            {"record": keyed, "label": labels}
            | "JoinLabels" >> beam.CoGroupByKey()
            | "Mark" >> beam.ParDo(_ApplyLabels(self.mark))
        )
