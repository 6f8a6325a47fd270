"""HTML report of one `scicurate run pdf --output DIR` directory.

In:  the run directory: `summary.json`, the `documents/`, `pages/` and `dead_letter/` Parquet
     datasets (directories of part files, possibly with zero rows), and `run_info.json` when
     the CLI wrote one (wall time, runner, tier; optional).
Out: one self-contained HTML document: headline counts with the accounting identity
     `inputs == documents + dead_letter` shown as OK or BROKEN, bar charts and a score
     histogram as base64 PNGs drawn with matplotlib's Agg renderer, a table of every
     dead-letter row and the highest-scored pages. No script, stylesheet, font or image is
     fetched from anywhere; a Content-Security-Policy forbids it, so a page that is opened from
     a shared bucket cannot call out.

Everything read from the data (file names, messages, reason codes) is untrusted: it is
HTML-escaped, never linked, and drawn with matplotlib's math parser off. The same run directory
gives the same bytes, so reports can be diffed.

Local paths are read with pyarrow directly. A `scheme://` path goes through Beam's FileSystems,
which reads `gs://` or `s3://` when the matching Beam extra is installed and otherwise raises
`ReportError` saying so.
"""

from __future__ import annotations

import base64
import dataclasses
import glob
import html
import io
import json
import math
import os
from collections import Counter
from typing import Any, Iterable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from scicurate import schema

TOP_PAGES = 20
# A real corpus can dead-letter many thousands of files; past this the table stops and says
# how many rows it left out (the Parquet dataset always has them all).
MAX_DEAD_LETTER_ROWS = 5000
# Bar charts keep the most frequent categories and fold the rest into one "other" bar.
MAX_BARS = 25

PAGE_COLUMNS = ("page_id", "source", "page_index", "status", "parser", "tier", "route", "route_reason", "score")
DOCUMENT_COLUMNS = ("doc_id", "num_pages")
DEAD_LETTER_COLUMNS = tuple(schema.DEAD_LETTER_SCHEMA.names)

COLOURS = {
    "low_cost": "#4C72B0", "high_cost": "#DD8452",
    "document": "#C44E52", "page": "#8172B3",
    "ok": "#55A868", "failed": "#C44E52", "bar": "#4C72B0",
}


class ReportError(Exception):
    """The directory cannot be reported on: no summary.json, an unreadable dataset, or a file
    system this installation cannot read. The message says which and what to do."""


@dataclasses.dataclass(frozen=True, slots=True)
class RunData:
    """What the report reads from a run directory; `problems` are non-fatal findings."""

    run_dir: str
    summary: dict[str, Any]
    run_info: dict[str, Any] | None
    documents: pa.Table
    pages: pa.Table
    dead_letter: pa.Table
    problems: tuple[str, ...] = ()


# ---- reading ---------------------------------------------------------------------------------

def _is_remote(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


def _local(path: str) -> str:
    return path[len("file://"):] if path.startswith("file://") else path


class _Files:
    """The four file operations the report needs, on local paths or through Beam's FileSystems."""

    def __init__(self, run_dir: str):
        self.remote = _is_remote(run_dir)
        self._fs = None
        if self.remote:
            scheme = run_dir.split("://", 1)[0]
            try:
                from apache_beam.io.filesystems import FileSystems

                FileSystems.get_filesystem(run_dir)
            except (ImportError, ValueError) as exc:
                raise ReportError(
                    f"{run_dir}: {scheme}:// paths are unsupported in this installation ({exc}). "
                    f"Install the Beam extra for {scheme}:// (e.g. apache-beam[gcp] for gs://) or copy "
                    f"the run directory to a local disk and report on the copy."
                ) from exc
            self._fs = FileSystems

    def join(self, base: str, *parts: str) -> str:
        if self._fs is not None:
            return self._fs.join(base.rstrip("/"), *parts)
        return os.path.join(_local(base), *parts)

    def read(self, path: str) -> bytes | None:
        """The file's bytes, or None when it does not exist."""
        if self._fs is None:
            try:
                with open(path, "rb") as fh:
                    return fh.read()
            except FileNotFoundError:
                return None
        if not self._fs.exists(path):
            return None
        with self._fs.open(path) as fh:
            return fh.read()

    def dataset_files(self, directory: str) -> list[str] | None:
        """The Parquet part files directly under `directory`, sorted; None when it is absent."""
        if self._fs is None:
            if not os.path.isdir(directory):
                return None
            return sorted(glob.glob(os.path.join(glob.escape(directory), "*.parquet")))
        # Object stores have no directories: a dataset without part files counts as missing.
        matches = self._fs.match([self._fs.join(directory, "*.parquet")])[0].metadata_list
        return sorted(m.path for m in matches) or None

    def write(self, path: str, data: bytes) -> None:
        if self._fs is None:
            with open(path, "wb") as fh:
                fh.write(data)
            return
        with self._fs.create(path) as fh:
            fh.write(data)


def _read_dataset(files: _Files, run_dir: str, name: str, full_schema: pa.Schema,
                  columns: Sequence[str], problems: list[str]) -> pa.Table:
    target = pa.schema([full_schema.field(c) for c in columns])
    paths = files.dataset_files(files.join(run_dir, name))
    if paths is None:
        problems.append(f"{name}/ is missing from the run directory; it is reported as empty")
        return target.empty_table()
    tables = []
    for path in paths:
        try:
            source = path if not files.remote else pa.BufferReader(files.read(path) or b"")
            table = pq.read_table(source, columns=list(columns))
        except (pa.ArrowException, OSError, KeyError) as exc:
            raise ReportError(f"{path}: cannot read the {name} columns {list(columns)}: {exc}") from exc
        tables.append(table.cast(target))
    if not tables:
        return target.empty_table()
    return pa.concat_tables(tables)


def load_run(run_dir: str) -> RunData:
    """Read a run directory: summary.json (required), run_info.json (optional), the three datasets.

    Raises ReportError when summary.json is absent or unreadable, a dataset file lacks the
    columns of `scicurate.schema`, or the path's file system is unsupported here.
    """
    files = _Files(run_dir)
    problems: list[str] = []
    raw = files.read(files.join(run_dir, "summary.json"))
    if raw is None:
        raise ReportError(
            f"{run_dir}: no summary.json. Not the --output directory of a finished "
            f"`scicurate run pdf`, or the run stopped before writing its summary."
        )
    try:
        summary = json.loads(raw)
    except ValueError as exc:
        raise ReportError(f"{run_dir}: summary.json is not valid JSON: {exc}") from exc
    if not isinstance(summary, dict):
        raise ReportError(f"{run_dir}: summary.json holds a {type(summary).__name__}, not an object")

    run_info: dict[str, Any] | None = None
    raw_info = files.read(files.join(run_dir, "run_info.json"))
    if raw_info is not None:
        try:
            run_info = json.loads(raw_info)
        except ValueError as exc:
            problems.append(f"run_info.json is not valid JSON ({exc}); throughput unknown")
        else:
            if not isinstance(run_info, dict):
                problems.append("run_info.json is not a JSON object; throughput unknown")
                run_info = None

    return RunData(
        run_dir=run_dir,
        summary=summary,
        run_info=run_info,
        documents=_read_dataset(files, run_dir, "documents", schema.DOCUMENT_SCHEMA, DOCUMENT_COLUMNS, problems),
        pages=_read_dataset(files, run_dir, "pages", schema.PAGE_SCHEMA, PAGE_COLUMNS, problems),
        dead_letter=_read_dataset(files, run_dir, "dead_letter", schema.DEAD_LETTER_SCHEMA,
                                  DEAD_LETTER_COLUMNS, problems),
        problems=tuple(problems),
    )


# ---- facts -----------------------------------------------------------------------------------

def _count_by(table: pa.Table, *columns: str) -> dict[tuple, int]:
    if table.num_rows == 0:
        return {}
    grouped = table.select(list(columns)).group_by(list(columns)).aggregate([([], "count_all")])
    keys = zip(*(grouped[c].to_pylist() for c in columns))
    return dict(zip(keys, grouped["count_all"].to_pylist()))


def _reason_code(route_reason: pa.ChunkedArray) -> pa.Array:
    """`top_score:math_font_ratio+cid_ratio` -> `top_score` (the summary groups the same way)."""
    return pc.list_element(pc.split_pattern(route_reason, ":", max_splits=1), 0)


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclasses.dataclass(frozen=True, slots=True)
class Accounting:
    ok: bool
    explanation: str


def accounting(summary: dict[str, Any]) -> Accounting:
    """OK only when the summary says `accounted` and its own numbers add up."""
    inputs, documents, dead = (_int_or_none(summary.get(k)) for k in ("inputs", "documents", "dead_letter"))
    if inputs is None or documents is None or dead is None:
        return Accounting(False, "summary.json lacks integer inputs / documents / dead_letter counts")
    # filtered/ (quality thresholds) exists from schema 4 on; older summaries have no such key
    filtered = _int_or_none(summary.get("filtered", 0))
    if filtered is None:
        return Accounting(False, "summary.json has a non-integer filtered count")
    adds_up = inputs == documents + filtered + dead
    flag = summary.get("accounted")
    text = (f"inputs {inputs} {'=' if adds_up else '≠'} documents {documents} + filtered {filtered} "
            f"+ dead letters {dead}")
    if flag is not True:
        text += f"; summary.json says accounted = {json.dumps(flag)}"
    return Accounting(adds_up and flag is True, text)


def _throughput(run: RunData, pages: int, inputs: int | None) -> tuple[str, str]:
    """(headline value, detail) for the throughput card."""
    if run.run_info is None:
        return "unknown", "throughput unknown: no run_info.json"
    wall = run.run_info.get("wall_seconds")
    if not isinstance(wall, (int, float)) or isinstance(wall, bool) or not math.isfinite(wall) or wall <= 0:
        return "unknown", "throughput unknown: run_info.json has no positive wall_seconds"
    detail = f"{pages} pages in {wall:.1f} s wall"
    if inputs:
        detail += f"; {inputs / wall:.2f} inputs/s"
    return f"{pages / wall:.2f} pages/s", detail


def _dataset_checks(run: RunData) -> list[tuple[str, Any, int]]:
    """(what, summary's number, rows in the dataset) for the counts both places hold."""
    levels = {k[0]: v for k, v in _count_by(run.dead_letter, "level").items()}
    s = run.summary
    return [
        ("documents", s.get("documents"), run.documents.num_rows),
        ("pages", s.get("pages"), run.pages.num_rows),
        ("dead letters (document)", s.get("dead_letter"), levels.get("document", 0)),
        ("dead letters (page)", s.get("dead_letter_pages"), levels.get("page", 0)),
    ]


# ---- plots -----------------------------------------------------------------------------------

def _figure(height_in: float = 3.4):
    from matplotlib.figure import Figure

    return Figure(figsize=(5.8, height_in), dpi=100, layout="constrained")


def _png_base64(fig) -> str:
    import matplotlib

    buf = io.BytesIO()
    # No Software/date metadata: the same run gives the same bytes.
    with matplotlib.rc_context({"text.parse_math": False}):
        fig.savefig(buf, format="png", metadata={"Software": None})
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _fold(counts: dict[str, dict[str, int]], limit: int = MAX_BARS) -> list[tuple[str, dict[str, int]]]:
    """Categories sorted by total count (then name), the tail folded into one 'other' category."""
    ordered = sorted(counts.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
    if len(ordered) <= limit:
        return ordered
    head, tail = ordered[: limit - 1], ordered[limit - 1:]
    other: Counter[str] = Counter()
    for _, series in tail:
        other.update(series)
    return head + [(f"other ({len(tail)} more)", dict(other))]


def _hbar(categories: dict[str, dict[str, int]], series: Sequence[str], title: str, xlabel: str) -> str:
    """Horizontal stacked bars: one bar per category, one colour per series."""
    import matplotlib

    rows = _fold(categories)
    with matplotlib.rc_context({"text.parse_math": False}):
        fig = _figure(max(1.9, 0.9 + 0.32 * len(rows)))
        ax = fig.add_subplot()
        labels = [name if len(name) <= 48 else name[:45] + "…" for name, _ in rows]
        y = np.arange(len(rows))[::-1]
        left = np.zeros(len(rows))
        present = [s for s in series if any(c.get(s) for _, c in rows)]
        for name in present:
            values = np.array([counts.get(name, 0) for _, counts in rows], dtype=float)
            bars = ax.barh(y, values, left=left, color=COLOURS.get(name, COLOURS["bar"]), label=name)
            if len(present) > 1:  # segment counts only where a bar has several segments
                ax.bar_label(bars, labels=[str(int(v)) if v and v != t else "" for v, t in
                                           zip(values, [sum(c.values()) for _, c in rows])],
                             label_type="center", fontsize=8, color="white")
            left += values
        for yi, total in zip(y, left):
            ax.text(total, yi, f" {int(total)}", va="center", fontsize=8)
        ax.set_yticks(y, labels, fontsize=8)
        ax.set_xlim(0, max(left.max(), 1) * 1.15)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_xlabel(xlabel)
        ax.set_title(title, fontsize=10)
        if len(present) > 1:
            fig.legend(fontsize=8, loc="outside lower center", ncols=len(present), frameon=False)
        return _png_base64(fig)


def _score_histogram(pages: pa.Table) -> str:
    """Stacked histogram of scores in [0, 1) by route; pages scored >= 1 (no text layer) get
    their own bar at the right, and a dashed line marks the lowest score routed by `top_score`."""
    import matplotlib

    scores = pages["score"].to_numpy()
    routes = np.asarray(pages["route"].to_pylist(), dtype=object)
    edges = np.linspace(0.0, 1.0, 21)
    width = edges[1] - edges[0]
    with matplotlib.rc_context({"text.parse_math": False}):
        fig = _figure()
        ax = fig.add_subplot()
        bottom = np.zeros(len(edges))  # 20 bins + the "no text layer" bar
        for route in ("low_cost", "high_cost"):
            mine = scores[routes == route]
            counts = np.histogram(np.clip(mine[mine < 1.0], 0.0, 1.0), bins=edges)[0]
            counts = np.append(counts, np.count_nonzero(mine >= 1.0)).astype(float)
            x = np.append(edges[:-1], 1.05)
            ax.bar(x, counts, width=width * 0.95, bottom=bottom, align="edge",
                   color=COLOURS[route], label=route)
            bottom += counts
        top_routed = pc.starts_with(pages["route_reason"], "top_score")
        if pc.any(top_routed).as_py():
            threshold = pc.min(pc.filter(pages["score"], top_routed)).as_py()
            ax.axvline(threshold, color="black", linestyle="--", linewidth=1,
                       label=f"lowest top_score page ({threshold:.3f})")
        positive = bottom[bottom > 0]
        if positive.size and positive.max() > 50 * positive.min():
            ax.set_yscale("log")
            ax.set_ylabel("pages (log scale)")
        else:
            ax.set_ylabel("pages")
            ax.yaxis.get_major_locator().set_params(integer=True)
        ax.set_xticks([0, 0.25, 0.5, 0.75, 1.0, 1.05 + width / 2], ["0", "0.25", "0.5", "0.75", "1", "no text\nlayer"])
        ax.set_xlabel("questionability score")
        ax.set_title("Questionability score by route", fontsize=10)
        fig.legend(fontsize=8, loc="outside lower center", ncols=3, frameon=False)
        return _png_base64(fig)


def _pages_per_document(documents: pa.Table) -> str:
    import matplotlib

    counts = documents["num_pages"].to_numpy()
    with matplotlib.rc_context({"text.parse_math": False}):
        fig = _figure(2.8)
        ax = fig.add_subplot()
        if counts.max() <= 40:
            edges = np.arange(0.5, counts.max() + 1.5)
        else:
            edges = np.histogram_bin_edges(counts, bins="auto")
        ax.hist(counts, bins=edges, color=COLOURS["bar"], rwidth=0.9)
        ax.set_xlabel("pages per document")
        ax.set_ylabel("documents")
        ax.set_title(f"Pages per document (median {np.median(counts):g}, max {counts.max()})", fontsize=10)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.yaxis.get_major_locator().set_params(integer=True)
        return _png_base64(fig)


# ---- HTML ------------------------------------------------------------------------------------

def html_head(title: str) -> list[str]:
    """The head every scicurate HTML report opens with: inline CSS, and a Content-Security-Policy
    that lets the page fetch nothing (images are data: URLs only)."""
    return [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; "
        "style-src 'unsafe-inline'\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title>",
        f"<style>{CSS}</style></head><body>",
    ]


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _img(b64: str, alt: str) -> str:
    return f'<img src="data:image/png;base64,{b64}" alt="{_e(alt)}">'


def _none(what: str) -> str:
    return f'<p class="none">{_e(what)}: none</p>'


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]], classes: Sequence[str] = ()) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="{_e(classes[i])}">{_e(v)}</td>' if i < len(classes) and classes[i] else f"<td>{_e(v)}</td>"
            for i, v in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _card(label: str, value: Any, detail: str = "", cls: str = "") -> str:
    extra = f'<div class="detail">{_e(detail)}</div>' if detail else ""
    return (f'<div class="card {_e(cls)}"><div class="label">{_e(label)}</div>'
            f'<div class="value">{_e(value)}</div>{extra}</div>')


def _plots(run: RunData) -> list[str]:
    pages, dead = run.pages, run.dead_letter
    out = []

    def figure(title: str, body: str) -> None:
        out.append(f'<figure><figcaption>{_e(title)}</figcaption>{body}</figure>')

    if pages.num_rows:
        by_route = {r: {r: n} for (r,), n in _count_by(pages, "route").items()}
        figure("Pages per route", _img(_hbar(by_route, ("low_cost", "high_cost"), "Pages per route", "pages"),
                                       "bar chart: pages per route"))
        reasons: dict[str, dict[str, int]] = {}
        codes = pa.table({"reason": _reason_code(pages["route_reason"]), "route": pages["route"]})
        for (reason, route), n in _count_by(codes, "reason", "route").items():
            reasons.setdefault(reason, {})[route] = n
        figure("Pages per route reason", _img(
            _hbar(reasons, ("low_cost", "high_cost"), "Pages per route reason", "pages"),
            "bar chart: pages per route reason"))
        signals: Counter[str] = Counter()
        top = pc.filter(pages["route_reason"], pc.starts_with(pages["route_reason"], "top_score:"))
        for reason in top.to_pylist():
            signals.update(s for s in reason.split(":", 1)[1].split("+") if s)
        if signals:
            figure("Signals behind top_score routing", _img(
                _hbar({s: {"high_cost": n} for s, n in signals.items()}, ("high_cost",),
                      "Signals named in top_score reasons", "routed pages naming it"),
                "bar chart: signals named in top_score route reasons"))
        figure("Questionability score", _img(_score_histogram(pages), "histogram: questionability score by route"))
        parsers: dict[str, dict[str, int]] = {}
        for (parser, tier, status), n in _count_by(pages, "parser", "tier", "status").items():
            parsers.setdefault(f"{parser} ({tier})", {})[status] = n
        figure("Pages per parser", _img(_hbar(parsers, ("ok", "failed"), "Pages per parser (tier) and status", "pages"),
                                        "bar chart: pages per parser"))
    else:
        figure("Pages", _none("pages"))

    if dead.num_rows:
        reasons = {}
        for (reason, level), n in _count_by(dead, "reason", "level").items():
            reasons.setdefault(reason, {})[level] = n
        figure("Dead-letter reasons", _img(
            _hbar(reasons, ("document", "page"), "Dead-letter reasons by level", "dead-letter rows"),
            "bar chart: dead-letter reasons, document vs page level"))
    else:
        figure("Dead-letter reasons", _none("dead letters"))

    if run.documents.num_rows:
        figure("Pages per document", _img(_pages_per_document(run.documents), "histogram: pages per document"))
    else:
        figure("Pages per document", _none("documents"))
    return out


def _dead_letter_table(dead: pa.Table) -> str:
    if dead.num_rows == 0:
        return _none("dead letters")
    order = pc.sort_indices(dead, sort_keys=[("level", "ascending"), ("reason", "ascending"),
                                             ("source", "ascending"), ("page_index", "ascending"),
                                             ("doc_id", "ascending")])
    shown = dead.take(order[:MAX_DEAD_LETTER_ROWS]).to_pylist()
    rows = [(r["source"], r["level"], "—" if r["page_index"] is None else r["page_index"], r["stage"],
             r["reason"], r["message"]) for r in shown]
    note = ""
    if dead.num_rows > len(shown):
        note = (f'<p class="note">{dead.num_rows - len(shown)} more dead-letter rows not shown; '
                f'read dead_letter/ for all of them.</p>')
    return _table(("source", "level", "page", "stage", "reason", "message"), rows,
                  ("src", "", "num", "", "code", "msg")) + note


def _top_pages_table(pages: pa.Table) -> str:
    if pages.num_rows == 0:
        return _none("pages")
    k = min(TOP_PAGES, pages.num_rows)
    top = pc.select_k_unstable(pages, k, sort_keys=[("score", "descending"), ("page_id", "ascending")])
    rows = [(r["source"], r["page_index"], f"{r['score']:.4f}", r["route"], r["route_reason"], r["parser"])
            for r in pages.take(top).to_pylist()]
    return _table(("source", "page", "score", "route", "route_reason", "parser"), rows,
                  ("src", "num", "num", "", "code", ""))


CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:24px;color:#222;
max-width:1180px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd}
.sub{color:#555;font-size:13px;margin-bottom:14px}
.identity{padding:10px 14px;border-radius:6px;font-size:16px;margin:10px 0}
.identity.ok{background:#e3f4e6;border:1px solid #55A868}.identity.broken{background:#fbe4e4;border:1px solid #C44E52}
.identity b{font-size:18px;margin-right:8px}
.cards{display:flex;flex-wrap:wrap;gap:10px}
.card{border:1px solid #ddd;border-radius:6px;padding:8px 12px;min-width:120px}
.card .label{font-size:12px;color:#555}.card .value{font-size:22px;font-weight:600}
.card .detail{font-size:11px;color:#666;max-width:220px}
.card.warn .value{color:#C44E52}
.plots{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));gap:14px}
figure{margin:0;border:1px solid #eee;border-radius:6px;padding:6px}
figcaption{font-size:12px;color:#555;margin-bottom:4px}
figure img{max-width:100%;height:auto;display:block}
table{border-collapse:collapse;font-size:12px;width:100%}
th,td{border:1px solid #ddd;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.num{text-align:right;white-space:nowrap}
td.msg{white-space:pre-wrap;word-break:break-word;max-width:520px}
td.src,td.code{word-break:break-all;font-family:ui-monospace,"DejaVu Sans Mono",monospace}
.none{color:#777;font-style:italic}.note{color:#555;font-size:12px}
.problems li{color:#8a4b00}
.check.bad{color:#C44E52;font-weight:600}
"""


def render(run: RunData) -> str:
    """The report for data already read by `load_run` (pure: no I/O)."""
    s = run.summary
    acct = accounting(s)
    pages_n = _int_or_none(s.get("pages"))
    pages_n = run.pages.num_rows if pages_n is None else pages_n
    throughput, throughput_detail = _throughput(run, pages_n, _int_or_none(s.get("inputs")))
    info = run.run_info or {}
    sub_parts = [f"run directory {run.run_dir}"]
    for key, label in (("scicurate_version", "scicurate"), ("runner", "runner"), ("tier", "tier")):
        if key in info:
            sub_parts.append(f"{label} {info[key]}")
    if "tier" not in info and isinstance(s.get("config"), dict) and "tier" in s["config"]:
        sub_parts.append(f"tier {s['config']['tier']}")

    def count(key: str) -> Any:
        value = s.get(key)
        return "missing" if value is None else value

    cards = [
        _card("inputs", count("inputs")),
        _card("documents", count("documents"), f"{s.get('documents_near_duplicate', 0)} near-duplicates marked"),
        _card("dead letters", count("dead_letter"), "document level", "warn" if s.get("dead_letter") else ""),
        _card("dead-letter pages", count("dead_letter_pages"), "page level",
              "warn" if s.get("dead_letter_pages") else ""),
        _card("pages", count("pages")),
        _card("pages routed", count("pages_routed"), "route = high_cost"),
        _card("needs high cost", count("pages_needs_high_cost"), "still low-cost text"),
        _card("throughput", throughput, throughput_detail),
    ]
    if s.get("llm_calls") or s.get("pages_fallback"):   # runs with a VLM on the high-cost route
        cards[-1:-1] = [
            _card("VLM fallbacks", count("pages_fallback"), "routed pages kept low-cost text",
                  "warn" if s.get("pages_fallback") else ""),
            _card("LLM calls", count("llm_calls"), f"{s.get('llm_exceptions', 0)} batch exceptions"),
        ]

    checks = []
    for what, said, rows in _dataset_checks(run):
        good = said == rows
        checks.append(f'<li class="check {"ok" if good else "bad"}">{_e(what)}: summary {_e(said)}, '
                      f'Parquet rows {rows} — {"match" if good else "MISMATCH"}</li>')
    problems = list(run.problems)
    if run.run_info is None and not any("run_info" in p for p in problems):
        problems.append("no run_info.json: throughput unknown")
    problems_html = ("<ul class=\"problems\">" + "".join(f"<li>{_e(p)}</li>" for p in problems) + "</ul>"
                     if problems else "")

    config = s.get("config") if isinstance(s.get("config"), dict) else {}
    config_html = (_table(("setting", "value"), sorted((k, json.dumps(v)) for k, v in config.items()))
                   if config else _none("config"))
    status = "OK" if acct.ok else "BROKEN"
    title = f"scicurate run report — {run.run_dir}"

    return "\n".join([
        *html_head(title),
        "<h1>scicurate run report</h1>",
        f'<div class="sub">{_e(" · ".join(str(p) for p in sub_parts))}</div>',
        f'<div class="identity {status.lower()}" id="accounting"><b>{status}</b>'
        f"accounting identity: {_e(acct.explanation)}</div>",
        f'<div class="cards">{"".join(cards)}</div>',
        problems_html,
        "<h2>Summary vs Parquet datasets</h2>",
        f"<ul>{''.join(checks)}</ul>",
        "<h2>Plots</h2>",
        f'<div class="plots">{"".join(_plots(run))}</div>',
        f"<h2>Dead letters ({run.dead_letter.num_rows})</h2>",
        _dead_letter_table(run.dead_letter),
        f"<h2>Top {TOP_PAGES} pages by questionability score</h2>",
        _top_pages_table(run.pages),
        "<h2>Run configuration</h2>",
        config_html,
        "</body></html>",
        "",
    ])


def build_report(run_dir: str) -> str:
    """Self-contained HTML report of a `scicurate run pdf --output` directory (see module doc)."""
    return render(load_run(run_dir))


def write_report(run_dir: str, out_path: str | None = None) -> str:
    """Write `build_report(run_dir)` to `out_path` (default RUN_DIR/report.html); return the path."""
    files = _Files(run_dir) if out_path is None else _Files(out_path)
    if out_path is None:
        out_path = files.join(run_dir, "report.html")
    files.write(out_path, build_report(run_dir).encode("utf-8"))
    return out_path
