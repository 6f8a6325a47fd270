"""`parsers.web_clean`: which cleaning actions a domain's triage tags call for, and what
`clean_text` removes (navigation and ad lines) and never touches (headings, tables, code
fences, LaTeX, sentences)."""

from __future__ import annotations

import pytest

from scicurate.classifiers import triage
from scicurate.parsers import web_clean
from scicurate.parsers.web_clean import STRIP_AD_LINES, STRIP_NAV_LINES, clean_text, cleaning_actions


def _tags(i: int, issues=(), domain: str = "example.org") -> triage.PageTags:
    return triage.PageTags(page_id=f"p{i:03d}", url=f"https://{domain}/{i}", domain=domain,
                           science_domain="physics", informative=True, quality=4, format="article",
                           issues=tuple(issues), prompt="web_triage@1", model="fake")


def _failure(i: int) -> triage.TagFailure:
    return triage.TagFailure(page_id=f"f{i:03d}", url=f"https://example.org/f{i}", domain="example.org",
                             reason="unavailable", message="down")


def _stats(n: int, **with_issue: int) -> triage.DomainTagStats:
    """n tagged pages; the first with_issue[issue] of them carry `issue`."""
    pages = []
    for i in range(n):
        pages.append(_tags(i, [issue for issue, k in with_issue.items() if i < k]))
    return triage.aggregate(pages)


# ---- cleaning_actions -------------------------------------------------------------------------

def test_navigation_at_the_threshold_share_strips_nav_lines():
    stats = _stats(10, navigation=3)          # share exactly 0.3
    assert stats.issue_share("navigation") == pytest.approx(0.3)
    assert cleaning_actions(stats) == (STRIP_NAV_LINES,)


def test_navigation_below_the_threshold_calls_for_nothing():
    stats = _stats(10, navigation=2)          # share 0.2
    assert cleaning_actions(stats) == ()


def test_boilerplate_also_strips_nav_lines():
    assert cleaning_actions(_stats(4, boilerplate=2)) == (STRIP_NAV_LINES,)


def test_ads_strip_ad_lines_and_both_issues_give_both_actions_in_order():
    assert cleaning_actions(_stats(5, ads=2)) == (STRIP_AD_LINES,)
    assert cleaning_actions(_stats(5, ads=5, navigation=5)) == (STRIP_NAV_LINES, STRIP_AD_LINES)


def test_other_issues_call_for_no_cleaning():
    assert cleaning_actions(_stats(5, broken_code=5, truncated=5, garbled=5)) == ()


def test_fewer_than_three_tagged_pages_call_for_nothing_even_with_failures():
    # 2 tagged pages, both with every cleanable issue; the failures do not count as tagged
    items = [_tags(0, ["navigation", "ads"]), _tags(1, ["navigation", "ads"]), _failure(0), _failure(1)]
    stats = triage.aggregate(items)
    assert stats.pages_tagged == 2 and stats.tag_failures == 2
    assert cleaning_actions(stats) == ()
    # the third tagged page makes it enough evidence
    stats3 = triage.aggregate(items + [_tags(2)])
    assert cleaning_actions(stats3) == (STRIP_NAV_LINES, STRIP_AD_LINES)


def test_thresholds_are_parameters():
    stats = _stats(10, navigation=2)
    assert cleaning_actions(stats, min_share=0.2) == (STRIP_NAV_LINES,)
    assert cleaning_actions(_stats(2, navigation=2), min_tagged=2) == (STRIP_NAV_LINES,)


# ---- clean_text -----------------------------------------------------------------------------

ARTICLE = "\n".join([
    "Home",
    "- About us",
    "Contact | Imprint | Privacy",
    "# Home",
    "## Results",
    "Advertisement",
    "The sample was cooled to 4 K before each measurement.",
    "| Sample | T (K) |",
    "| A | 4 |",
    "$E = mc^2$",
    "\\(x + y\\)",
    "Energy levels",
    "",
    "",
    "",
    "```",
    "Home",
    "Advertisement",
    "x = 1",
    "```",
    "Sponsored content",
    "Last line of the article.",
])

KEPT_ALWAYS = ["# Home", "## Results", "The sample was cooled to 4 K before each measurement.",
               "| Sample | T (K) |", "| A | 4 |", "$E = mc^2$", "\\(x + y\\)", "Last line of the article."]


def _fence(text: str) -> list[str]:
    lines = text.split("\n")
    start = lines.index("```")
    end = lines.index("```", start + 1)
    return lines[start:end + 1]


def test_strip_nav_lines_removes_menus_and_keeps_content():
    text, removed = clean_text(ARTICLE, (STRIP_NAV_LINES,))
    lines = text.split("\n")
    # "Home", "- About us", the menu bar, "Advertisement", "Energy levels", "Sponsored content":
    # every short unpunctuated line outside the fence
    for gone in ("- About us", "Contact | Imprint | Privacy", "Energy levels"):
        assert gone not in lines
    assert lines[0] == "# Home"             # the first bare "Home" is gone, the heading stays
    assert removed == 6
    for kept in KEPT_ALWAYS:
        assert kept in lines, kept
    assert _fence(text) == ["```", "Home", "Advertisement", "x = 1", "```"]
    assert "\n\n\n" not in text             # the run of three blank lines collapsed to one
    assert len(lines) == len(ARTICLE.split("\n")) - removed - 2


def test_strip_ad_lines_removes_only_ad_lines():
    text, removed = clean_text(ARTICLE, (STRIP_AD_LINES,))
    lines = text.split("\n")
    assert removed == 2                     # "Advertisement" and "Sponsored content", outside the fence
    assert "Sponsored content" not in lines
    assert lines.count("Advertisement") == 1 and "Advertisement" in _fence(text)
    # nav lines are untouched by the ad action alone
    for kept in ["Home", "- About us", "Contact | Imprint | Privacy", "Energy levels"] + KEPT_ALWAYS:
        assert kept in lines, kept
    assert lines[0] == "Home"


def test_both_actions_remove_the_union():
    _, nav = clean_text(ARTICLE, (STRIP_NAV_LINES,))
    text, both = clean_text(ARTICLE, (STRIP_NAV_LINES, STRIP_AD_LINES))
    assert both == nav == 6                 # the ad lines are short, so already nav-like
    for kept in KEPT_ALWAYS:
        assert kept in text.split("\n")


def test_no_actions_or_nothing_to_remove_returns_the_text_unchanged():
    assert clean_text(ARTICLE, ()) == (ARTICLE, 0)
    prose = "First sentence here.\n\n\n\nSecond sentence here."
    # nothing removed: the blank run is left alone too
    assert clean_text(prose, (STRIP_NAV_LINES, STRIP_AD_LINES)) == (prose, 0)


def test_blank_runs_left_behind_collapse_to_one():
    text, removed = clean_text("Intro sentence.\n\nHome\n\nAbout\n\nBody sentence.", (STRIP_NAV_LINES,))
    assert (text, removed) == ("Intro sentence.\n\nBody sentence.", 2)


def test_lines_are_kept_for_each_protection_reason():
    # every line would be nav-like by length alone
    protected = ["# Menu", "> Quote here", "| a | b |", "Cost $5", "\\(a\\)", "\\[b\\]", "See below:",
                 "Really?", "Stop!", "Done.", "(see refs)"]
    text = "\n".join(["Home"] + protected)
    out, removed = clean_text(text, (STRIP_NAV_LINES, STRIP_AD_LINES))
    assert removed == 1 and out.split("\n") == protected


def test_long_menu_items_or_long_lines_are_not_navigation():
    assert web_clean.is_nav_line("Contact | Imprint | Privacy")
    assert web_clean.is_nav_line("1. Publications")
    assert not web_clean.is_nav_line("Our research | Teaching and outreach programme | Privacy")
    assert not web_clean.is_nav_line("Spin waves in thin ferromagnetic films")
    assert not web_clean.is_nav_line("Room 101")          # digits: a label, not a link
    assert web_clean.is_ad_line("- Advertisement -") and web_clean.is_ad_line("Anzeige")
    assert not web_clean.is_ad_line("Advertisement revenue fell")


def test_unknown_action_raises():
    with pytest.raises(ValueError, match="unknown cleaning actions.*strip_everything"):
        clean_text("Home", ("strip_everything",))
    with pytest.raises(ValueError, match="strip_everything"):
        clean_text("Home", (STRIP_NAV_LINES, "strip_everything"))


def test_code_fences_are_kept_whole_including_blank_lines():
    code = ["```python", "def f():", "    return 1", "", "", "def g():", "    return 2", "```"]
    text, removed = clean_text("\n".join(["Home"] + code), (STRIP_NAV_LINES,))
    assert removed == 1
    assert text.split("\n") == code


def test_a_tilde_line_inside_a_backtick_fence_does_not_end_it():
    code = ["```", "~~~", "Home", "```"]
    text, removed = clean_text("\n".join(["Menu"] + code), (STRIP_NAV_LINES,))
    assert (text.split("\n"), removed) == (code, 1)
