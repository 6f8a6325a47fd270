"""Reading earlier runs for `scicurate export`: which pipeline wrote a run directory, and its
documents as `SourceDoc`s with their provenance. Pure Python + pyarrow, no Beam.

    RUN_DIR ─ inspect_run ─ RunSpec (pipeline, summary.json, run_info.json, part files)
            ─ read_run ─ SourceDoc per document │ ExportDeadLetter per unreadable file or row

What counts as a run's documents:
  pdf     documents/ (the merged documents that passed the quality thresholds); a document the
          run marked as a near duplicate (`duplicate_of`) is read and later filtered as
          `duplicate_in_run`, so it is accounted for, not silently skipped
  web     pages/ (the pages the domain triage kept or rewrote)
  recall  recalled/<domain>/ (the recalled texts, one dataset per target domain); a text
          recalled into two domains is read twice (the export keeps the higher-scored label)

A directory is a finished run when it holds summary.json (runs write it last); anything else is
refused with a ConfigError before any output is written.
"""

from __future__ import annotations

import glob
import json
import os
from dataclasses import dataclass
from typing import Any, Iterator

import pyarrow.parquet as pq

from scicurate.config import ConfigError
from scicurate.mixture import UNLABELLED

BATCH_ROWS = 256
STAGE_READ = "read"
REASON_UNREADABLE = "unreadable_dataset"
REASON_BAD_RECORD = "bad_record"

PIPELINE_DATASETS = {"pdf": "documents", "web": "pages", "recall": "recalled"}
COLUMNS = {
    "pdf": ("doc_id", "source", "text", "duplicate_of", "edu_score", "garble", "formulas", "formulas_broken",
            "scistrings", "spans"),
    "web": ("page_id", "url", "text", "extractor", "quality_score", "edu_score", "format", "lang", "verdict",
            "rewritten", "duplicate_of"),
    "recall": ("doc_id", "url", "source", "text", "domain", "path", "score", "path_score", "passing"),
}


@dataclass(frozen=True, slots=True)
class RunSpec:
    path: str                       # as given on the command line
    pipeline: str                   # pdf | web | recall
    summary: dict[str, Any]
    run_info: dict[str, Any] | None
    files: tuple[str, ...]          # the part files holding its documents, sorted


@dataclass(frozen=True, slots=True)
class SourceDoc:
    run: int                        # index into the export's runs
    pipeline: str
    doc_id: str
    origin: str                     # the PDF path, page URL or pool file
    text: str
    parser: str
    domain: str                     # recall runs: the recalled domain; else UNLABELLED
    domain_path: tuple[str, ...]
    label_score: float              # recall: the domain's score (ranks two labels of one text)
    scores: str                     # JSON of the run's own scores
    duplicate_of: str = ""          # the run marked it a near duplicate of this id


@dataclass(frozen=True, slots=True)
class ExportDeadLetter:
    doc_id: str
    run: str
    source: str
    stage: str
    reason: str
    message: str

    def to_row(self) -> dict[str, Any]:
        return {"doc_id": self.doc_id, "run": self.run, "source": self.source, "stage": self.stage,
                "reason": self.reason, "message": self.message[:4000]}


def _read_json(path: str) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: unreadable: {exc}") from None
    return data if isinstance(data, dict) else None


def inspect_run(path: str) -> RunSpec:
    """The pipeline and part files of a finished run directory; ConfigError otherwise."""
    root = path.rstrip("/")
    if "://" in root:
        raise ConfigError(f"{path}: export reads local run directories; copy the run first (gsutil -m cp -r)")
    if not os.path.isdir(root):
        raise ConfigError(f"{path}: no such run directory")
    kinds = [kind for kind, folder in PIPELINE_DATASETS.items() if os.path.isdir(os.path.join(root, folder))]
    if "web" in kinds and not os.path.isdir(os.path.join(root, "verdicts")):
        kinds.remove("web")
    if len(kinds) != 1:
        raise ConfigError(f"{path}: not a pdf, web or recall run directory (expected one of "
                          f"documents/, pages/ + verdicts/, recalled/)")
    kind = kinds[0]
    summary = _read_json(os.path.join(root, "summary.json"))
    if summary is None:
        raise ConfigError(f"{path}: no summary.json: the run did not finish (rerun it; it resumes)")
    pattern = "recalled/*/part-*.parquet" if kind == "recall" else f"{PIPELINE_DATASETS[kind]}/part-*.parquet"
    files = tuple(sorted(glob.glob(os.path.join(glob.escape(root), pattern))))
    return RunSpec(path=path, pipeline=kind, summary=summary, run_info=_read_json(os.path.join(root, "run_info.json")),
                   files=files)


def _scores(row: dict[str, Any], names: tuple[str, ...]) -> str:
    return json.dumps({n: row[n] for n in names if row.get(n) is not None}, sort_keys=True, ensure_ascii=False)


def _pdf_doc(run: int, row: dict[str, Any]) -> SourceDoc:
    parsers = sorted({s["parser"] for s in row.get("spans") or () if s.get("parser")})
    return SourceDoc(run, "pdf", row["doc_id"], row["source"], row["text"], "+".join(parsers), UNLABELLED, (), 0.0,
                     _scores(row, ("edu_score", "garble", "formulas", "formulas_broken", "scistrings")),
                     duplicate_of=row.get("duplicate_of") or "")


def _web_doc(run: int, row: dict[str, Any]) -> SourceDoc:
    return SourceDoc(run, "web", row["page_id"], row["url"], row["text"], row.get("extractor") or "", UNLABELLED, (),
                     0.0, _scores(row, ("quality_score", "edu_score", "format", "lang", "verdict", "rewritten")),
                     duplicate_of=row.get("duplicate_of") or "")


def _recall_doc(run: int, row: dict[str, Any]) -> SourceDoc:
    return SourceDoc(run, "recall", row["doc_id"], row.get("url") or row["source"], row["text"], "", row["domain"],
                     tuple(row.get("path") or ()), float(row.get("score") or 0.0),
                     _scores(row, ("score", "path_score", "passing")))


_MAKERS = {"pdf": _pdf_doc, "web": _web_doc, "recall": _recall_doc}


def read_run(spec: RunSpec, run: int) -> Iterator[SourceDoc | ExportDeadLetter]:
    """Every document of a run, in file order, then row order; an unreadable part file is one
    dead letter (the rows before the break are kept), a row whose text is not a string one."""
    make = _MAKERS[spec.pipeline]
    wanted = COLUMNS[spec.pipeline]
    for path in spec.files:
        try:
            handle = pq.ParquetFile(path)
            names = set(handle.schema_arrow.names)
            if "text" not in names:
                raise ValueError("no column 'text'")
            columns = [c for c in wanted if c in names]
            for batch in handle.iter_batches(batch_size=BATCH_ROWS, columns=columns):
                for row in batch.to_pylist():
                    if not isinstance(row.get("text"), str):
                        yield ExportDeadLetter(str(row.get("doc_id") or row.get("page_id") or ""), spec.path, path,
                                               STAGE_READ, REASON_BAD_RECORD, "the row has no text")
                        continue
                    yield make(run, row)
        except Exception as exc:  # noqa: BLE001 - a broken file is one dead letter, never the run
            yield ExportDeadLetter("", spec.path, path, STAGE_READ, REASON_UNREADABLE,
                                   f"{type(exc).__name__}: {exc}")

