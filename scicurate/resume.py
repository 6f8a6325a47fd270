"""Crash and resume: finished units of expensive work, kept under the output folder until the
run completes, so that rerunning a killed run's command skips them.

Beam has no checkpoint a killed local run could restart from, and a Dataflow or Flink job that
is cancelled starts over. What costs money is a few stages: the low-cost parse of every page
(MinerU, CPU) and every language-model call (the VLM page parser, triage agent, rewriter, …).
Those stages save each finished unit (a page window's parsed pages; one model answer) as one
small file under `OUTPUT/_resume/<stage>-<fingerprint>/`, keyed by a content hash of what went
in, and look the key up before working. Everything else is cheap and simply runs again.

- Keys are content hashes (the window's document hash and page range; the model request), and
  the fingerprint covers every setting that changes the answer (parser tier, OCR, versions;
  model name and sampling), so a rerun with other settings never reuses a stale answer.
- A file is written under a temporary name and renamed into place: a run killed mid-write
  leaves no half file under the key, and an unreadable file is treated as absent (redone).
- Only answers that a rerun would reproduce are saved: a page that timed out or whose parser
  process died is not (the machine may have been overloaded), nor a failed model call.
- After a run finishes, the launcher deletes `_resume/` (`clear_resume`); the datasets are
  complete then and a later rerun of the same command starts from scratch.

Any Beam file system works (local, gs://, s3://).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import threading
from dataclasses import dataclass
from typing import Any

from scicurate.config import ConfigError

RESUME_DIR = "_resume"
_LOG = logging.getLogger("scicurate.resume")


def fingerprint(settings: dict[str, Any]) -> str:
    """A short stable hash of the settings that change a stage's answers."""
    blob = json.dumps(settings, sort_keys=True, default=str).encode("utf-8")
    return hashlib.blake2b(blob, digest_size=8).hexdigest()


def request_key(obj: Any) -> str:
    """sha256 of a JSON-able value (a model request: model, messages, schema, sampling)."""
    blob = json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()


@dataclass(frozen=True)
class WorkStore:
    """Finished units of one stage under `root` (`OUTPUT/_resume/<stage>-<fingerprint>`).

    `load(key)` -> the saved JSON value or None; `save(key, value)` writes it atomically. Both
    swallow storage errors (logged): a resume cache that fails must never fail the run, it only
    costs the work again."""

    root: str

    @classmethod
    def for_stage(cls, output_dir: str, stage: str, settings: dict[str, Any]) -> "WorkStore":
        from apache_beam.io.filesystems import FileSystems

        return cls(FileSystems.join(output_dir.rstrip("/"), RESUME_DIR, f"{stage}-{fingerprint(settings)}"))

    def path(self, key: str) -> str:
        from apache_beam.io.filesystems import FileSystems

        if not key or any(c not in "0123456789abcdefghijklmnopqrstuvwxyz-_" for c in key):
            raise ValueError(f"a resume key is lowercase hex, digits, - and _: {key!r}")
        return FileSystems.join(self.root, key[:2], key + ".json.gz")

    def load(self, key: str) -> Any | None:
        from apache_beam.io.filesystems import FileSystems

        path = self.path(key)
        try:
            if not FileSystems.exists(path):
                return None
            with FileSystems.open(path, compression_type="uncompressed") as fh:
                return json.loads(gzip.decompress(fh.read()).decode("utf-8"))
        except Exception as exc:  # noqa: BLE001 - a damaged entry is redone, never fatal
            _LOG.warning("resume entry %s unreadable (%s: %s); redoing that work", path, type(exc).__name__, exc)
            return None

    def save(self, key: str, value: Any) -> bool:
        from apache_beam.io.filesystems import FileSystems

        path = self.path(key)
        tmp = f"{path}.tmp-{os.getpid()}-{threading.get_ident()}"
        body = gzip.compress(json.dumps(value, ensure_ascii=False).encode("utf-8"), mtime=0)
        try:
            if FileSystems.get_scheme(path) is None:     # local: create the key's folder first
                os.makedirs(os.path.dirname(path), exist_ok=True)
            with FileSystems.create(tmp, compression_type="uncompressed") as fh:
                fh.write(body)
            FileSystems.rename([tmp], [path])
            return True
        except Exception as exc:  # noqa: BLE001
            _LOG.warning("could not save resume entry %s (%s: %s)", path, type(exc).__name__, exc)
            try:
                FileSystems.delete([tmp])
            except Exception:  # noqa: BLE001
                pass
            return False


def resume_root(output_dir: str) -> str:
    from apache_beam.io.filesystems import FileSystems

    return FileSystems.join(output_dir.rstrip("/"), RESUME_DIR)


def count_entries(output_dir: str) -> int:
    """Saved units under OUTPUT/_resume (all stages)."""
    from apache_beam.io.filesystems import FileSystems

    pattern = FileSystems.join(resume_root(output_dir), "*", "*", "*.json.gz")
    try:
        return len(FileSystems.match([pattern])[0].metadata_list)
    except Exception:  # noqa: BLE001
        return 0


def clear_resume(output_dir: str) -> None:
    """Delete OUTPUT/_resume once the run's datasets are complete."""
    from apache_beam.io.filesystems import FileSystems

    from scicurate.pipelines.outputs import delete_folder

    root = resume_root(output_dir)
    try:
        if FileSystems.exists(root):
            delete_folder(root)
    except Exception as exc:  # noqa: BLE001
        _LOG.warning("could not delete %s (%s); delete it by hand", root, exc)


class OutputInUse(ConfigError):
    """The run would read its input from inside its own output folder."""


def check_apart(input_paths: list[str], output_dir: str) -> None:
    """Refuse inputs inside the output folder: preparing the output removes earlier shards."""
    out = output_dir.rstrip("/") + "/"
    inside = [p for p in input_paths if p.startswith(out) or p.rstrip("/") + "/" == out]
    if inside:
        raise OutputInUse(f"--output {output_dir} holds this run's input ({inside[0]}"
                          f"{f' and {len(inside) - 1} more' if len(inside) > 1 else ''}); the run replaces "
                          "the datasets in its output folder: write to another folder")


class RunOutput:
    """A run's output folder from start to finish (used as a context manager by the launcher).

    On entry: refuse inputs inside it, remove what an earlier run left that would say
    "complete" or mix with the new datasets (`pipelines.outputs.prepare_output`), and count the
    finished work a killed run saved (`resumed_units`; with `resume=False` it is deleted instead).
    On a clean exit: delete `_resume/`. On an exception (or a kill) `_resume/` stays for the rerun."""

    def __init__(self, output_dir: str, input_paths: list[str], *, resume: bool = True) -> None:
        self.output_dir = output_dir
        self.input_paths = input_paths
        self.resume = resume
        self.resumed_units = 0

    def __enter__(self) -> "RunOutput":
        from scicurate.pipelines.outputs import prepare_output

        check_apart(self.input_paths, self.output_dir)
        prepare_output(self.output_dir)
        if self.resume:
            self.resumed_units = count_entries(self.output_dir)
            if self.resumed_units:
                import sys

                print(f"scicurate: resuming: {self.resumed_units} finished units (parsed page windows, model "
                      f"answers) of an interrupted run in {self.output_dir} are reused", file=sys.stderr)
        else:
            clear_resume(self.output_dir)
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            clear_resume(self.output_dir)
        return False
