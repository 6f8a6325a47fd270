"""`scicurate eval …`: scorers for published ground-truth formats, behind one registry.

Each evaluator registers an `EvalCommand`: how to add its flags, and how to run and return an
`EvalReport`. The CLI builds one `scicurate eval NAME` subcommand per registered command, so a
later stage adds `eval dedup` or `eval scistrings` by registering, without touching the CLI.
"""

from __future__ import annotations

import argparse
import importlib
import json
from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass(frozen=True)
class EvalReport:
    """What an evaluator prints: headline metrics, and a table (one row per group)."""

    name: str
    summary: dict[str, Any]
    columns: tuple[str, ...] = ()
    rows: tuple[dict[str, Any], ...] = ()
    notes: tuple[str, ...] = ()          # approximations and caveats, printed under the table
    details: dict[str, Any] = field(default_factory=dict)  # per-item results (in --json only)

    def __post_init__(self) -> None:
        for row in self.rows:
            missing = [c for c in self.columns if c not in row]
            if missing:
                raise ValueError(f"row {row} lacks columns {missing}")

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "summary": self.summary, "columns": list(self.columns),
                "rows": [dict(r) for r in self.rows], "notes": list(self.notes), "details": self.details}

    def to_text(self) -> str:
        lines = [f"# {self.name}"]
        for key, value in self.summary.items():
            lines.append(f"{key}: {_fmt(value)}")
        if self.rows:
            cells = [[_fmt(r[c]) for c in self.columns] for r in self.rows]
            widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(self.columns)]
            lines.append("")
            lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(self.columns, widths)) + " |")
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
            for row in cells:
                lines.append("| " + " | ".join(v.ljust(w) for v, w in zip(row, widths)) + " |")
        for note in self.notes:
            lines.append(f"note: {note}")
        return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


@dataclass(frozen=True)
class EvalCommand:
    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], EvalReport]


_REGISTRY: dict[str, EvalCommand] = {}

# Modules that register evaluators when imported. Later stages append theirs here.
EVAL_MODULES = (
    "scicurate.evals.pdf",
    "scicurate.evals.web",
    "scicurate.evals.classify",
    "scicurate.evals.dedup",
    "scicurate.evals.scistrings",
)


def register(command: EvalCommand) -> EvalCommand:
    if command.name in _REGISTRY and _REGISTRY[command.name] is not command:
        raise ValueError(f"eval {command.name!r} registered twice")
    _REGISTRY[command.name] = command
    return command


def commands() -> dict[str, EvalCommand]:
    for module in EVAL_MODULES:
        importlib.import_module(module)
    return dict(sorted(_REGISTRY.items()))
