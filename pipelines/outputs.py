"""Writing a pipeline's datasets: one helper so every dataset of every pipeline gets the same
deterministic shard names."""

from __future__ import annotations

import apache_beam as beam
from apache_beam.io.parquetio import WriteToParquet


def write_parquet(pcoll, label: str, path: str, parquet_schema, to_row, shards: int):
    """Records -> rows (`to_row`) -> Parquet files `<path>-SSSSS-of-NNNNN.parquet`, e.g.
    `out/pages/part-00000-of-00001.parquet` for path `out/pages/part`: a rerun writes the same
    names, so its output replaces the earlier one file for file."""
    return (
        pcoll
        | f"{label}Rows" >> beam.Map(to_row)
        | f"{label}Parquet" >> WriteToParquet(path, parquet_schema, file_name_suffix=".parquet", num_shards=shards,
                                              shard_name_template="-SSSSS-of-NNNNN")
    )


def part_path(output_dir: str, *names: str) -> str:
    """`output_dir/names…/part`, the prefix `write_parquet` numbers."""
    from apache_beam.io.filesystems import FileSystems

    return FileSystems.join(output_dir, *names, "part")
