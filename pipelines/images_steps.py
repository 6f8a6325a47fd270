"""Cores, records and thin Beam steps of `scicurate run images` (wiring in pipelines/images.py).

    pairs file ─ PairRow (read_pairs) ─ LoadedPair (load_image: embedded bytes or image_path)
        ─ judge_pair: check_pair, measure_image, decide (classifiers/image_filters.py)
        ─ kept: KeptPair │ filtered: FilteredPair (reasons, measures) │ dead letter: ImageDeadLetter

A pairs file is JSONL(.gz) or Parquet; each row has a `caption` and either `image` (bytes, or
a Hugging Face `{"bytes", "path"}` struct; Parquet only) or `image_path`, a path relative to the
folder of the file the row is in. Nothing is fetched: an http(s) reference is a missing image
(`remote_ref_not_fetched`), and a path that leaves the folder (absolute, `..`, a symlink out of
it) is a dead letter (`unsafe_image_path`) and is never opened. The row's id is its `id` or
`pair_id`, else a content hash of caption and image. Every row ends in exactly one of kept/,
filtered/ or dead_letter/; `BuildSummary` checks it (`accounted`).

The cores (`read_pairs`, `pair_row`, `load_image`, `judge_pair`) know nothing of Beam; the
DoFns wrap them and count every outcome under the `images` namespace.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
from dataclasses import dataclass
from typing import Any, BinaryIO, Callable, Iterable, Iterator, Mapping, Optional

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.metrics import Metrics
from apache_beam.pvalue import TaggedOutput

from scicurate.classifiers import image_filters as imf
from scicurate.config import ConfigError
from scicurate.parsers.pool_input import PoolRowError, iter_pool_rows, pool_format
from scicurate.pipelines.summary import CountSummary

NAMESPACE = "images"
FAILED = "failed"
FILTERED = "filtered"
ID_FIELDS = ("id", "pair_id")
PAIR_COLUMNS = (*ID_FIELDS, "caption", "image", "image_path")     # the Parquet columns read
PARQUET_BATCH = 64                      # rows per Arrow batch: rows carry image bytes

STAGE_READ = "read"
STAGE_LOAD = "load"
STAGE_PAIR = "pair"
STAGE_MEASURE = "measure"
STAGE_DECIDE = "decide"

BAD_RECORD = "bad_record"
UNSUPPORTED_INPUT = "unsupported_input"
CORRUPT_INPUT = "corrupt_input"
UNREADABLE_IMAGE = "unreadable_image"
FILE_LEVEL = (UNSUPPORTED_INPUT, CORRUPT_INPUT)     # dead letters that stand for a file, not a row

Count = Callable[[str], None]


def _no_count(_name: str) -> None:
    return None


@dataclass(frozen=True, slots=True)
class ImagesRunConfig:
    """One validated config for an images run: the filters (a preset, maybe with overrides)
    and the output shards."""

    filters: imf.ImageFilterConfig = imf.DEFAULT
    preset: str = "figures"
    num_shards: int = 1

    def __post_init__(self) -> None:
        if self.preset not in imf.PRESETS:
            raise ConfigError(f"preset must be one of {', '.join(imf.PRESETS)}; got {self.preset!r}")
        if self.num_shards < 1:
            raise ConfigError("num_shards must be >= 1")

    def measured_with(self) -> str:
        """How the measures were taken (stored with each row: thresholds can be re-applied to
        rows measured the same way)."""
        f = self.filters
        return (f"image_filters/1 side={f.analysis_side} tolerance={f.blank_tolerance} "
                f"margin={f.blank_margin} laplacian=3x3")


@dataclass(frozen=True, slots=True)
class PairRow:
    """One input row. `image` holds embedded bytes (None when the row gives a path or
    nothing); `image_ref` is the row's image_path (or the embedded struct's path)."""

    pair_id: str
    caption: str
    image_ref: str
    image: Optional[bytes]
    source: str                 # the input file
    where: str                  # file:line or file:row N
    base_dir: str               # the input file's folder; image_path is relative to it

    def __post_init__(self) -> None:
        if not self.pair_id:
            raise ValueError(f"{self.where}: a pair needs an id")


@dataclass(frozen=True, slots=True)
class LoadedPair:
    """A row with its image bytes in hand (b"" when missing; `why_missing` says why)."""

    row: PairRow
    data: bytes
    why_missing: str = ""


@dataclass(frozen=True, slots=True)
class KeptPair:
    row: PairRow
    data: bytes
    measures: imf.ImageMeasures
    flags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FilteredPair:
    """A pair a rule dropped. `reasons` lists every failing rule (pair rules first, then
    image rules in IMAGE_REASONS order); `reason` is the first. `measures` is None when the
    image was missing (pair stage)."""

    row: PairRow
    stage: str
    reasons: tuple[str, ...]
    flags: tuple[str, ...] = ()
    detail: str = ""
    measures: Optional[imf.ImageMeasures] = None

    def __post_init__(self) -> None:
        if not self.reasons:
            raise ValueError("a filtered pair needs a reason")

    @property
    def reason(self) -> str:
        return self.reasons[0]


@dataclass(frozen=True, slots=True)
class ImageDeadLetter:
    pair_id: str
    source: str
    stage: str
    reason: str
    message: str
    image_ref: str = ""
    sha256: str = ""


PairOutcome = KeptPair | FilteredPair | ImageDeadLetter


# ---- read (pure) -----------------------------------------------------------------------------

def pair_id_of(row: Mapping[str, Any], caption: str, image: Optional[bytes], ref: str) -> str:
    raw = next((row[k] for k in ID_FIELDS if isinstance(row.get(k), (str, int)) and str(row[k]).strip()), None)
    if raw is not None:
        return str(raw)
    digest = hashlib.sha256(caption.encode("utf-8", "surrogatepass") + b"\x00")
    digest.update(hashlib.sha256(image).digest() if image is not None else ref.encode("utf-8", "surrogatepass"))
    return "sha256:" + digest.hexdigest()[:32]


def pair_row(row: Any, source: str, where: str) -> PairRow | ImageDeadLetter:
    """One parsed row -> a PairRow or a `bad_record` dead letter (wrong types)."""
    if not isinstance(row, Mapping):
        return ImageDeadLetter("", source, STAGE_READ, BAD_RECORD, f"{where}: expected an object, got {type(row).__name__}")
    raw_id = next((str(row[k]) for k in ID_FIELDS if isinstance(row.get(k), (str, int))), "")
    caption, image, ref = row.get("caption"), row.get("image"), row.get("image_path")
    if caption is not None and not isinstance(caption, str):
        return ImageDeadLetter(raw_id, source, STAGE_READ, BAD_RECORD, f"{where}: 'caption' must be a string")
    if ref is not None and not isinstance(ref, str):
        return ImageDeadLetter(raw_id, source, STAGE_READ, BAD_RECORD, f"{where}: 'image_path' must be a string")
    if isinstance(image, Mapping):                  # Hugging Face Image feature: {bytes, path}
        ref = ref or (image.get("path") if isinstance(image.get("path"), str) else None)
        image = image.get("bytes")
    if isinstance(image, bytearray):
        image = bytes(image)
    if image is not None and not isinstance(image, bytes):
        return ImageDeadLetter(raw_id, source, STAGE_READ, BAD_RECORD,
                               f"{where}: 'image' must be bytes (Parquet binary); JSONL rows give 'image_path'")
    caption, ref = caption or "", ref or ""
    return PairRow(pair_id_of(row, caption, image, ref), caption, ref, image, source, where,
                   posixpath.dirname(source) if "://" in source else os.path.dirname(source))


def read_pairs(stream: BinaryIO, path: str) -> Iterator[PairRow | ImageDeadLetter]:
    """Every row of one pairs file (`stream` is its raw bytes; gzip is undone here). A file
    that breaks mid-way yields the rows before the break and one `corrupt_input` dead letter."""
    for got in iter_pool_rows(stream, path, columns=PAIR_COLUMNS, check_columns=_needs_pair_column,
                              batch_size=PARQUET_BATCH):
        if isinstance(got, PoolRowError):
            # a file that is not UTF-8 is as broken as any other here: no `bad_encoding`
            reason = BAD_RECORD if got.reason == BAD_RECORD else CORRUPT_INPUT
            yield ImageDeadLetter("", path, STAGE_READ, reason, got.message)
        else:
            yield pair_row(got.row, path, got.where)


def _needs_pair_column(path: str, names: frozenset[str]) -> PoolRowError | None:
    if names & {"caption", "image", "image_path"}:
        return None
    return PoolRowError(CORRUPT_INPUT, f"{path}: no caption, image or image_path column (columns: {sorted(names)})")


# ---- load (pure, given a file system) --------------------------------------------------------

class LocalFiles:
    """The file-system calls `load_image` makes, on local paths; `BeamFiles` is the same over
    Beam's FileSystems (gs://, s3://, ...). No call treats a path as a glob."""

    join = staticmethod(os.path.join)

    @staticmethod
    def exists(path: str) -> bool:
        return os.path.isfile(path)             # a regular file: not a folder, FIFO or device

    @staticmethod
    def read(path: str, limit: int) -> bytes:
        with open(path, "rb") as fh:
            return fh.read(limit)


class BeamFiles:
    @staticmethod
    def join(base: str, rel: str) -> str:
        from apache_beam.io.filesystems import FileSystems

        return FileSystems.join(base, rel)

    @staticmethod
    def exists(path: str) -> bool:
        from apache_beam.io.filesystems import FileSystems

        return LocalFiles.exists(path) if _is_local(path) else FileSystems.exists(path)

    @staticmethod
    def read(path: str, limit: int) -> bytes:
        from apache_beam.io.filesystems import FileSystems

        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
            return fh.read(limit)


def _is_local(path: str) -> bool:
    return "://" not in path


def load_image(row: PairRow, max_bytes: int, files=LocalFiles) -> LoadedPair | ImageDeadLetter:
    """A row -> its image bytes. Embedded bytes are used as they are; an `image_path` is
    resolved inside the row's folder (`image_filters.resolve_image_ref`) and read only when it
    stays there. Missing: no reference, a remote URL, a data: URI, a file that is not there,
    an empty file (LoadedPair with `why_missing`). Dead letters: an unsafe path, a file over
    `max_bytes` (read no further than that), a read error."""
    if row.image is not None:
        return LoadedPair(row, row.image, "" if row.image else imf.EMPTY_BYTES)
    path, why = imf.resolve_image_ref(row.image_ref, row.base_dir, files.join)
    if why == imf.UNSAFE_IMAGE_PATH:
        return ImageDeadLetter(row.pair_id, row.source, STAGE_LOAD, why,
                               f"{row.where}: image_path {row.image_ref[:200]!r} leaves the input's folder",
                               row.image_ref)
    if why:
        return LoadedPair(row, b"", why)
    if _is_local(path) and _is_local(row.base_dir):
        base = os.path.realpath(row.base_dir or ".")
        if os.path.commonpath([base, os.path.realpath(path)]) != base:
            return ImageDeadLetter(row.pair_id, row.source, STAGE_LOAD, imf.UNSAFE_IMAGE_PATH,
                                   f"{row.where}: image_path {row.image_ref[:200]!r} resolves outside the input's folder",
                                   row.image_ref)
    try:
        if not files.exists(path):
            return LoadedPair(row, b"", imf.IMAGE_NOT_FOUND)
        data = files.read(path, max_bytes + 1)          # never more than the limit and one byte
    except Exception as exc:  # noqa: BLE001 - any I/O error is this record's
        return ImageDeadLetter(row.pair_id, row.source, STAGE_LOAD, UNREADABLE_IMAGE,
                               f"{row.where}: {path}: {type(exc).__name__}: {exc}"[:2000], row.image_ref)
    if len(data) > max_bytes:
        return ImageDeadLetter(row.pair_id, row.source, STAGE_LOAD, imf.TOO_LARGE,
                               f"{row.where}: {path} is over the {max_bytes}-byte limit", row.image_ref)
    return LoadedPair(row, data, "" if data else imf.EMPTY_BYTES)


# ---- judge (pure) ----------------------------------------------------------------------------

def judge_pair(loaded: LoadedPair, config: imf.ImageFilterConfig, count: Count = _no_count) -> PairOutcome:
    """The pair rule, then the image's measures and verdict -> one outcome. `count` is called
    once with the outcome's name (kept, filtered_<reason>, dead_<reason>)."""
    row = loaded.row
    pair = imf.check_pair(row.caption, row.image_ref, bool(loaded.data), config, why_missing=loaded.why_missing)
    if imf.MISSING_IMAGE in pair.reasons:
        count(f"filtered_{imf.MISSING_IMAGE}")
        return FilteredPair(row, STAGE_PAIR, pair.reasons, pair.flags, pair.detail)
    measures = imf.measure_image(loaded.data, config)
    if isinstance(measures, imf.ImageFailure):
        count(f"dead_{measures.reason}")
        return ImageDeadLetter(row.pair_id, row.source, STAGE_MEASURE, measures.reason,
                               f"{row.where}: {measures.message}", row.image_ref, measures.sha256)
    verdict = imf.decide(measures, config)
    reasons = pair.reasons + verdict.reasons
    if reasons:
        count(f"filtered_{reasons[0]}")
        return FilteredPair(row, STAGE_DECIDE, reasons, pair.flags, "", measures)
    count("kept")
    return KeptPair(row, loaded.data, measures, pair.flags)


# ---- Beam steps ------------------------------------------------------------------------------

def _beam_count(name: str) -> None:
    Metrics.counter(NAMESPACE, name).inc()


class ReadPairs(beam.DoFn):
    """ReadableFile -> PairRow | failed ImageDeadLetter (bad rows, unsupported or broken files)."""

    def process(self, readable) -> Iterator[Any]:
        path = readable.metadata.path
        try:
            pool_format(path)
        except ValueError as exc:
            _beam_count(f"dead_{UNSUPPORTED_INPUT}")
            yield TaggedOutput(FAILED, ImageDeadLetter("", path, STAGE_READ, UNSUPPORTED_INPUT,
                                                       str(exc).replace("pool file", "pairs file")))
            return
        try:
            with readable.open(compression_type=CompressionTypes.UNCOMPRESSED) as stream:
                for item in read_pairs(stream, path):
                    if isinstance(item, PairRow):
                        _beam_count("read_rows")
                        yield item
                    else:
                        _beam_count(f"dead_{item.reason}")
                        yield TaggedOutput(FAILED, item)
        except Exception as exc:  # noqa: BLE001 - one bad file never stops the run
            _beam_count(f"dead_{CORRUPT_INPUT}")
            yield TaggedOutput(FAILED, ImageDeadLetter("", path, STAGE_READ, CORRUPT_INPUT,
                                                       f"{type(exc).__name__}: {exc}"))


class LoadImages(beam.DoFn):
    """PairRow -> LoadedPair | failed ImageDeadLetter (unsafe path, too large, unreadable)."""

    def __init__(self, config: ImagesRunConfig) -> None:
        self.max_bytes = config.filters.max_bytes

    def process(self, row: PairRow) -> Iterator[Any]:
        loaded = load_image(row, self.max_bytes, BeamFiles)
        if isinstance(loaded, ImageDeadLetter):
            _beam_count(f"dead_{loaded.reason}")
            yield TaggedOutput(FAILED, loaded)
        else:
            yield loaded


class JudgePairs(beam.DoFn):
    """LoadedPair -> KeptPair | filtered FilteredPair | failed ImageDeadLetter (undecodable
    image, decompression bomb)."""

    def __init__(self, config: ImagesRunConfig) -> None:
        self.filters = config.filters

    def process(self, loaded: LoadedPair) -> Iterator[Any]:
        outcome = judge_pair(loaded, self.filters, _beam_count)
        if isinstance(outcome, FilteredPair):
            yield TaggedOutput(FILTERED, outcome)
        elif isinstance(outcome, ImageDeadLetter):
            yield TaggedOutput(FAILED, outcome)
        else:
            yield outcome


# ---- summary ---------------------------------------------------------------------------------

def keys_read(row: PairRow) -> Iterable[str]:
    return ("inputs",)


def keys_kept(kept: KeptPair) -> Iterable[str]:
    return ("kept", f"kept_formats.{kept.measures.format}") + tuple(f"kept_flags.{f}" for f in kept.flags)


def keys_filtered(row: FilteredPair) -> Iterable[str]:
    keys = ("filtered", f"filtered_by_reason.{row.reason}") + tuple(f"reason_hits.{r}" for r in row.reasons)
    return keys + ((f"missing_image_by_detail.{row.detail}",) if row.detail else ())


def keys_dead(dead: ImageDeadLetter) -> Iterable[str]:
    # a read-stage bad row was never a PairRow: it is an input here; later dead letters were
    # counted as inputs when read; file-level failures are not rows at all
    row_input = dead.stage == STAGE_READ and dead.reason not in FILE_LEVEL
    return (("inputs",) if row_input else ()) + ("dead_letter", f"dead_letter_by_reason.{dead.reason}")


class BuildSummary(CountSummary):
    """Counts per outcome and reason. `filtered_by_reason` counts each filtered pair once (its
    first reason), `reason_hits` every failing rule; `accounted`: inputs == kept + filtered +
    dead-lettered rows (file-level dead letters are not rows)."""

    TOP = ("inputs", "kept", "filtered", "dead_letter")
    GROUPS = ("filtered_by_reason", "reason_hits", "missing_image_by_detail", "dead_letter_by_reason",
              "kept_flags", "kept_formats")

    def finish(self, summary: dict[str, Any]) -> dict[str, Any]:
        file_level = sum(v for k, v in summary["dead_letter_by_reason"].items() if k in FILE_LEVEL)
        summary["dead_letter_rows"] = summary["dead_letter"] - file_level
        summary["accounted"] = summary["inputs"] == summary["kept"] + summary["filtered"] + summary["dead_letter_rows"]
        summary["kept_share"] = round(summary["kept"] / summary["inputs"], 4) if summary["inputs"] else 0.0
        return summary
