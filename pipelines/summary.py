"""The run summary both pipelines write: (key, count) pairs folded into one nested dict.

A key "group.name" lands in summary[group][name]; a key without a dot is a top-level count.
Every name in TOP and GROUPS is present even when zero, so a reader never meets a missing key.
"""

from __future__ import annotations

import json
from typing import Any

import apache_beam as beam


class CountSummary(beam.CombineFn):
    """(key, count) pairs -> the nested summary. Subclasses name TOP and GROUPS and may add
    derived figures in `finish`."""

    TOP: tuple[str, ...] = ()
    GROUPS: tuple[str, ...] = ()

    def create_accumulator(self) -> dict[str, int]:
        return {}

    def add_input(self, acc: dict[str, int], element) -> dict[str, int]:
        key, count = element
        acc[key] = acc.get(key, 0) + count
        return acc

    def merge_accumulators(self, accs) -> dict[str, int]:
        out: dict[str, int] = {}
        for acc in accs:
            for k, v in acc.items():
                out[k] = out.get(k, 0) + v
        return out

    def start(self) -> dict[str, Any]:
        summary: dict[str, Any] = {k: 0 for k in self.TOP}
        for group in self.GROUPS:
            summary[group] = {}
        return summary

    def finish(self, summary: dict[str, Any]) -> dict[str, Any]:
        return summary

    def extract_output(self, acc: dict[str, int]) -> dict[str, Any]:
        summary = self.start()
        for key, value in sorted(acc.items()):
            if "." in key:
                group, name = key.split(".", 1)
                summary.setdefault(group, {})[name] = value
            else:
                summary[key] = value
        return self.finish(summary)


def write_summary(summary: dict[str, Any], path: str, config: dict[str, Any]) -> str:
    """summary.json: the counts plus the run's config, keys sorted (a rerun writes the same file)."""
    from apache_beam.io.filesystems import FileSystems

    body = dict(summary)
    body["config"] = config
    with FileSystems.create(path) as fh:
        fh.write(json.dumps(body, indent=2, sort_keys=True, default=str).encode("utf-8"))
    return path


def summarize(keys: tuple, combine: CountSummary, output_dir: str, config: Any, input_label: str):
    """Key PCollections (a key, or a (key, count) pair, per element) -> summary.json under
    output_dir, with the run's config and input. Returns the summary PCollection."""
    import dataclasses

    from apache_beam.io.filesystems import FileSystems

    counts = (
        keys
        | "AllCounts" >> beam.Flatten()
        | "PairOnes" >> beam.Map(lambda k: k if isinstance(k, tuple) else (k, 1))
        | "SumCounts" >> beam.CombinePerKey(sum)
        | "BuildSummary" >> beam.CombineGlobally(combine)
    )
    config_dict = dataclasses.asdict(config)
    config_dict["input"] = input_label
    _ = counts | "WriteSummary" >> beam.Map(write_summary, FileSystems.join(output_dir, "summary.json"), config_dict)
    return counts
