"""Per-domain cleaning derived from the triage agent's tags (the other half of per-domain
cleaning is domain line dedup, `dedup.lines`).

The agent tags a sample of a domain's pages with parsing issues. When enough of them show
navigation or boilerplate residue, or ads, every page of the domain gets the matching cleaning
action; pages of other domains are untouched, so a rule that would be too aggressive for the
whole web (dropping short link-like lines) only runs where the agent saw the problem.

    cleaning_actions(stats) -> ("strip_nav_lines", "strip_ad_lines") or a subset
    clean_text(text, actions) -> (text, lines removed)

Never touched: lines inside ``` code fences, Markdown headings, table rows, lines with LaTeX
(`$`, `\\(`), and any line with sentence punctuation.
"""

from __future__ import annotations

import re
from typing import Any

STRIP_NAV_LINES = "strip_nav_lines"
STRIP_AD_LINES = "strip_ad_lines"
ACTIONS = (STRIP_NAV_LINES, STRIP_AD_LINES)
# Share of tagged pages with the issue for the domain to get the action. 0.3 is the share at
# which the triage verdict rules call a domain badly formed (VerdictConfig.rewrite_min_issue_share).
MIN_ISSUE_SHARE = 0.3
MIN_TAGGED = 3
# A navigation-like line: at most this many words after list markers are removed.
NAV_MAX_WORDS = 3
_LIST_MARK = re.compile(r"^\s*(?:[-*+•·▪‣]|\d{1,3}[.)])\s+")
_SENTENCE_END = re.compile(r"[.!?:;。！？；：…)\]\"”»]\s*$")
_MENU_SPLIT = re.compile(r"\s+(?:\||·|»|›|•|/|>|–|—)\s+")
_AD_LINE = re.compile(r"^\W*(?:advertisement|advertising|sponsored(?: content| links?)?|ad|anzeige|werbung|"
                      r"publicité|publicidad|pubblicità|реклама|广告|広告)\W*$", re.IGNORECASE)


def cleaning_actions(stats: Any, min_share: float = MIN_ISSUE_SHARE, min_tagged: int = MIN_TAGGED) -> tuple[str, ...]:
    """The actions a domain's tag statistics call for (`triage.DomainTagStats`); () when fewer
    than `min_tagged` pages were tagged (too little evidence)."""
    if getattr(stats, "pages_tagged", 0) < min_tagged:
        return ()
    shares = dict(stats.issue_shares)
    actions = []
    if max(shares.get("navigation", 0.0), shares.get("boilerplate", 0.0)) >= min_share:
        actions.append(STRIP_NAV_LINES)
    if shares.get("ads", 0.0) >= min_share:
        actions.append(STRIP_AD_LINES)
    return tuple(actions)


def _protected(line: str) -> bool:
    s = line.strip()
    return (not s or s.startswith(("#", "|", ">", "```", "~~~")) or "$" in s or "\\(" in s or "\\[" in s
            or bool(_SENTENCE_END.search(s)))


def is_nav_line(line: str) -> bool:
    """A short link-like line ("Home", "- About us", "Contact | Imprint | Privacy")."""
    if _protected(line):
        return False
    body = _LIST_MARK.sub("", line).strip()
    items = _MENU_SPLIT.split(body)
    if len(items) >= 3:
        return all(len(item.split()) <= NAV_MAX_WORDS for item in items)
    return len(body.split()) <= NAV_MAX_WORDS and not any(ch.isdigit() for ch in body)


def is_ad_line(line: str) -> bool:
    return bool(_AD_LINE.match(line.strip())) if line.strip() else False


def clean_text(text: str, actions: tuple[str, ...]) -> tuple[str, int]:
    """(text without the lines the actions remove, lines removed). Code fences are kept whole;
    runs of blank lines left behind collapse to one."""
    unknown = set(actions) - set(ACTIONS)
    if unknown:
        raise ValueError(f"unknown cleaning actions {sorted(unknown)}")
    if not actions:
        return text, 0
    out: list[str] = []
    removed = 0
    fence = ""                       # the opening fence ("```" or "~~~") while inside one
    for line in text.split("\n"):
        marker = line.strip()[:3]
        if marker in ("```", "~~~") and (not fence or marker == fence):
            fence = "" if fence else marker  # CommonMark: only the same character closes a fence
            out.append(line)
            continue
        if fence:
            out.append(line)
            continue
        if ((STRIP_NAV_LINES in actions and is_nav_line(line))
                or (STRIP_AD_LINES in actions and is_ad_line(line))):
            removed += 1
            continue
        if not line.strip() and out and not out[-1].strip():
            continue
        out.append(line)
    if not removed:
        return text, 0
    return "\n".join(out).strip("\n"), removed
