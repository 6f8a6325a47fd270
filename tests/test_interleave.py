"""The interleaved image-text core (scicurate/interleave.py): pure placement rules on inline
strings and hand-made MinerU pages, then the real child process (MinerU flash, PDFium, the
image filters) on small PDFs generated here."""

from __future__ import annotations

import hashlib
import io
import zlib
from datetime import datetime, timezone

import pytest

from scicurate.classifiers import image_filters as imf
from scicurate.config import ConfigError
from scicurate.interleave import (
    BBOX_OUTSIDE_PAGE,
    CAPTION_FROM_BLOCK,
    EMPTY_BBOX,
    NO_IMAGE_BODY,
    PLACED_AFTER_BLOCK,
    PLACED_AFTER_CAPTION,
    PLACED_PAGE_END,
    PLACED_PAGE_START,
    TEST_HOOK_ENV,
    FigureImage,
    InterleaveConfig,
    InterleavedDoc,
    InterleaveFailure,
    crop_box,
    figure_specs,
    interleave_document,
    judge_crop,
    normalise,
    page_segments,
    paragraph_spans,
    place_figures,
)

from conftest import FIXTURE_PDFS

INTRO = ("Page one introduction. We measured the relaxation of thin films and report the results "
         "below. The first figure shows the spectrum of the samples over twelve runs.")
CAPTION_1 = "Figure 1: Spectrum of the twelve runs, bars coloured by run."
MIDDLE = ("The middle paragraph discusses the spectrum. Every run stays within the error band, and "
          "the panel below was left empty by the plotting script.")
CAPTION_2 = "Figure 2: An empty panel."
CAPTION_3 = "Figure 3: A narrow scale bar."
CLOSING = "Closing paragraph of the first page, after the scale bar."
PAGE_0 = "\n\n".join([INTRO, CAPTION_1, MIDDLE, CAPTION_2, CAPTION_3, CLOSING])
PAGE_1 = "Second page text.\n\nFigure 4: Another spectrum, drawn in red."


# ---- generated PDFs ----------------------------------------------------------------------------

def _chart(seed: int):
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (480, 320), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle((40, 20, 460, 290), outline="black", width=2)
    for i in range(12):
        x = 60 + i * 32
        top = 290 - ((i + seed) * 37) % 230 - 20
        draw.rectangle((x, top, x + 20, 290), fill=(30 + i * 15, 80 + seed * 60, 200 - i * 10), outline="black")
    for y in range(40, 290, 25):
        draw.line((40, y, 46, y), fill="black", width=2)
    return image


def _grid():
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (64, 64), "white")
    draw = ImageDraw.Draw(image)
    for k in range(0, 64, 8):
        draw.line((k, 0, k, 63), fill="black")
        draw.line((0, k, 63, k), fill="black")
    return image


def _figures_pdf() -> bytes:
    """Page 0: a paragraph, a chart (kept), its caption, a paragraph, a blank white image
    (blank) with its caption as a separate text block, an 8 x 30 mm strip (tiny at 144 dpi)
    and a closing paragraph. Page 1: another chart with a caption."""
    from fpdf import FPDF
    from PIL import Image

    pdf = FPDF(format="A4", unit="mm")
    pdf.set_creation_date(datetime(2024, 1, 1, tzinfo=timezone.utc))
    pdf.set_auto_page_break(False)
    pdf.add_page()
    pdf.set_font("Helvetica", size=11)
    pdf.set_xy(25, 30)
    pdf.multi_cell(160, 5.5, INTRO)
    pdf.image(_chart(0), x=45, y=52, w=120, h=80)
    pdf.set_xy(25, 135)
    pdf.multi_cell(160, 5, CAPTION_1)
    pdf.set_xy(25, 148)
    pdf.multi_cell(160, 5.5, MIDDLE)
    pdf.image(Image.new("RGB", (300, 200), "white"), x=60, y=166, w=60, h=40)
    pdf.set_xy(25, 208)
    pdf.multi_cell(160, 5, CAPTION_2)
    pdf.image(_grid(), x=30, y=220, w=8, h=30)
    pdf.set_xy(25, 252)
    pdf.multi_cell(160, 5, CAPTION_3)
    pdf.set_xy(25, 264)
    pdf.multi_cell(160, 5.5, CLOSING)
    pdf.add_page()
    pdf.set_xy(25, 30)
    pdf.multi_cell(160, 5.5, "Second page text.")
    pdf.image(_chart(1), x=45, y=45, w=120, h=80)
    pdf.set_xy(25, 128)
    pdf.multi_cell(160, 5, "Figure 4: Another spectrum, drawn in red.")
    return bytes(pdf.output())


def _with_bomb_on_page_1(data: bytes) -> bytes:
    """The same PDF with a second content stream on page 1 that inflates to 257 MiB of
    zeros (past parsers.split's 256 MiB cap) from a few hundred KB."""
    import pikepdf

    packer = zlib.compressobj(9)
    chunk = bytes(1 << 20)
    raw = b"".join(packer.compress(chunk) for _ in range(257)) + packer.flush()
    with pikepdf.open(io.BytesIO(data)) as pdf:
        page = pdf.pages[1]
        bomb = pikepdf.Stream(pdf, b"")
        bomb.write(raw, filter=pikepdf.Name.FlateDecode)
        page.obj.Contents = pikepdf.Array([page.obj.Contents, bomb])
        out = io.BytesIO()
        pdf.save(out, static_id=True)
    return out.getvalue()


@pytest.fixture(scope="module")
def pdfs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("interleave")
    data = _figures_pdf()
    (folder / "figures.pdf").write_bytes(data)
    (folder / "bomb.pdf").write_bytes(_with_bomb_on_page_1(data))
    return folder


@pytest.fixture(scope="module")
def first_page_only(pdfs):
    """Page 1 removed by the run: only page 0's text is given."""
    return interleave_document(str(pdfs / "figures.pdf"), {0: PAGE_0}, base_dir=str(pdfs))


# ---- pure: paragraphs, normalising, placement ---------------------------------------------------

def test_paragraph_spans_keep_fences_whole_and_slice_the_text():
    text = "First para\nstill first.\n\n```\ncode\n\nmore code\n```\n\n\n  \nLast."
    spans = paragraph_spans(text)
    assert [text[s:e] for s, e in spans] == ["First para\nstill first.", "```\ncode\n\nmore code\n```", "Last."]


def test_normalise_ignores_layout_tags_and_case():
    assert normalise("FIG. 1:  Cross section ∆σ<sup>C</sup>\nof e+12<sub>C</sub>") == "fig1crosssectionσcofe12c"
    assert normalise("ﬁgure") == "figure"          # ligature folded by NFKC


def test_figure_goes_after_the_paragraph_holding_its_caption():
    text = "Intro paragraph here.\n\nAxis labels 0 10 20 FIG. 1: Cross sections of carbon.\n\nAfter text."
    blocks = [("text", "Intro paragraph here."), ("image", "FIG. 1: Cross sections of carbon.")]
    assert place_figures(text, blocks, [(1, "FIG. 1: Cross sections\nof carbon.")]) == [(1, PLACED_AFTER_CAPTION)]


def test_a_long_caption_split_over_paragraphs_is_placed_after_its_end():
    caption = "Figure 2: " + " ".join(f"word{i}" for i in range(40))
    head, tail = caption[:120], caption[120:]
    text = f"Before.\n\n{head}\n\n{tail}\n\nAfter."
    assert place_figures(text, [], [(0, caption)]) == [(2, PLACED_AFTER_CAPTION)]


def test_without_a_caption_match_the_previous_block_places_it():
    text = "Section heading\n\nA first paragraph that the run kept as it was.\n\nA second paragraph."
    blocks = [("header", "Running head"), ("text", "A first paragraph that the run kept as it was."),
              ("image", ""), ("text", "A second paragraph.")]
    assert place_figures(text, blocks, [(2, "")]) == [(1, PLACED_AFTER_BLOCK)]
    # the block before it was rewritten (not in the text): the one before that is used
    blocks[1] = ("text", "Completely different words the run never printed.")
    blocks.insert(1, ("paragraph_title", "Section heading"))
    assert place_figures(text, blocks, [(3, "")]) == [(0, PLACED_AFTER_BLOCK)]


def test_a_figure_right_after_another_follows_its_caption():
    text = "Intro paragraph of the page.\n\nFIG. 1: The first figure of the page.\n\nMore text."
    blocks = [("text", "Intro paragraph of the page."), ("image", "FIG. 1: The first figure of the page."),
              ("image", "")]
    assert place_figures(text, blocks, [(1, "FIG. 1: The first figure of the page."), (2, "")]) == [
        (1, PLACED_AFTER_CAPTION), (1, PLACED_AFTER_BLOCK)]


def test_a_figure_opening_the_page_goes_first_and_an_unplaceable_one_last():
    text = "Only paragraph.\n\nSecond paragraph."
    assert place_figures(text, [("header", "Head"), ("image", "")], [(1, "")]) == [(-1, PLACED_PAGE_START)]
    blocks = [("text", "Rewritten beyond recognition by a model."), ("image", "")]
    assert place_figures(text, blocks, [(1, "Figure 9: not in the text at all")]) == [(1, PLACED_PAGE_END)]


def test_a_short_caption_is_not_matched_on_its_own():
    text = "The opening paragraph of the page.\n\nAs Fig. 1 shows, the yield grows."
    blocks = [("text", "The opening paragraph of the page."), ("image", ""),
              ("text", "As Fig. 1 shows, the yield grows.")]
    assert place_figures(text, blocks, [(1, "Fig. 1")]) == [(0, PLACED_AFTER_BLOCK)]
    assert place_figures(text, blocks, [(1, "Fig. 1: The yield")]) == [(0, PLACED_AFTER_BLOCK)]
    assert place_figures(text, blocks, [(1, "As Fig. 1 shows")]) == [(1, PLACED_AFTER_CAPTION)]


def test_page_segments_cut_the_text_at_the_anchors_only():
    text = "A.\n\nB.\n\nC."
    assert page_segments(text, [0]) == [("text", "A."), ("figure", 0), ("text", "B.\n\nC.")]
    assert page_segments(text, [2, -1, 0]) == [("figure", 1), ("text", "A."), ("figure", 2),
                                               ("text", "B.\n\nC."), ("figure", 0)]
    assert page_segments("", [-1]) == [("figure", 0)]
    assert page_segments(text, []) == [("text", text)]


# ---- pure: figure blocks, crop boxes, verdicts --------------------------------------------------

def _text_block(text, bbox=(0.1, 0.1, 0.9, 0.12)):
    return {"type": "text", "bbox": list(bbox), "content": [{"type": "text", "content": text}]}


def test_figure_specs_read_captions_bodies_and_adjacent_caption_blocks():
    page = {"blocks": [
        _text_block("Table 2: Yields per run."),
        {"type": "table", "bbox": [0.1, 0.13, 0.9, 0.3],
         "content": [{"type": "table_body", "bbox": [0.1, 0.13, 0.9, 0.3], "content": "<table></table>"}]},
        {"type": "image", "bbox": [0.2, 0.3, 0.8, 0.6], "content": [
            {"type": "image_body", "bbox": [0.2, 0.3, 0.5, 0.5], "content": ""},
            {"type": "image_body", "bbox": [0.5, 0.35, 0.8, 0.6], "content": ""},
            {"type": "image_caption", "bbox": [0.1, 0.61, 0.9, 0.63],
             "content": [{"type": "text", "content": "FIG. 1: Cross section of "},
                         {"type": "text", "content": "C", "styles": ["subscript"]}]}]},
        {"type": "image", "bbox": [0.2, 0.7, 0.8, 0.8],
         "content": [{"type": "image_body", "bbox": [0.2, 0.7, 0.8, 0.8], "content": ""}]},
        _text_block("Figure 2: A second figure, captioned by the next block."),
        {"type": "image", "bbox": [0.2, 0.9, 0.8, 0.95],
         "content": [{"type": "image_caption", "content": [{"type": "text", "content": "Figure 3: no body"}]}]},
    ]}
    specs = figure_specs(page)
    assert [(s.block, s.kind) for s in specs] == [(1, "table"), (2, "image"), (3, "image"), (5, "image")]
    assert specs[0].caption == "Table 2: Yields per run." and specs[0].flags == (CAPTION_FROM_BLOCK,)
    assert specs[1].caption == "FIG. 1: Cross section of <sub>C</sub>" and specs[1].flags == ()
    assert specs[1].body == (0.2, 0.3, 0.8, 0.6)                  # the union of both bodies
    assert specs[2].caption.startswith("Figure 2:") and specs[2].flags == (CAPTION_FROM_BLOCK,)
    assert specs[3].body is None and specs[3].caption == "Figure 3: no body"


def test_crop_box_clips_to_the_page_and_names_missing_images():
    assert crop_box((0.1, 0.5, 0.6, 1.2), 600.0, 800.0) == ((60.0, 400.0, 360.0, 800.0), "")
    assert crop_box(None, 600.0, 800.0) == (None, NO_IMAGE_BODY)
    assert crop_box((0.3, 0.3, 0.3, 0.6), 600.0, 800.0) == (None, EMPTY_BBOX)
    assert crop_box((1.1, 0.1, 1.4, 0.2), 600.0, 800.0) == (None, BBOX_OUTSIDE_PAGE)


def test_a_caption_without_an_image_is_missing_image():
    verdict = judge_crop(None, "Figure 3: no body", EMPTY_BBOX, imf.DEFAULT)
    assert verdict["keep"] is False and verdict["reasons"] == [imf.MISSING_IMAGE]
    assert verdict["detail"] == EMPTY_BBOX and verdict["measures"] is None


def test_judge_crop_applies_the_image_filters():
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (300, 200), "white").save(buf, format="PNG")
    blank = judge_crop(buf.getvalue(), "", "", imf.DEFAULT)
    assert blank["reasons"] == [imf.BLANK] and blank["flags"] == [imf.NO_CAPTION]
    assert blank["measures"]["width"] == 300
    broken = judge_crop(b"\x89PNG\r\n\x1a\nnot really", "Figure 1: x", "", imf.DEFAULT)
    assert broken["keep"] is False and broken["reasons"][0] in imf.FAILURE_REASONS


def test_config_and_records_validate():
    with pytest.raises(ConfigError):
        InterleaveConfig(image_format="jpeg")
    with pytest.raises(ConfigError):
        InterleaveConfig(timeout_s=0)
    with pytest.raises(ConfigError):
        InterleaveConfig(filters=imf.DEFAULT.replace(formats=("JPEG",)))
    config = InterleaveConfig(dpi=100, filters=imf.WEB)
    assert InterleaveConfig.from_json(config.to_json()) == config
    with pytest.raises(ValueError):
        InterleaveFailure("because", "no such reason code")
    image = FigureImage("0" * 64, 0, (0.0, 0.0, 1.0, 1.0), "image", "", b"x", 1, 1)
    with pytest.raises(ValueError):         # an image never placed
        InterleavedDoc((("text", "a", None),), (image,), ())
    with pytest.raises(ValueError):         # an empty text segment
        InterleavedDoc((("text", " ", None),), (), ())


# ---- the child process on generated PDFs --------------------------------------------------------

def test_kept_figure_sits_between_the_right_text(first_page_only):
    doc = first_page_only
    assert isinstance(doc, InterleavedDoc), doc
    assert doc.segments == (
        ("text", f"{INTRO}\n\n{CAPTION_1}", None),
        ("image", None, 0),
        ("text", "\n\n".join([MIDDLE, CAPTION_2, CAPTION_3, CLOSING]), None),
    )
    (image,) = doc.images
    assert (image.page_index, image.kind, image.caption, image.placement) == (0, "image", CAPTION_1,
                                                                              PLACED_AFTER_CAPTION)
    assert image.image_id == hashlib.sha256(image.data).hexdigest() and image.data.startswith(b"\x89PNG")
    # 120 x 80 mm at 144 dpi
    assert abs(image.width - 680) <= 3 and abs(image.height - 454) <= 3
    x0, y0, x1, y1 = image.bbox                         # PDF points, top-left origin
    assert abs(x0 - 45 / 25.4 * 72) < 3 and abs(y0 - 52 / 25.4 * 72) < 3 and abs(x1 - x0 - 340) < 3
    assert doc.doc_pages == 2 and doc.parser.startswith("mineru ") and doc.skipped_pages == ()


def test_blank_and_tiny_figures_are_dropped_with_their_reasons(first_page_only):
    dropped = {d.reason: d for d in first_page_only.dropped}
    assert sorted(dropped) == [imf.BLANK, imf.TINY]
    blank = dropped[imf.BLANK]
    assert blank.caption == CAPTION_2 and CAPTION_FROM_BLOCK in blank.flags
    assert blank.measures["dominant_share"] == 1.0 and blank.page_index == 0
    tiny = dropped[imf.TINY]
    assert tiny.reasons[0] == imf.TINY and min(tiny.measures["width"], tiny.measures["height"]) < 64


def test_pages_missing_from_page_texts_give_no_text_and_no_figures(pdfs, first_page_only):
    assert all(i.page_index == 0 for i in first_page_only.images)
    assert all(d.page_index == 0 for d in first_page_only.dropped)
    assert not any("Second page" in (s[1] or "") for s in first_page_only.segments)
    both = interleave_document(str(pdfs / "figures.pdf"), {0: PAGE_0, 1: PAGE_1})
    assert [(i.page_index, i.caption) for i in both.images] == [(0, CAPTION_1),
                                                                (1, "Figure 4: Another spectrum, drawn in red.")]
    assert both.segments[-2:] == (("text", PAGE_1, None), ("image", None, 1))
    only_second = interleave_document(str(pdfs / "figures.pdf"), {1: PAGE_1})
    assert [i.page_index for i in only_second.images] == [1] and only_second.dropped == ()
    assert only_second.images[0].data == both.images[1].data


def test_two_runs_give_identical_bytes(pdfs, first_page_only):
    again = interleave_document(str(pdfs / "figures.pdf"), {0: PAGE_0}, base_dir=str(pdfs))
    assert again == first_page_only
    assert [i.data for i in again.images] == [i.data for i in first_page_only.images]


def test_a_decompression_bomb_page_is_skipped_not_parsed(pdfs):
    doc = interleave_document(str(pdfs / "bomb.pdf"), {0: PAGE_0, 1: PAGE_1})
    assert isinstance(doc, InterleavedDoc), doc
    assert doc.skipped_pages == ((1, "decompression_bomb"),)
    assert [i.page_index for i in doc.images] == [0]
    assert ("text", PAGE_1, None) in doc.segments          # the run's text stays


@pytest.mark.parametrize("name,reason", [
    ("corrupt.pdf", "corrupt_input"), ("encrypted.pdf", "encrypted"), ("not_a_pdf.pdf", "not_pdf"),
    ("empty.pdf", "empty"), ("no_such_file.pdf", "source_missing"),
])
def test_bad_documents_fail_with_their_reason(name, reason):
    got = interleave_document(str(FIXTURE_PDFS / name), {0: "text"}, base_dir=str(FIXTURE_PDFS))
    assert isinstance(got, InterleaveFailure) and got.reason == reason and got.message


def test_paths_outside_the_folder_and_urls_are_never_opened(tmp_path, pdfs, monkeypatch):
    inside = tmp_path / "inside"
    inside.mkdir()
    (inside / "link.pdf").symlink_to(pdfs / "figures.pdf")
    for path in (str(pdfs / "figures.pdf"), str(inside / ".." / ".." / pdfs.name / "figures.pdf"),
                 str(inside / "link.pdf")):
        got = interleave_document(path, {0: "text"}, base_dir=str(inside))
        assert isinstance(got, InterleaveFailure) and got.reason == "unsafe_path", path
    monkeypatch.chdir(inside)
    got = interleave_document("link.pdf", {0: "text"}, base_dir=".")
    assert isinstance(got, InterleaveFailure) and got.reason == "unsafe_path"
    for url in ("https://example.org/paper.pdf", "http://127.0.0.1:9/x.pdf", "file:///etc/passwd", "//host/x.pdf"):
        got = interleave_document(url, {0: "text"}, base_dir=str(inside))
        assert isinstance(got, InterleaveFailure) and got.reason == "remote_ref_not_fetched", url
    assert interleave_document(str(tmp_path), {0: "x"}).reason == "unreadable"      # a folder


@pytest.mark.parametrize("hook,reason,timeout", [
    ("crash", "parser_crash", 60.0), ("oom", "out_of_memory", 60.0), ("hang", "timeout", 1.5),
])
def test_a_dying_or_hanging_child_is_a_failure_not_an_exception(pdfs, monkeypatch, hook, reason, timeout):
    monkeypatch.setenv(TEST_HOOK_ENV, hook)
    got = interleave_document(str(pdfs / "figures.pdf"), {0: PAGE_0}, InterleaveConfig(timeout_s=timeout))
    assert isinstance(got, InterleaveFailure) and got.reason == reason, got


def test_too_many_pages(pdfs):
    got = interleave_document(str(pdfs / "figures.pdf"), {0: PAGE_0}, InterleaveConfig(max_pages=1))
    assert isinstance(got, InterleaveFailure) and got.reason == "too_many_pages"


@pytest.mark.corpus
def test_corpus_papers_give_placed_figures(corpus):
    """Tier (d): the first real paper with figures gives kept, placed figures."""
    papers = sorted((corpus / "pdf" / "sci").glob("physics_gr-qc_*.pdf"))
    if not papers:
        pytest.skip("physics_gr-qc paper not in the corpus")
    doc = interleave_document(str(papers[0]), {i: f"Page {i} text." for i in range(5)}, InterleaveConfig(timeout_s=300))
    assert isinstance(doc, InterleavedDoc), doc
    assert len(doc.images) >= 4 and all(i.width >= 64 and i.height >= 64 for i in doc.images)
    assert {i.kind for i in doc.images} == {"image", "table"}
