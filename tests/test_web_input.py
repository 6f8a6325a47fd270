"""Web input readers on the committed fixtures and on hostile inline inputs (tiers a and c)."""

from __future__ import annotations

import gzip
import io
import json
from collections import Counter
from pathlib import Path

import pytest

from scicurate.parsers.web_input import (
    INPUT_REASONS,
    InputFailure,
    WebPage,
    input_format,
    page_id,
    read_input,
    read_jsonl,
    read_parquet,
    read_warc,
    registered_domain,
    unwrap_wayback,
    url_host,
)

WEB = Path(__file__).parent / "fixtures" / "web"


def run(reader, data, path, **kw):
    seen: Counter[str] = Counter()
    out = list(reader(data, path, counts=lambda n: seen.update([n]), **kw))
    return out, seen


def pages(out):
    return [r for r in out if isinstance(r, WebPage)]


def failures(out):
    return [r for r in out if isinstance(r, InputFailure)]


# ---- domains and ids --------------------------------------------------------------------------

@pytest.mark.parametrize("url, domain", [
    ("https://blog.physics-notes.org/posts/x/", "physics-notes.org"),
    ("https://x.chem.example.ac.uk/a", "example.ac.uk"),
    ("https://a.b.example.co.uk", "example.co.uk"),
    ("HTTP://User:pw@WWW.Example.COM.:8080/p?q", "example.com"),
    ("http://192.0.2.7/index.html", "192.0.2.7"),
    ("http://[2001:DB8::1]:80/", "2001:db8::1"),
    ("https://co.uk/", "co.uk"),
    ("http://localhost:8000/", "localhost"),
    ("https://alice.github.io/post", "alice.github.io"),
    ("https://例子.中国/路径", "xn--fsqu00a.xn--fiqs8s"),
    ("example.org/no-scheme", "example.org"),
    ("http://web.archive.org/web/20200101000000id_/http://old.physics-notes.org/x", "physics-notes.org"),
    ("https://web.archive.org/web/2019/https://www.nature.com/articles/x", "nature.com"),
    ("https://web.archive.org/web/20190101000000/http:/collapsed.example.net/p", "example.net"),
    ("https://web.archive.org/about/", "archive.org"),
    ("mailto:someone@example.org", ""),
    ("/relative/path", ""),
    ("", ""),
    ("http://[broken/", ""),
])
def test_registered_domain(url, domain):
    assert registered_domain(url) == domain


def test_url_host_and_wayback_unwrapping():
    assert url_host("https://Blog.Physics-Notes.ORG.:443/") == "blog.physics-notes.org"
    assert url_host("http://web.archive.org/web/2020id_/http://a.example.org/") == "web.archive.org"
    assert unwrap_wayback("http://web.archive.org/web/20200101000000id_/http://a.example.org/x?y=1") == \
        "http://a.example.org/x?y=1"
    assert unwrap_wayback("https://example.org/web/2020/x") == "https://example.org/web/2020/x"


def test_page_id_is_a_stable_content_hash():
    a = page_id("https://e.org/", b"<p>x</p>")
    assert a == page_id("https://e.org/", b"<p>x</p>")
    assert len(a) == 32 and int(a, 16) >= 0
    assert a != page_id("https://e.org/", b"<p>y</p>") and a != page_id("https://e.org/2", b"<p>x</p>")
    # The documented formula: a change would silently change every id downstream.
    import hashlib
    inner = hashlib.sha256(b"<p>x</p>").hexdigest()
    assert a == hashlib.sha256(f"https://e.org/\n{inner}".encode()).hexdigest()[:32]


def test_input_format():
    assert [input_format(p) for p in ("a.warc", "a.WARC.GZ", "x/a.arc.gz", "a.jsonl", "a.jsonl.gz", "a.json.gz",
                                      "a.ndjson", "a.parquet")] == ["warc"] * 3 + ["jsonl"] * 4 + ["parquet"]
    with pytest.raises(ValueError):
        input_format("a.html")


# ---- fixtures ---------------------------------------------------------------------------------

def test_crawl_fixture():
    out, seen = run(read_input, str(WEB / "crawl.warc.gz"), "crawl.warc.gz")
    assert not failures(out)
    got = pages(out)
    assert len(got) == 21
    assert seen == Counter({"warc_warcinfo_skipped": 1, "warc_request_skipped": 1})
    assert Counter(p.domain for p in got) == Counter({"physics-notes.org": 8, "example.ac.uk": 6,
                                                      "example.com": 5, "tidepool-journal.net": 2})
    pdf = [p for p in got if p.content_type == "application/pdf"]
    assert len(pdf) == 1 and pdf[0].body == b"" and pdf[0].body_bytes > 100
    missing = [p for p in got if p.http_status != 200]
    assert [(p.url, p.http_status) for p in missing] == [("https://blog.physics-notes.org/posts/missing/", 404)]
    html = [p for p in got if p.body]
    assert len(html) == 20 and all(p.body.startswith(b"<!DOCTYPE html>") and p.body_bytes == len(p.body) for p in html)
    assert all(p.fetched.startswith("2024-03-01T12:") for p in got)
    dup = [p for p in got if p.url in ("https://blog.physics-notes.org/posts/entropy/", "https://blog.physics-notes.org/?p=101")]
    assert dup[0].body == dup[1].body and dup[0].page_id != dup[1].page_id
    assert any(b"Ignore all previous instructions" in p.body for p in got)
    assert len({p.page_id for p in got}) == 21 and len({p.source for p in got}) == 21


def test_crawl_sources_are_record_offsets():
    from warcio.archiveiterator import ArchiveIterator

    got = pages(run(read_input, str(WEB / "crawl.warc.gz"), "crawl.warc.gz")[0])
    data = (WEB / "crawl.warc.gz").read_bytes()
    for p in (got[0], got[11], got[-1]):
        offset = int(p.source.rsplit("#", 1)[1])
        record = next(iter(ArchiveIterator(io.BytesIO(data[offset:]))))
        assert record.rec_headers.get_header("WARC-Target-URI") == p.url


def test_rerun_gives_identical_records():
    first = list(read_input(str(WEB / "crawl.warc.gz"), "crawl.warc.gz"))
    assert first == list(read_input(str(WEB / "crawl.warc.gz"), "crawl.warc.gz"))


def test_truncated_fixture_keeps_records_before_the_cut():
    out, seen = run(read_input, str(WEB / "truncated.warc.gz"), "truncated.warc.gz")
    assert [p.url.rsplit("/", 2)[1] for p in pages(out)] == ["entropy", "quantum-tunnelling", "dark-matter"]
    [bad] = failures(out)
    assert out[-1] is bad and bad.reason == "corrupt_input"
    assert bad.url.endswith("/superconductors/")
    assert seen == Counter({"warc_warcinfo_skipped": 1})


def test_jsonl_fixture():
    with open(WEB / "pages.jsonl", "rb") as fh:
        out, _ = run(read_jsonl, fh, "pages.jsonl")
    assert [type(r).__name__ for r in out] == ["WebPage", "WebPage", "InputFailure", "InputFailure", "WebPage", "WebPage"]
    assert [r.reason for r in failures(out)] == ["bad_record", "bad_record"]
    assert [r.source for r in failures(out)] == ["pages.jsonl#3", "pages.jsonl#4"]
    lasers, wayback, ip, feed = pages(out)
    assert lasers.fetched == "2024-02-01T00:00:00Z" and lasers.content_type == "text/html" and lasers.http_status == 200
    assert wayback.domain == "physics-notes.org"
    assert ip.domain == "192.0.2.7" and ip.http_status == 200
    assert feed.body == b"" and feed.body_bytes == len(b"<rss></rss>")


# ---- hostile input ------------------------------------------------------------------------------

def _warc(records: list[tuple[str, bytes]], *, gz: bool = True, ctype: str = "text/html") -> bytes:
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    buf = io.BytesIO()
    writer = WARCWriter(buf, gzip=gz)
    for url, body in records:
        headers = StatusAndHeaders("200 OK", [("Content-Type", ctype)], protocol="HTTP/1.1")
        writer.write_record(writer.create_warc_record(url, "response", payload=io.BytesIO(body), http_headers=headers))
    return buf.getvalue()


@pytest.mark.parametrize("reader, path", [(read_warc, "x.warc.gz"), (read_jsonl, "x.jsonl")])
def test_empty_file_yields_nothing_and_is_counted(reader, path):
    out, seen = run(reader, io.BytesIO(b""), path)
    assert out == [] and sum(seen.values()) == 1 and next(iter(seen)).endswith("_empty_file")


def test_unreadable_path():
    out = list(read_input("/nonexistent/dir/a.warc.gz", "a.warc.gz"))
    assert [(r.reason, r.source) for r in out] == [("unreadable", "a.warc.gz")]


def test_warc_content_length_too_long_is_corrupt():
    good = _warc([("https://a.example.org/1", b"<p>one</p>")], gz=False)
    liar = _warc([("https://a.example.org/2", b"<p>two</p>")], gz=False)
    liar = liar.replace(b"Content-Length: ", b"Content-Length: 9", 1)  # WARC header: 10x longer
    out, _ = run(read_warc, io.BytesIO(good + liar), "x.warc")
    assert [type(r).__name__ for r in out] == ["WebPage", "InputFailure"]
    assert out[1].reason == "corrupt_input" and out[1].url == "https://a.example.org/2"


def test_warc_content_length_too_short_resyncs():
    recs = _warc([("https://a.example.org/1", b"<p>one</p>"), ("https://a.example.org/2", b"<p>" + b"x" * 500 + b"</p>"),
                  ("https://a.example.org/3", b"<p>three</p>")], gz=False)
    second = recs.index(b"WARC/1", 10)
    head, tail = recs[:second], recs[second:]
    import re as _re
    tail = _re.sub(rb"Content-Length: \d+", b"Content-Length: 120", tail, count=1)
    out, _ = run(read_warc, io.BytesIO(head + tail), "x.warc")
    # warcio resynchronises on the next record header: the lying record keeps its cut payload
    # (extraction sees a short page), every other record is intact.
    assert [type(r).__name__ for r in out] == ["WebPage"] * 3
    assert out[0].body == b"<p>one</p>" and out[2].body == b"<p>three</p>"
    assert len(out[1].body) < 500


def test_garbage_file_is_corrupt():
    out, _ = run(read_warc, io.BytesIO(b"this is not a WARC file\n" * 10), "x.warc")
    assert [r.reason for r in out] == ["corrupt_input"]


def test_warc_too_large_keeps_going():
    data = _warc([("https://a.example.org/big", b"<p>" + b"x" * 5000 + b"</p>"), ("https://a.example.org/ok", b"<p>ok</p>")])
    out, _ = run(read_warc, io.BytesIO(data), "x.warc.gz", max_body_bytes=1000)
    assert [(type(r).__name__, r.url) for r in out] == [("InputFailure", "https://a.example.org/big"),
                                                          ("WebPage", "https://a.example.org/ok")]
    assert out[0].reason == "too_large"


def test_warc_non_html_is_kept_without_body_even_when_large():
    data = _warc([("https://a.example.org/f.pdf", b"%PDF" + b"x" * 5000)], ctype="application/pdf")
    [p] = run(read_warc, io.BytesIO(data), "x.warc.gz", max_body_bytes=1000)[0]
    assert p.body == b"" and p.body_bytes == 5004 and p.page_id == page_id(p.url, b"")


def test_jsonl_hostile_lines():
    lines = [
        b'[1, 2, 3]',
        b'42',
        b'{"url": 5, "html": "<p>x</p>"}',
        b'{"url": "https://a.example.org/s", "html": "<p>x</p>", "status": "teapot"}',
        b'',
        b'{"url": "https://a.example.org/bad-utf8", "html": "<p>caf\xe9 \xff</p>"}',
        b'{"url": "https://a.example.org/huge", "html": "' + b"y" * 5000 + b'"}',
        b'{"url": "https://a.example.org/last", "html": "<p>last</p>", "status": 404}',
    ]
    out, seen = run(read_jsonl, io.BytesIO(b"\n".join(lines)), "x.jsonl", max_body_bytes=1000)
    kinds = [(r.source, r.reason if isinstance(r, InputFailure) else "page") for r in out]
    assert kinds == [("x.jsonl#1", "bad_record"), ("x.jsonl#2", "bad_record"), ("x.jsonl#3", "bad_record"),
                     ("x.jsonl#4", "bad_record"), ("x.jsonl#6", "page"), ("x.jsonl#7", "too_large"),
                     ("x.jsonl#8", "page")]
    assert "\ufffd" in out[4].body.decode("utf-8") and seen["jsonl_invalid_utf8_lines"] == 1
    assert out[-1].http_status == 404


def test_jsonl_enormous_line_is_skipped_without_holding_it():
    from scicurate.parsers import web_input

    class Counting(io.BytesIO):
        biggest = 0

        def read(self, n=-1):
            data = super().read(n)
            Counting.biggest = max(Counting.biggest, len(data))
            return data

    huge = b'{"url": "https://a.example.org/", "html": "' + b"z" * (3 << 20) + b'"}'
    ok = json.dumps({"url": "https://a.example.org/ok", "html": "<p>ok</p>"}).encode()
    out, _ = run(read_jsonl, Counting(huge + b"\n" + ok + b"\n"), "x.jsonl", max_body_bytes=1000)
    assert [getattr(r, "reason", "page") for r in out] == ["too_large", "page"]
    assert Counting.biggest <= web_input._CHUNK
    lines = list(web_input._lines(io.BytesIO(huge + b"\nshort\n" + huge), cap=1 << 20))
    assert lines == [(1, None), (2, b"short"), (3, None)]


def test_jsonl_gzip_and_truncated_gzip():
    import hashlib
    noise = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(20000)]  # barely compressible
    rows = [json.dumps({"url": f"https://a.example.org/{i}", "html": "<p>" + " ".join(noise[i * 100:(i + 1) * 100]) + "</p>"})
            for i in range(200)]
    data = gzip.compress(("\n".join(rows) + "\n").encode(), mtime=0)
    out, _ = run(read_jsonl, io.BytesIO(data), "x.json.gz")
    assert len(pages(out)) == 200 and not failures(out)
    out, _ = run(read_jsonl, io.BytesIO(data[: len(data) // 2]), "x.json.gz")
    assert 50 <= len(pages(out)) < 100 and [r.reason for r in failures(out)] == ["corrupt_input"] and out[-1].reason == "corrupt_input"


def test_input_reasons_are_closed():
    assert INPUT_REASONS == ("unreadable", "corrupt_input", "bad_record", "too_large")
    with pytest.raises(ValueError):
        InputFailure("s", "", "nope", "")


# ---- Parquet ----------------------------------------------------------------------------------

def test_parquet_rows(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    table = pa.table({
        "url": ["https://www.chem.example.ac.uk/a", None, "https://b.example.org/", "https://c.example.org/"],
        "html": [b"<p>bytes html</p>", b"<p>no url</p>", None, b"x" * 50],
        "status": [200, 200, 200, 500],
    })
    path = tmp_path / "rows.parquet"
    pq.write_table(table, path, row_group_size=2)
    out, _ = run(read_parquet, str(path), "rows.parquet", max_body_bytes=20)
    assert [(r.source, getattr(r, "reason", "page")) for r in out] == [
        ("rows.parquet#0", "page"), ("rows.parquet#1", "bad_record"), ("rows.parquet#2", "bad_record"),
        ("rows.parquet#3", "too_large")]
    assert out[0].domain == "example.ac.uk" and out[0].body == b"<p>bytes html</p>"
    pq.write_table(pa.table({"url": ["https://a.org/"], "text": ["t"]}), tmp_path / "nohtml.parquet")
    assert [r.reason for r in read_input(str(tmp_path / "nohtml.parquet"), "nohtml.parquet")] == ["bad_record"]
    (tmp_path / "bad.parquet").write_bytes(b"not parquet at all")
    assert [r.reason for r in read_input(str(tmp_path / "bad.parquet"), "bad.parquet")] == ["corrupt_input"]
    (tmp_path / "empty.parquet").write_bytes(b"")
    assert list(read_input(str(tmp_path / "empty.parquet"), "empty.parquet")) == []
