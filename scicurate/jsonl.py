"""Reading a user's JSONL file at start-up: every problem is a ConfigError naming the line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from scicurate.config import ConfigError


def read_objects(path: str | Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) for every non-blank line; a missing or empty file, a line that is
    not JSON or not an object raise ConfigError."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"no such file: {path}")
    lines: list[tuple[int, dict[str, Any]]] = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{path}:{lineno}: not JSON: {exc}") from None
            if not isinstance(obj, dict):
                raise ConfigError(f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}")
            lines.append((lineno, obj))
    if not lines:
        raise ConfigError(f"{path}: no JSON lines")
    return lines


def read_rows(path: str | Path, need: tuple[str, ...], splits: set[str] | None = None) -> list[dict[str, Any]]:
    """`read_objects` rows that have every key in `need` (a missing, empty or null value is a
    ConfigError naming the line), kept when `splits` is None or holds the row's `split`."""
    rows = []
    for number, row in read_objects(path):
        missing = [k for k in need if row.get(k) in (None, "", [])]
        if missing:
            raise ConfigError(f"{path}:{number}: needs {', '.join(missing)}")
        if splits is None or str(row.get("split", "")) in splits:
            rows.append(row)
    return rows
