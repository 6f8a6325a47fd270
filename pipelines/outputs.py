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


STATE_FILES = ("summary.json", "run_info.json")


def delete_folder(path: str) -> None:
    """Delete a folder and everything in it: a local folder as a tree, an object store's by
    its prefix ("dir/")."""
    from apache_beam.io.filesystems import FileSystems

    FileSystems.delete([path if FileSystems.get_scheme(path) is None else path + "/"])


def prepare_output(output_dir: str) -> dict[str, int]:
    """Before a run writes to `output_dir`: take away what says "complete" or would mix with the
    new datasets, so a folder is either a finished run (summary.json present) or one in
    progress. Removed: summary.json and run_info.json; Beam's `beam-temp-*` folders that a
    killed run left beside its shards; and `part-*.parquet` shards of an earlier run (a rerun
    writes the same shard names, but one with another shard count would leave stale files
    that readers globbing `part-*` would read twice). `_resume/` is kept: it is how the rerun
    skips finished work. Returns what was removed, per kind."""
    import logging

    from apache_beam.io.filesystems import FileSystems

    root = output_dir.rstrip("/")
    removed = {"state": 0, "temp": 0, "shards": 0}

    def matched(pattern: str) -> list[str]:
        try:
            return [m.path for m in FileSystems.match([FileSystems.join(root, pattern)])[0].metadata_list]
        except Exception:  # noqa: BLE001 - nothing there
            return []

    for name in STATE_FILES:
        path = FileSystems.join(root, name)
        if FileSystems.exists(path):
            FileSystems.delete([path])
            removed["state"] += 1
    for level in ("*", "*/*"):
        shards = matched(f"{level}/part-[0-9][0-9][0-9][0-9][0-9]-of-[0-9][0-9][0-9][0-9][0-9].parquet")
        # A killed run leaves Beam's temp folder beside its shards (an object store lists only
        # the objects in it): the folder is what goes.
        temps = set()
        for path in matched(f"{level}/beam-temp-*") + matched(f"{level}/beam-temp-*/*"):
            head, _, tail = path.partition("/beam-temp-")
            temps.add(f"{head}/beam-temp-{tail.split('/', 1)[0]}")
        if shards:
            FileSystems.delete(shards)
            removed["shards"] += len(shards)
        for temp in sorted(temps):
            if FileSystems.exists(temp):
                delete_folder(temp)
                removed["temp"] += 1
    if any(removed.values()):
        logging.getLogger("scicurate").info(
            "output %s held an earlier run: removed %d state files, %d shards, %d Beam temp folders",
            root, removed["state"], removed["shards"], removed["temp"])
    return removed
