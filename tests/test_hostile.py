"""Hostile content: no stage fetches a URL a document names, and no input can make a run write
outside its output folder. (Prompt injection in web triage: test_pipeline_web.py and
test_triage.py; malformed bytes: test_fuzz.py; parser crashes, hangs and bombs: test_sandbox.py.)"""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from conftest import FIXTURE_PDFS

pytestmark = pytest.mark.slow


@pytest.fixture()
def tripwire():
    """An HTTP server on loopback recording every request (the fuzzer's canary)."""
    from scicurate.fuzz import Canary

    with Canary() as wire:
        # the wire works: a fetch is seen (so an empty list below means nothing fetched)
        with urllib.request.urlopen(f"{wire.url}self-check", timeout=5) as reply:
            assert reply.status == 204
        assert wire.hits == ["/fuzz-canary/self-check"]
        wire.hits.clear()
        yield wire


def _html(base: str, n: int) -> str:
    prose = " ".join(f"Sentence {i} of a page about the thermal conductivity of copper at low temperature."
                     for i in range(40))
    return f"""<!DOCTYPE html [<!ENTITY xxe SYSTEM "{base}/xxe-{n}">]>
<html><head><meta charset="utf-8"><title>Copper {n}</title>
<base href="{base}/base-{n}/">
<meta http-equiv="refresh" content="0; url={base}/refresh-{n}">
<link rel="stylesheet" href="{base}/style-{n}.css"><link rel="preload" href="{base}/preload-{n}">
<script src="{base}/script-{n}.js"></script>
<style>@import url("{base}/import-{n}.css"); body {{ background: url({base}/bg-{n}.png) }}</style>
</head><body><article><h1>Copper {n}</h1>
<p>{prose} &xxe;</p>
<p><img src="{base}/img-{n}.png" srcset="{base}/img-{n}-2x.png 2x"> See <a href="{base}/link-{n}">the data</a>
and <a href="file:///etc/passwd">this</a>.</p>
<iframe src="{base}/iframe-{n}"></iframe><object data="{base}/object-{n}"></object>
<video src="{base}/video-{n}.mp4" poster="{base}/poster-{n}.png"></video>
<p>Formula: $\\href{{{base}/href-{n}}}{{x}}$ and $\\includegraphics{{{base}/graphic-{n}.png}}$ and
$$\\url{{{base}/url-{n}}}$$</p>
</article></body></html>"""


def _pdf_with_links(path: Path, base: str) -> None:
    """A real PDF page naming URLs every way a PDF can: a link annotation, an open action, a
    remote go-to, an image XObject whose data is an external URL stream, and the text itself."""
    import pikepdf

    pdf = pikepdf.open(FIXTURE_PDFS / "paper_a.pdf")
    page = pdf.pages[0]
    uri = pikepdf.Dictionary(S=pikepdf.Name.URI, URI=pikepdf.String(f"{base}/pdf-uri"))
    annot = pikepdf.Dictionary(Type=pikepdf.Name.Annot, Subtype=pikepdf.Name.Link,
                               Rect=pikepdf.Array([72, 72, 300, 100]), A=uri)
    page.obj["/Annots"] = pdf.make_indirect(pikepdf.Array([pdf.make_indirect(annot)]))
    pdf.Root["/OpenAction"] = pikepdf.Dictionary(S=pikepdf.Name.URI, URI=pikepdf.String(f"{base}/pdf-open"))
    remote = pikepdf.Dictionary(S=pikepdf.Name.GoToR, F=pikepdf.Dictionary(
        FS=pikepdf.Name.URL, F=pikepdf.String(f"{base}/pdf-remote.pdf")), D=pikepdf.Array([0, pikepdf.Name.Fit]))
    pdf.Root["/Names"] = pikepdf.Dictionary()
    page.obj["/AA"] = pikepdf.Dictionary(O=remote)
    image = pikepdf.Stream(pdf, b"")
    image.stream_dict.update(pikepdf.Dictionary(
        Type=pikepdf.Name.XObject, Subtype=pikepdf.Name.Image, Width=8, Height=8,
        ColorSpace=pikepdf.Name.DeviceGray, BitsPerComponent=8,
        F=pikepdf.Dictionary(FS=pikepdf.Name.URL, F=pikepdf.String(f"{base}/pdf-image"))))
    resources = page.obj.Resources
    if "/XObject" not in resources:
        resources["/XObject"] = pikepdf.Dictionary()
    resources.XObject["/ImRemote"] = image
    page.contents_add(pikepdf.Stream(pdf, f"q 50 0 0 50 72 600 cm /ImRemote Do Q BT /F1 10 Tf 72 60 Td "
                                          f"({base}/pdf-text) Tj ET".encode()), prepend=False)
    pdf.save(path)


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_no_stage_fetches_a_url_a_document_names(tmp_path, tripwire):
    from scicurate import cli

    base = tripwire.url.rstrip("/")
    web_in = tmp_path / "crawl.jsonl"
    with open(web_in, "w") as fh:
        for n in range(3):
            fh.write(json.dumps({"url": f"https://copper-{n}.example.org/page", "html": _html(base, n)}) + "\n")
        fh.write(json.dumps({"url": f"{base}/the-page-url-itself", "html": _html(base, 9)}) + "\n")
    pdfs = tmp_path / "pdfs"
    pdfs.mkdir()
    _pdf_with_links(pdfs / "links.pdf", base)

    assert cli.main(["run", "web", "--input", str(web_in), "--output", str(tmp_path / "web"), "--no-agent"]) == 0
    assert cli.main(["run", "pdf", "--input", str(pdfs / "*.pdf"), "--output", str(tmp_path / "pdf"),
                     "--tokenizer", "words"]) == 0

    assert tripwire.hits == []
    web = json.loads((tmp_path / "web" / "summary.json").read_text())
    pdf = json.loads((tmp_path / "pdf" / "summary.json").read_text())
    assert web["inputs"] == 4 and web["accounted"] and pdf["documents"] == 1 and pdf["accounted"]
    # the pages were really read: their text (URLs in it included) reached the outputs
    texts = [r["text"] for r in pq.read_table(tmp_path / "web" / "pages").to_pylist()] + \
        [r["text"] for r in pq.read_table(tmp_path / "web" / "filtered").to_pylist()]
    assert any("thermal conductivity of copper" in t for t in texts)
    pdf_text = pq.read_table(tmp_path / "pdf" / "documents").to_pylist()[0]["text"]
    assert "pdf-text" in pdf_text


def test_no_input_makes_a_run_write_outside_its_output(tmp_path, monkeypatch):
    from scicurate import cli

    pdfs = tmp_path / "in"
    pdfs.mkdir()
    hostile_names = ["%2e%2e%2fetc.pdf", "-rf .pdf", "$(touch pwned).pdf", "a\nb.pdf", "ü .. ; x.pdf"]
    for name, fixture in zip(hostile_names, ["paper_a.pdf", "paper_b.pdf", "table.pdf", "corrupt.pdf", "empty.pdf"]):
        (pdfs / name).write_bytes((FIXTURE_PDFS / fixture).read_bytes())
    web_in = tmp_path / "in" / "crawl.jsonl"
    urls = ["http://a.org/../../../../tmp/escaped", "file:///etc/passwd", "javascript:alert(1)",
            "http://../..//", "https://b.org/%2e%2e/%2e%2e/x", "https://c.org/" + "../" * 200]
    with open(web_in, "w") as fh:
        for url in urls:
            fh.write(json.dumps({"url": url, "html": _html("http://127.0.0.1:9", 0)}) + "\n")
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    before = _tree(tmp_path)

    assert cli.main(["run", "pdf", "--input", str(pdfs / "*.pdf"), "--output", str(tmp_path / "out" / "pdf"),
                     "--tokenizer", "words"]) == 0
    assert cli.main(["run", "web", "--input", str(web_in), "--output", str(tmp_path / "out" / "web"),
                     "--no-agent"]) == 0

    created = _tree(tmp_path) - before
    assert created and all(p.startswith("out") for p in created), sorted(p for p in created if not p.startswith("out"))
    assert not os.listdir(work) and not Path("/tmp/escaped").exists()
    pdf = json.loads((tmp_path / "out" / "pdf" / "summary.json").read_text())
    web = json.loads((tmp_path / "out" / "web" / "summary.json").read_text())
    assert pdf["inputs"] == 5 and pdf["accounted"] and web["inputs"] == len(urls) and web["accounted"]
    sources = {r["source"] for d in ("documents", "dead_letter")
               for r in pq.read_table(tmp_path / "out" / "pdf" / d).to_pylist()}
    assert {Path(s).name for s in sources} == set(hostile_names)
