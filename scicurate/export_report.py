"""report.html of a `scicurate export`: the mixture (target vs achieved share per domain and per
source) and token-length histograms per domain, drawn from manifest.json alone.

In:  the manifest dict `scicurate.export.run_export` writes.
Out: one self-contained HTML page (matplotlib Agg PNGs inline, the same Content-Security-Policy
     and escaping as `scicurate report`), the same bytes for the same manifest.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from scicurate.report import _card, _e, _figure, _img, _png_base64, _table, html_head

TARGET_COLOUR, ACHIEVED_COLOUR = "#8C8C8C", "#4C72B0"


def mixture_plot(domains: list[dict[str, Any]]) -> str:
    """Paired horizontal bars per domain: target share (grey) and achieved share (blue); a short
    domain's label ends in "(short)"."""
    import matplotlib

    with matplotlib.rc_context({"text.parse_math": False}):
        fig = _figure(max(2.0, 0.9 + 0.45 * len(domains)))
        ax = fig.add_subplot()
        y = np.arange(len(domains))[::-1].astype(float)
        target = [d["target_share"] for d in domains]
        achieved = [d["achieved_share"] for d in domains]
        ax.barh(y + 0.2, target, height=0.38, color=TARGET_COLOUR, label="target")
        bars = ax.barh(y - 0.2, achieved, height=0.38, color=ACHIEVED_COLOUR, label="achieved")
        ax.bar_label(bars, labels=[f" {v:.3f}" for v in achieved], fontsize=7)
        labels = [d["domain"] + (" (short)" if d["short"] else "") for d in domains]
        ax.set_yticks(y, labels, fontsize=8)
        ax.set_xlim(0, max(target + achieved + [0.01]) * 1.25)
        ax.set_xlabel("share of tokens")
        ax.set_title("Mixture: target vs achieved", fontsize=10)
        fig.legend(fontsize=8, loc="outside lower center", ncols=2, frameon=False)
        return _png_base64(fig)


def length_plot(domain: str, edges: list[int], counts: list[int]) -> str:
    import matplotlib

    with matplotlib.rc_context({"text.parse_math": False}):
        fig = _figure(2.4)
        ax = fig.add_subplot()
        labels = [f"{edges[i]}–{edges[i + 1] - 1}" if i + 1 < len(edges) else f"{edges[i]}+" for i in range(len(edges))]
        x = np.arange(len(counts))
        ax.bar(x, counts, color=ACHIEVED_COLOUR)
        ax.set_xticks(x, labels, fontsize=7, rotation=45, ha="right")
        ax.yaxis.get_major_locator().set_params(integer=True)
        ax.set_xlabel("tokens per document")
        ax.set_ylabel("documents")
        ax.set_title(f"Token lengths: {domain}", fontsize=10)
        return _png_base64(fig)


def render_export(manifest: dict[str, Any]) -> str:
    counts, shares = manifest["counts"], manifest["shares"]
    status = "OK" if manifest["accounted"] else "BROKEN"
    cards = [
        _card("documents read", f"{counts['documents_read']:,}"),
        _card("documents taken", f"{counts['documents_taken']:,}"),
        _card("rows", f"{counts['rows']:,}", "copies included"),
        _card("tokens", f"{counts['tokens']:,}", manifest["tokenizer"]["name"]),
        _card("shards", len(manifest["shards"])),
        _card("budget", f"{shares['budget_tokens']:,}", "tokens asked for"),
        _card("short domains", len(shares["short_domains"]), ", ".join(shares["short_domains"]),
              "warn" if shares["short_domains"] else ""),
    ]
    domain_rows = [(d["domain"], f"{d['target_share']:.3f}", f"{d['target_share_given_short']:.3f}",
                    f"{d['achieved_share']:.3f}", f"{d['target_tokens']:,}",
                    f"{d['achieved_tokens']:,}", f"{d['available_tokens']:,}", d["rows"],
                    "short" if d["short"] else ("yes" if d["within_tolerance"] else "NO"))
                   for d in shares["domains"]]
    source_rows = [(s["source"], "" if s["target_share"] is None else f"{s['target_share']:.3f}",
                    f"{s['achieved_share']:.3f}", f"{s['achieved_tokens']:,}") for s in shares["sources"]]
    reasons = [(k, f"{v:,}") for k, v in counts["filtered"].items()]
    dead = [(k, f"{v:,}") for k, v in counts["dead_letter"].items()]
    lengths = manifest["token_lengths"]
    plots = [_img(mixture_plot(shares["domains"]), "mixture: target vs achieved share per domain")]
    plots += [_img(length_plot(name, lengths["bin_edges"], c), f"token lengths of {name}")
              for name, c in lengths["domains"].items()]
    shard_rows = [(s["path"], f"{s['rows']:,}", f"{s['tokens']:,}", f"{s['bytes']:,}", s["sha256"][:16])
                  for s in manifest["shards"]]
    inputs = [(r["path"], r["pipeline"], f"{r['documents']:,}", f"{r['taken']:,}") for r in manifest["inputs"]]
    title = "scicurate export report"
    return "\n".join([
        *html_head(title),
        f"<h1>{_e(title)}</h1>",
        f'<div class="identity {status.lower()}" id="accounting"><b>{status}</b>'
        f"documents read = documents taken + filtered</div>",
        f'<div class="cards">{"".join(cards)}</div>',
        f"<h2>Domains (tolerance ±{shares['tolerance']})</h2>",
        _table(("domain", "target", "target given the short domains", "achieved", "target tokens",
                "achieved tokens", "available", "rows", "within tolerance"), domain_rows),
        "<h2>Sources</h2>",
        _table(("source", "target", "achieved", "tokens"), source_rows),
        "<h2>Plots</h2>",
        f'<div class="plots">{"".join(plots)}</div>',
        "<h2>Filtered</h2>", _table(("reason", "documents"), reasons),
        "<h2>Dead letters</h2>", _table(("reason", "rows"), dead),
        "<h2>Inputs</h2>", _table(("run", "pipeline", "documents", "taken"), inputs),
        "<h2>Shards</h2>", _table(("file", "rows", "tokens", "bytes", "sha256"), shard_rows),
        "</body></html>", "",
    ])


def write_export_report(manifest: dict[str, Any], path: str) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(render_export(manifest))
