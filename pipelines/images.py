"""The image-text pair filter pipeline. Wiring only: logic lives in the cores (see images_steps
and classifiers/image_filters.py).

    pairs JSONL / Parquet ─ read (caption, image bytes or image_path) ─ load the image (inside
    the input's folder; never a URL) ─ pair rule (missing image, no caption) ─ measure (size,
    blank, Laplacian variance) ─ thresholds ─ kept/ │ filtered/ (reasons + measures)
    │ dead_letter/ (bad rows, unsafe paths, undecodable images, decompression bombs)
    ─ summary.json (counts per reason; accounted)
"""

from __future__ import annotations

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystems import FileSystems

from scicurate import schema
from scicurate.pipelines import images_steps as steps
from scicurate.pipelines.images_steps import ImagesRunConfig
from scicurate.pipelines.outputs import write_parquet as _write
from scicurate.pipelines.summary import summarize




def build(pipeline: beam.Pipeline, input_pattern: str, output_dir: str, config: ImagesRunConfig) -> dict:
    """Wire the run; returns the kept, filtered and dead_letter PCollections (for a caller
    that goes on from the kept pairs, and for tests)."""
    output_dir = output_dir.rstrip("/")
    out = lambda *parts: FileSystems.join(output_dir, *parts)  # noqa: E731
    measured_with = config.measured_with()

    # -> PairRow | failed ImageDeadLetter (bad rows, unsupported or broken files)
    read = (
        pipeline
        | "MatchPairs" >> fileio.MatchFiles(input_pattern)
        | "ReadPairFiles" >> fileio.ReadMatches()
        | "ReadPairs" >> beam.ParDo(steps.ReadPairs()).with_outputs(steps.FAILED, main="rows")
    )
    # -> LoadedPair (image bytes, or why they are missing) | failed (unsafe path, too large, unreadable)
    loaded = (
        read.rows
        | "Spread" >> beam.Reshuffle()
        | "LoadImages" >> beam.ParDo(steps.LoadImages(config)).with_outputs(steps.FAILED, main="pairs")
    )
    # -> KeptPair | filtered FilteredPair (pair and image rules) | failed (undecodable, bomb)
    judged = (
        loaded.pairs
        | "JudgePairs" >> beam.ParDo(steps.JudgePairs(config)).with_outputs(steps.FILTERED, steps.FAILED, main="kept")
    )

    dead = (read[steps.FAILED], loaded[steps.FAILED], judged[steps.FAILED]) | "AllDeadLetters" >> beam.Flatten()
    _write(judged.kept, "Kept", out("kept", "part"), schema.IMAGES_KEPT_SCHEMA,
           lambda k: schema.images_kept_row(k, measured_with), config.num_shards)
    _write(judged[steps.FILTERED], "Filtered", out("filtered", "part"), schema.IMAGES_FILTERED_SCHEMA,
           lambda f: schema.images_filtered_row(f, measured_with), config.num_shards)
    _write(dead, "DeadLetter", out("dead_letter", "part"), schema.IMAGES_DEAD_LETTER_SCHEMA,
           schema.images_dead_letter_row, 1)

    # -> summary.json: inputs == kept + filtered + dead-lettered rows
    keys = (
        read.rows | "CountRead" >> beam.FlatMap(steps.keys_read),
        judged.kept | "CountKept" >> beam.FlatMap(steps.keys_kept),
        judged[steps.FILTERED] | "CountFiltered" >> beam.FlatMap(steps.keys_filtered),
        dead | "CountDead" >> beam.FlatMap(steps.keys_dead),
    )
    summarize(keys, steps.BuildSummary(), output_dir, config, input_pattern)
    return {"kept": judged.kept, "filtered": judged[steps.FILTERED], "dead_letter": dead}


__all__ = ["build"]
