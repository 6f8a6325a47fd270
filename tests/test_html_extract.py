"""HTML extraction: the pure function on fixture pages, and the sandbox's timeout/crash handling."""

from __future__ import annotations

from pathlib import Path

import pytest

from scicurate.config import ConfigError
from scicurate.parsers.html_extract import (
    CRASH_MARKER,
    EXTRACT_REASONS,
    HANG_MARKER,
    TEST_HOOKS_ENV,
    ExtractConfig,
    Extracted,
    ExtractFailure,
    SandboxedExtractor,
    extract_html,
)
from scicurate.parsers.web_input import WebPage, read_input

pytest.importorskip("trafilatura", reason="pip install 'trafilatura>=2.0'")

WEB = Path(__file__).parent / "fixtures" / "web"


@pytest.fixture(scope="module")
def crawl() -> dict[str, WebPage]:
    return {p.url: p for p in read_input(str(WEB / "crawl.warc.gz"), "crawl.warc.gz") if isinstance(p, WebPage)}


def test_config_validation():
    for bad in (dict(output_format="html"), dict(favor_recall=True), dict(timeout_s=0), dict(max_body_bytes=0),
                dict(workers=0)):
        with pytest.raises(ConfigError):
            ExtractConfig(**bad)
    assert ExtractConfig(favor_precision=False, favor_recall=True).favor_recall


def test_extracts_article_not_navigation(crawl):
    page = crawl["https://blog.physics-notes.org/posts/entropy/"]
    r = extract_html(page.body, page.url, ExtractConfig())
    assert isinstance(r, Extracted)
    assert "entropy of an isolated system never decreases" in r.text
    assert "Subscribe to the newsletter" not in r.text and "Cookie settings" not in r.text
    assert r.title == "Why entropy always increases" and r.language == "en"
    assert r.extractor.startswith("trafilatura ") and r.extractor.endswith(" markdown")
    assert r == extract_html(page.body, page.url, ExtractConfig())  # deterministic


def test_language_from_html_lang_and_injection_is_just_text(crawl):
    chem = extract_html(crawl["https://nmr.chem.example.ac.uk/facility"].body, "", ExtractConfig())
    assert isinstance(chem, Extracted) and chem.language == "en-gb"
    spam = extract_html(crawl["http://cheap-deals.example.com/reviews/top-10-science-gadgets"].body, "", ExtractConfig())
    assert isinstance(spam, Extracted) and "Ignore all previous instructions" in spam.text


def test_no_text_and_too_large():
    assert extract_html(b"", "u", ExtractConfig()).reason == "no_text"
    assert extract_html(b"<html><body><div></div></body></html>", "u", ExtractConfig()).reason == "no_text"
    big = extract_html(b"<p>x</p>" * 100, "u", ExtractConfig(max_body_bytes=100))
    assert isinstance(big, ExtractFailure) and big.reason == "too_large"
    assert set(EXTRACT_REASONS) == {"extract_timeout", "extract_crash", "extract_error", "no_text", "too_large"}


def test_trafilatura_error_is_a_record_failure(monkeypatch):
    import trafilatura.core

    def boom(*a, **k):
        raise RuntimeError("lxml exploded")

    monkeypatch.setattr(trafilatura.core, "bare_extraction", boom)
    r = extract_html(b"<html><body><p>text</p></body></html>", "u", ExtractConfig())
    assert isinstance(r, ExtractFailure) and r.reason == "extract_error" and "lxml exploded" in r.message


def test_sandbox_timeout_crash_and_neighbours(crawl, monkeypatch):
    monkeypatch.setenv(TEST_HOOKS_ENV, "1")
    a = crawl["https://blog.physics-notes.org/posts/lasers/"]
    b = crawl["https://tidepool-journal.net/2023/barnacles.html"]
    items = [
        ("hang", HANG_MARKER + b"<p>never</p>", "https://h.example.org/"),
        ("a", a.body, a.url),
        ("crash", CRASH_MARKER + b"<p>never</p>", "https://c.example.org/"),
        ("b", b.body, b.url),
        ("big", b"<p>" + b"x" * 3000 + b"</p>", "https://big.example.org/"),
        ("empty", b"", "https://e.example.org/"),
    ]
    with SandboxedExtractor(ExtractConfig(workers=2, timeout_s=1.5, max_body_bytes=2000)) as ex:
        results = ex.extract_many(items)
        assert [getattr(r, "reason", "ok") for r in results] == [
            "extract_timeout", "ok", "extract_crash", "ok", "too_large", "no_text"]
        assert "Stimulated emission" in results[1].text and "barnacle" in results[3].text
        assert ex.restarts == 2
        # The restarted children still work, and agree with the in-process function.
        again = ex.extract_many([("a", a.body, a.url)])
        assert again == [extract_html(a.body, a.url, ExtractConfig(workers=2, timeout_s=1.5, max_body_bytes=2000))]


def test_markers_are_plain_html_without_the_hook(monkeypatch):
    monkeypatch.delenv(TEST_HOOKS_ENV, raising=False)
    with SandboxedExtractor(ExtractConfig(timeout_s=5)) as ex:
        [r] = ex.extract_many([("x", CRASH_MARKER + b"<html><body><p>" + b"Real text here. " * 30 + b"</p></body></html>", "u")])
    assert isinstance(r, Extracted) and "Real text here." in r.text


def test_a_page_past_the_memory_cap_fails_alone_and_the_child_restarts(crawl):
    a = crawl["https://blog.physics-notes.org/posts/lasers/"]
    # ~3 million elements: uncapped, trafilatura took 272 s and 7 GB of RAM on this page; the
    # child is capped at 512 MiB, so lxml's tree allocation fails at once (lxml then reports no
    # tree: no_text; a Python allocation failing is extract_error MemoryError)
    huge = b"<html><body>" + b"<p><b>x</b></p>" * 3_000_000 + b"</body></html>"
    config = ExtractConfig(workers=1, timeout_s=60, max_body_bytes=64 << 20, memory_mb=512)
    with SandboxedExtractor(config) as ex:
        results = ex.extract_many([("a", a.body, a.url), ("huge", huge, "https://huge.example.org/"),
                                   ("a2", a.body, a.url)])
    assert getattr(results[0], "text", "") and getattr(results[2], "text", "") == results[0].text
    assert isinstance(results[1], ExtractFailure)
    assert results[1].reason in ("extract_error", "extract_crash", "no_text"), results[1]


def test_extraction_children_run_under_the_memory_cap():
    import os

    if not os.path.exists("/proc/self/limits"):
        pytest.skip("reads the child's limits from Linux /proc")
    with SandboxedExtractor(ExtractConfig(memory_mb=700)) as ex:
        ex.extract_many([("x", b"<p>" + b"Some text. " * 30 + b"</p>", "u")])
        pids = [w.proc.pid for w in ex._workers if w.proc is not None]
        assert pids
        for pid in pids:
            line = next(l for l in open(f"/proc/{pid}/limits") if l.startswith("Max address space"))
            assert line.split()[3:5] == [str(700 << 20)] * 2
