"""Image filters for image-text pairs: the pure core (measure, decide, the pair rule, path
resolution) on images drawn here with Pillow/numpy, the pipeline's cores with an injected
counter, then `scicurate run images` end to end on tests/fixtures/images."""

from __future__ import annotations

import argparse
import collections
import hashlib
import io
import json
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image, ImageDraw, ImageFilter

from scicurate.classifiers import image_filters as imf
from scicurate.config import ConfigError
from scicurate.pipelines import images_steps as steps

FIXTURES = Path(__file__).parent / "fixtures" / "images"


# ---- images drawn for the tests ----------------------------------------------------------------

def encode(image: Image.Image, fmt: str = "PNG", **kwargs) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def sharp_image(width: int = 400, height: int = 300) -> Image.Image:
    """Checkerboard panel plus text-like strokes and a curve: line art, black on white."""
    image = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(image)
    for y in range(0, height // 2, 16):
        for x in range(0, width // 2, 16):
            if (x // 16 + y // 16) % 2 == 0:
                draw.rectangle((x, y, x + 15, y + 15), fill=0)
    for row in range(6):
        for col in range(20):
            x, y = width // 2 + 10 + col * 9, 20 + row * 18
            draw.rectangle((x, y, x + 2 + col % 4, y + 10), outline=0)
    points = [(x, height * 0.75 - 50 * np.sin(x / 30)) for x in range(0, width, 2)]
    draw.line(points, fill=0, width=2)
    return image


def sparse_plot(width: int = 600, height: int = 400) -> Image.Image:
    """A sparse line plot: axes, a few ticks and one thin curve on white (most pixels white)."""
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    draw.line((50, height - 40, width - 20, height - 40), fill="black")
    draw.line((50, 20, 50, height - 40), fill="black")
    for k in range(1, 6):
        x = 50 + k * (width - 70) // 6
        draw.line((x, height - 40, x, height - 34), fill="black")
    draw.line([(x, 200 - 120 * np.exp(-(x - 300) ** 2 / 5000)) for x in range(60, width - 30, 3)], fill="blue")
    return image


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height 8-bit grey pixels; one tiny IDAT chunk."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def measured(data: bytes, config: imf.ImageFilterConfig = imf.DEFAULT) -> imf.ImageMeasures:
    m = imf.measure_image(data, config)
    assert isinstance(m, imf.ImageMeasures), m
    return m


def reasons_of(data: bytes, config: imf.ImageFilterConfig = imf.DEFAULT) -> tuple[str, ...]:
    return imf.decide(measured(data, config), config).reasons


# ---- measure + decide --------------------------------------------------------------------------

def test_a_sharp_figure_is_kept_and_its_blurred_copy_is_blurry():
    sharp = sharp_image()
    data = encode(sharp)
    m = measured(data)
    assert (m.width, m.height, m.format, m.mode, m.n_bytes) == (400, 300, "PNG", "L", len(data))
    assert m.sha256 == hashlib.sha256(data).hexdigest() and (m.analysis_width, m.analysis_height) == (400, 300)
    assert m.laplacian_var > 1000 and m.aspect == pytest.approx(4 / 3)
    assert imf.decide(m) == imf.ImageVerdict(True, ())
    blurred = measured(encode(sharp.filter(ImageFilter.GaussianBlur(3))))
    assert blurred.laplacian_var < 100 < m.laplacian_var
    assert imf.decide(blurred).reasons == (imf.BLURRY,)
    # thresholds are re-applied to the stored measures without decoding again
    assert imf.decide(blurred, imf.DEFAULT.replace(blur_threshold=1.0)).keep
    # a photo-like image (smooth gradient, one hard-edged disc, sensor grain) in JPEG is kept;
    # one pixel of blur takes its grain and most of its score away
    yy, xx = np.mgrid[0:240, 0:320].astype(np.float32)
    rgb = np.stack([100 + 100 * xx / 320, 80 + 120 * yy / 240, 160 - 60 * xx / 320], axis=-1)
    rgb[(xx - 120) ** 2 + (yy - 110) ** 2 < 50 ** 2] += 70
    rgb += np.random.default_rng(3).normal(0, 12, rgb.shape).astype(np.float32)
    photo = Image.fromarray(rgb.clip(0, 255).astype(np.uint8))
    assert imf.decide(measured(encode(photo, "JPEG", quality=90))).keep
    assert imf.decide(measured(encode(photo.filter(ImageFilter.GaussianBlur(1)), "JPEG", quality=90))).reasons == (
        imf.BLURRY,)


def test_laplacian_is_the_3x3_kernel_over_the_interior():
    grid = np.random.default_rng(0).integers(0, 256, (6, 7)).astype(np.float32)
    expected = [grid[y - 1, x] + grid[y + 1, x] + grid[y, x - 1] + grid[y, x + 1] - 4 * grid[y, x]
                for y in range(1, 5) for x in range(1, 6)]
    assert imf.laplacian_variance(grid) == pytest.approx(np.var(expected), rel=1e-6)
    assert imf.laplacian_variance(np.zeros((2, 50))) == 0.0
    assert imf.laplacian_variance(np.full((20, 20), 77.0)) == 0.0


def test_the_blur_score_is_comparable_across_sizes():
    """The same figure stored at 4x the resolution scores the same: it is measured at 512 px.
    Measured at full size it would look ~100x blurrier (each edge spread over 4 pixels)."""
    small = sharp_image(512, 384)
    big = small.resize((2048, 1536), Image.Resampling.NEAREST)
    m_small, m_big = measured(encode(small)), measured(encode(big))
    assert (m_big.analysis_width, m_big.analysis_height) == (512, 384)
    assert m_big.laplacian_var == pytest.approx(m_small.laplacian_var, rel=1e-3)
    full_res = imf.laplacian_variance(np.asarray(big, dtype=np.float32))
    assert full_res < m_small.laplacian_var / 4
    # a large JPEG is decoded at a reduced DCT scale and still measured at 512 px
    jpeg = measured(encode(big.convert("RGB"), "JPEG", quality=92))
    assert (jpeg.format, jpeg.analysis_width, jpeg.analysis_height) == ("JPEG", 512, 384)
    assert imf.decide(jpeg).keep


def test_blank_images_and_a_sparse_plot_that_is_not():
    white = encode(Image.new("RGB", (300, 200), "white"))
    black = encode(Image.new("L", (300, 200), 0))
    noise = np.random.default_rng(1).normal(250, 3, (200, 300, 3)).clip(0, 255).astype(np.uint8)
    noisy_jpeg = encode(Image.fromarray(noise), "JPEG", quality=80)
    transparent = encode(Image.new("RGBA", (300, 200), (0, 0, 0, 0)))
    frame = Image.new("RGB", (300, 200), "white")
    ImageDraw.Draw(frame).rectangle((0, 0, 299, 199), outline="black", width=3)     # an empty box
    for data in (white, black, noisy_jpeg, transparent, encode(frame)):
        assert reasons_of(data) == (imf.BLANK,)                                      # blank, never "blurry"
    plot = measured(encode(sparse_plot()))
    assert plot.white_share > 0.98 and plot.dominant_share > 0.98          # mostly white, yet drawn on
    assert imf.decide(plot).keep
    # a grey spread under blank_std is blank even when no colour dominates 99%
    faint = encode(Image.fromarray(np.tile(np.arange(200, 206, dtype=np.uint8), (200, 50))))
    m = measured(faint, imf.DEFAULT.replace(blank_tolerance=0))
    assert m.dominant_share < 0.5 and m.gray_std < 2.0
    assert imf.decide(m).reasons == (imf.BLANK,)


def test_tiny_images_and_extreme_aspects():
    assert reasons_of(encode(sharp_image().resize((10, 10)))) == (imf.TINY,)
    strip = Image.fromarray(np.linspace(0, 255, 400).astype(np.uint8).reshape(400, 1))
    assert reasons_of(encode(strip)) == (imf.TINY, imf.EXTREME_ASPECT)
    banner = sharp_image().resize((1000, 150))
    assert reasons_of(encode(banner)) == (imf.EXTREME_ASPECT,)
    assert imf.decide(measured(encode(banner)), imf.WEB).reasons == (imf.EXTREME_ASPECT,)
    assert reasons_of(encode(sharp_image().resize((100, 90)))) == ()                  # a small sub-panel stays
    assert imf.decide(measured(encode(sharp_image().resize((100, 90)))), imf.WEB).reasons == (imf.TINY,)


def test_broken_and_hostile_bytes_are_results_not_exceptions():
    png = encode(sharp_image())

    def failure(data: bytes, config: imf.ImageFilterConfig = imf.DEFAULT) -> imf.ImageFailure:
        result = imf.measure_image(data, config)
        assert isinstance(result, imf.ImageFailure), result
        assert result.sha256 == hashlib.sha256(data).hexdigest() and result.n_bytes == len(data)
        return result

    assert failure(png[: len(png) // 2]).reason == imf.TRUNCATED_IMAGE
    assert failure(b"").reason == imf.EMPTY_IMAGE
    html = failure(b"<html>404</html>")
    assert html.reason == imf.UNSUPPORTED_FORMAT and "0x" not in html.message       # no object address
    assert failure(png, imf.DEFAULT.replace(max_bytes=100)).reason == imf.TOO_LARGE
    # a decompression bomb's header: 10^10 pixels in 69 bytes; Pillow's own guard trips first
    bomb = failure(png_claiming(100_000, 100_000))
    assert bomb.reason == imf.DECOMPRESSION_BOMB
    # 64 MP: under Pillow's limit, over ours; rejected from the header, nothing decoded
    big = failure(png_claiming(8000, 8000))
    assert (big.reason, big.format) == (imf.DECOMPRESSION_BOMB, "PNG") and "64000000 pixels" in big.message
    assert failure(png, imf.DEFAULT.replace(max_pixels=1000)).reason == imf.DECOMPRESSION_BOMB
    # formats outside the allow-list are not parsed at all
    assert failure(encode(sharp_image(), "BMP"), imf.DEFAULT.replace(formats=("PNG",))).reason == imf.UNSUPPORTED_FORMAT
    assert failure(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n").reason == imf.UNSUPPORTED_FORMAT
    corrupt = bytearray(png)
    corrupt[60:90] = b"\xff" * 30                                                    # inside the IDAT data
    assert failure(bytes(corrupt)).reason in (imf.CORRUPT_IMAGE, imf.TRUNCATED_IMAGE)
    # the same bytes give the same result
    assert imf.measure_image(png) == imf.measure_image(png)


@pytest.mark.parametrize("make", [
    lambda: sharp_image().convert("P"),
    lambda: sharp_image().convert("1"),
    lambda: sharp_image().convert("LA"),
    lambda: sharp_image().convert("CMYK"),
    lambda: Image.fromarray((np.asarray(sharp_image(), dtype=np.uint16) * 257)),
    lambda: Image.fromarray(np.asarray(sharp_image(), dtype=np.float32) / 255.0),
    lambda: Image.fromarray((np.asarray(sharp_image(1200, 900), dtype=np.uint16) * 257)),
], ids=["P", "1", "LA", "CMYK", "I16", "F", "I16-large"])
def test_every_mode_measures_and_keeps_a_sharp_figure(make):
    image = make()
    fmt = {"CMYK": "JPEG", "F": "TIFF"}.get(image.mode, "PNG")
    m = measured(encode(image, fmt))
    assert m.gray_std > 20 and imf.decide(m).keep, (image.mode, m)


def test_pair_rule_missing_images_and_captions():
    no_ref = imf.check_pair("Figure 1. A plot.", "", available=False)
    assert (no_ref.keep, no_ref.reasons, no_ref.detail) == (False, (imf.MISSING_IMAGE,), imf.NO_IMAGE_REF)
    remote = imf.check_pair("Figure 2.", "https://example.org/a.png", available=False)
    assert remote.detail == imf.REMOTE_REF_NOT_FETCHED
    assert imf.check_pair("Figure 3.", "fig3.png", False).detail == imf.IMAGE_NOT_FOUND
    assert imf.check_pair("Figure 3.", "fig3.png", False, why_missing=imf.EMPTY_BYTES).detail == imf.EMPTY_BYTES
    uncaptioned = imf.check_pair("  ", "fig.png", available=True)
    assert (uncaptioned.keep, uncaptioned.flags, uncaptioned.reasons) == (True, (imf.NO_CAPTION,), ())
    strict = imf.check_pair(None, "fig.png", True, imf.WEB)
    assert (strict.keep, strict.reasons) == (False, (imf.NO_CAPTION,))
    nothing = imf.check_pair("", None, False)
    assert nothing.reasons == (imf.MISSING_IMAGE,) and nothing.flags == (imf.NO_CAPTION,)
    assert imf.check_pair("Figure 4.", "fig.png", True) == imf.PairCheck(True)
    with pytest.raises(ValueError):
        imf.PairCheck(True, (imf.MISSING_IMAGE,))
    with pytest.raises(ValueError):
        imf.ImageVerdict(False, ())


@pytest.mark.parametrize("ref, resolved, why", [
    ("fig.png", "/data/in/fig.png", ""),
    ("figs/./a/../fig.png", "/data/in/figs/fig.png", ""),
    ("", "", imf.NO_IMAGE_REF),
    ("HTTPS://example.org/x.png", "", imf.REMOTE_REF_NOT_FETCHED),
    ("//cdn.example.org/x.png", "", imf.REMOTE_REF_NOT_FETCHED),
    ("data:image/png;base64,AAAA", "", imf.UNSUPPORTED_REF),
    ("../secret.png", "", imf.UNSAFE_IMAGE_PATH),
    ("figs/../../secret.png", "", imf.UNSAFE_IMAGE_PATH),
    ("/etc/passwd", "", imf.UNSAFE_IMAGE_PATH),
    ("C:/Windows/x.png", "", imf.UNSAFE_IMAGE_PATH),
    ("figs\\..\\..\\x.png", "", imf.UNSAFE_IMAGE_PATH),
    ("file:///etc/passwd", "", imf.UNSAFE_IMAGE_PATH),
    ("gs://bucket/x.png", "", imf.UNSAFE_IMAGE_PATH),
    ("fig.png\x00.txt", "", imf.UNSAFE_IMAGE_PATH),
    ("..", "", imf.UNSAFE_IMAGE_PATH),
])
def test_image_paths_resolve_only_inside_the_input_folder(ref, resolved, why):
    assert imf.resolve_image_ref(ref, "/data/in") == (resolved, why)


def test_config_is_validated():
    for bad in ({"max_aspect": 0.5}, {"blank_share": 0.0}, {"min_side": 0}, {"blank_margin": 0.5},
                {"max_pixels": 0}, {"formats": ("png",)}, {"blank_tolerance": 300}):
        with pytest.raises(ConfigError):
            imf.DEFAULT.replace(**bad)
    assert set(imf.PRESETS) == {"figures", "web"} and imf.PRESETS["figures"] == imf.DEFAULT
    with pytest.raises(ConfigError, match="preset"):
        steps.ImagesRunConfig(preset="photos")


# ---- the pipeline's cores ----------------------------------------------------------------------

def test_read_pairs_from_jsonl_and_parquet(tmp_path):
    png = encode(sharp_image())
    lines = [{"id": "a", "caption": "c", "image_path": "a.png"}, {"caption": "no id"}, {"pair_id": 7, "caption": "x"},
             {"id": "b", "caption": ["not", "a", "string"]}, {"id": "c", "image": "a.png"}, [1, 2]]
    data = "".join(json.dumps(r) + "\n" for r in lines).encode() + b"\n{broken\n"
    items = list(steps.read_pairs(io.BytesIO(data), "/in/pairs.jsonl"))
    assert len(items) == 7
    rows = [i for i in items if isinstance(i, steps.PairRow)]
    assert [r.pair_id for r in rows[:1] + rows[2:]] == ["a", "7"] and rows[1].pair_id.startswith("sha256:")
    assert rows[0].base_dir == "/in" and rows[0].where == "/in/pairs.jsonl:1" and rows[1].image_ref == ""
    dead = [(d.pair_id, d.reason) for d in items if isinstance(d, steps.ImageDeadLetter)]
    assert dead == [("b", "bad_record"), ("c", "bad_record"), ("", "bad_record"), ("", "bad_record")]

    table = pa.table({"id": ["p1", "p2", "p3"], "caption": ["one", None, "three"],
                      "image": [png, None, png]})
    path = tmp_path / "pairs.parquet"
    pq.write_table(table, path)
    got = list(steps.read_pairs(io.BytesIO(path.read_bytes()), str(path)))
    assert [(r.pair_id, r.caption, r.image == png) for r in got] == [("p1", "one", True), ("p2", "", False),
                                                                      ("p3", "three", True)]
    hf = tmp_path / "hf.parquet"                       # the Hugging Face Image feature: {bytes, path}
    pq.write_table(pa.table({"caption": ["c"], "image": [{"bytes": None, "path": "figs/a.png"}]}), hf)
    (row,) = steps.read_pairs(io.BytesIO(hf.read_bytes()), str(hf))
    assert (row.image, row.image_ref) == (None, "figs/a.png") and row.pair_id.startswith("sha256:")
    (broken,) = steps.read_pairs(io.BytesIO(b"garbage"), "x.parquet")
    assert broken.reason == steps.CORRUPT_INPUT


def test_load_image_stays_in_the_folder(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.png").write_bytes(encode(sharp_image()))
    (folder / "empty.png").write_bytes(b"")
    (tmp_path / "secret.png").write_bytes(encode(sharp_image()))
    os.symlink(tmp_path / "secret.png", folder / "link.png")

    def row(ref: str) -> steps.PairRow:
        return steps.PairRow(f"id-{ref}", "caption", ref, None, str(folder / "pairs.jsonl"), "w", str(folder))

    ok = steps.load_image(row("a.png"), 10**6)
    assert isinstance(ok, steps.LoadedPair) and ok.data == (folder / "a.png").read_bytes() and ok.why_missing == ""
    assert steps.load_image(row("nope.png"), 10**6).why_missing == imf.IMAGE_NOT_FOUND
    assert steps.load_image(row("?.png"), 10**6).why_missing == imf.IMAGE_NOT_FOUND        # never a glob
    os.mkfifo(folder / "pipe.png")                                                           # would block a read
    assert steps.load_image(row("pipe.png"), 10**6).why_missing == imf.IMAGE_NOT_FOUND
    assert steps.load_image(row("."), 10**6).reason == imf.UNSAFE_IMAGE_PATH
    assert steps.load_image(row("empty.png"), 10**6).why_missing == imf.EMPTY_BYTES
    assert steps.load_image(row("http://x.org/a.png"), 10**6).why_missing == imf.REMOTE_REF_NOT_FETCHED
    for ref in ("../secret.png", "link.png", str(tmp_path / "secret.png")):
        dead = steps.load_image(row(ref), 10**6)
        assert isinstance(dead, steps.ImageDeadLetter) and dead.reason == imf.UNSAFE_IMAGE_PATH, ref
    too_big = steps.load_image(row("a.png"), 100)
    assert isinstance(too_big, steps.ImageDeadLetter) and (too_big.stage, too_big.reason) == ("load", imf.TOO_LARGE)
    embedded = steps.PairRow("e", "c", "", b"", "s", "w", "")
    assert steps.load_image(embedded, 100).why_missing == imf.EMPTY_BYTES


def test_judge_pair_routes_every_outcome_and_counts_it():
    counts: collections.Counter = collections.Counter()
    config = imf.DEFAULT

    def judge(caption: str, data: bytes, why: str = "") -> steps.PairOutcome:
        row = steps.PairRow("id", caption, "ref.png", data, "src", "src:1", "")
        return steps.judge_pair(steps.LoadedPair(row, data, why), config, lambda name: counts.update([name]))

    sharp = encode(sharp_image())
    kept = judge("Figure 1.", sharp)
    assert isinstance(kept, steps.KeptPair) and kept.flags == () and kept.measures.width == 400
    flagged = judge("", sharp)
    assert isinstance(flagged, steps.KeptPair) and flagged.flags == (imf.NO_CAPTION,)
    blurred = judge("Figure 2.", encode(sharp_image().filter(ImageFilter.GaussianBlur(4))))
    assert isinstance(blurred, steps.FilteredPair) and (blurred.stage, blurred.reason) == ("decide", imf.BLURRY)
    assert blurred.measures is not None
    missing = judge("Figure 3.", b"", imf.IMAGE_NOT_FOUND)
    assert isinstance(missing, steps.FilteredPair) and (missing.reasons, missing.detail, missing.measures) == (
        (imf.MISSING_IMAGE,), imf.IMAGE_NOT_FOUND, None)
    bomb = judge("Figure 4.", png_claiming(100_000, 100_000))
    assert isinstance(bomb, steps.ImageDeadLetter) and (bomb.stage, bomb.reason) == ("measure", imf.DECOMPRESSION_BOMB)
    config = imf.WEB                                                # captions required, 150 px floor
    both = judge("", encode(sharp_image().resize((100, 100))))
    assert isinstance(both, steps.FilteredPair) and both.reasons == (imf.NO_CAPTION, imf.TINY)
    assert counts == {"kept": 2, "filtered_blurry": 1, "filtered_missing_image": 1, "dead_decompression_bomb": 1,
                      "filtered_no_caption": 1}


def test_summary_accounts_for_rows_not_files():
    combine = steps.BuildSummary()
    pairs = [("inputs", 6), ("kept", 2), ("filtered", 2), ("filtered_by_reason.blurry", 2), ("dead_letter", 3),
             ("dead_letter_by_reason.bad_record", 1), ("dead_letter_by_reason.truncated_image", 1),
             ("dead_letter_by_reason.corrupt_input", 1)]
    acc = combine.create_accumulator()
    for pair in pairs:
        acc = combine.add_input(acc, pair)
    summary = combine.extract_output(acc)
    assert (summary["dead_letter_rows"], summary["accounted"], summary["kept_share"]) == (2, True, 0.3333)
    assert summary["reason_hits"] == {} and summary["missing_image_by_detail"] == {}


# ---- end to end --------------------------------------------------------------------------------

def _expected_outcomes() -> dict[str, list[str]]:
    rows = [json.loads(line) for line in (FIXTURES / "pairs.jsonl").read_text().splitlines()
            if line.startswith('{"')]
    return {r["id"]: r["expect"].split() for r in rows}


def _parquet_rows(directory: Path) -> list[dict]:
    return [row for f in sorted(directory.rglob("*.parquet")) for row in pq.read_table(f).to_pylist()]


def _inputs(tmp_path: Path) -> Path:
    """The fixture folder (pairs.jsonl + images) copied beside a Parquet file with embedded
    bytes and a file of an unsupported kind."""
    folder = tmp_path / "in"
    folder.mkdir()
    for item in FIXTURES.iterdir():
        if item.is_file() and item.suffix != ".py":
            (folder / item.name).write_bytes(item.read_bytes())
    chart = (FIXTURES / "chart.png").read_bytes()
    pq.write_table(pa.table({"pair_id": ["pq-kept", "pq-blank", "pq-truncated"],
                             "caption": ["Figure P1.", "Figure P2.", "Figure P3."],
                             "image": [chart, (FIXTURES / "blank.png").read_bytes(), chart[:300]]}),
                   folder / "pairs_embedded.parquet")
    (folder / "pairs.csv").write_text("caption,image_path\n")
    return folder


def test_pipeline_wiring_with_test_pipeline(tmp_path):
    import apache_beam as beam
    from apache_beam.metrics.metric import MetricsFilter
    from apache_beam.testing.test_pipeline import TestPipeline
    from apache_beam.testing.util import assert_that, equal_to

    from scicurate.pipelines import images

    folder = _inputs(tmp_path)
    out = tmp_path / "out"
    pipeline = TestPipeline()
    outputs = images.build(pipeline, str(folder / "pairs*"), str(out), steps.ImagesRunConfig())
    assert_that(outputs["kept"] | "KeptIds" >> beam.Map(lambda k: k.row.pair_id),
                equal_to(["chart", "photo", "chart-uncaptioned", "pq-kept"]), label="CheckKept")
    result = pipeline.run()
    result.wait_until_finish()
    counters = {c.key.metric.name: c.committed for c in
                result.metrics().query(MetricsFilter().with_namespace(steps.NAMESPACE))["counters"]}
    assert counters["kept"] == 4 and counters["read_rows"] == 21
    assert counters["filtered_blank"] == 3 and counters["filtered_missing_image"] == 4
    assert counters["dead_unsupported_input"] == 1 and counters["dead_truncated_image"] == 2
    summary = json.loads((out / "summary.json").read_text())
    # 20 JSONL lines (one not JSON) + 3 Parquet rows; pairs.csv is a file-level dead letter
    assert summary["inputs"] == 23 and summary["accounted"] is True
    assert (summary["kept"], summary["filtered"], summary["dead_letter_rows"], summary["dead_letter"]) == (4, 11, 8, 9)
    assert summary["dead_letter_by_reason"] == {"bad_record": 2, "decompression_bomb": 1, "truncated_image": 2,
                                                "unsafe_image_path": 2, "unsupported_format": 1,
                                                "unsupported_input": 1}
    assert summary["config"]["filters"]["blur_threshold"] == 100.0


def _run_images(argv: list[str]) -> int:
    """`scicurate run images ARGV` through images_run (cli.py registers the same parser)."""
    from scicurate import images_run

    parser = argparse.ArgumentParser()
    images_run.add_arguments(parser)
    args, rest = parser.parse_known_args(argv)
    return images_run.run(args, rest)


def test_run_images_end_to_end_on_the_fixtures(tmp_path, capsys):
    out = tmp_path / "run"
    assert _run_images(["--input", str(FIXTURES / "pairs.jsonl"), "--output", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["accounted"] is True and summary["inputs"] == 20
    assert summary["filtered_by_reason"] == {"blank": 2, "blurry": 1, "extreme_aspect": 1, "missing_image": 4, "tiny": 2}
    assert summary["missing_image_by_detail"] == {"empty_bytes": 1, "image_not_found": 1, "no_image_ref": 1,
                                                  "remote_ref_not_fetched": 1}
    assert summary["kept_flags"] == {"no_caption": 1}
    got: dict[str, list[str]] = {}
    for row in _parquet_rows(out / "kept"):
        got[row["pair_id"]] = ["kept"] + row["flags"]
        assert row["image"] == (FIXTURES / row["image_ref"]).read_bytes() and row["measures"]["width"] > 0
    for row in _parquet_rows(out / "filtered"):
        got[row["pair_id"]] = ["filtered"] + row["reasons"] + ([row["detail"]] if row["detail"] else [])
        assert (row["measures"] is None) == (row["stage"] == "pair")
    dead = _parquet_rows(out / "dead_letter")
    for row in dead:
        if row["pair_id"]:
            got[row["pair_id"]] = ["dead_letter", row["reason"]]
    assert got == _expected_outcomes()
    assert [d["reason"] for d in dead if not d["pair_id"]] == ["bad_record"]       # the line that is not JSON
    # a stricter run: captions required, a lower blur cut; the same measures decide differently
    strict = tmp_path / "strict"
    assert _run_images(["--input", str(FIXTURES / "pairs.jsonl"), "--output", str(strict), "--require-caption",
                        "--blur-threshold", "1"]) == 0
    moved = json.loads(capsys.readouterr().out)
    assert moved["filtered_by_reason"]["no_caption"] == 1 and "blurry" not in moved["filtered_by_reason"]
    assert moved["kept"] == 3                                       # chart, photo, and the blurred chart now
    with pytest.raises(ConfigError, match="max_aspect"):
        _run_images(["--input", str(FIXTURES / "pairs.jsonl"), "--output", str(strict), "--max-aspect", "0.5"])
    assert _run_images(["--input", str(tmp_path / "none*.jsonl"), "--output", str(strict)]) == 2


def test_cli_registers_run_images(tmp_path, capsys):
    from scicurate import cli

    try:
        rc = cli.main(["run", "images", "--input", str(FIXTURES / "pairs.jsonl"), "--output", str(tmp_path / "o")])
    except SystemExit:
        pytest.skip("scicurate/cli.py does not register `run images` yet")
    assert rc == 0 and json.loads(capsys.readouterr().out)["accounted"] is True
