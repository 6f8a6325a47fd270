"""Image filters: speed against a plain Pillow decode, and how the thresholds do on real figures.

    python bench/image_filters.py [--corpus DIR] [--no-mineru] [--repeat 3] [--out bench/results]

Real figures come from the development PDFs (`CORPUS/pdf/sci/*.pdf`) two ways:

- *embedded*: the raster image objects of each page (pypdfium2, `FPDF_PAGEOBJ_IMAGE`), at their
  stored resolution, that the page draws at least 72 x 72 pt (one inch a side). Smaller image
  objects are rules, bullets and logos, not figures; how many were left out is reported;
- *rendered*: MinerU's (flash tier, no models) `image_body` blocks, cropped out of the page
  rendered at 150 dpi. These include vector figures (plots, diagrams) that have no image object.

From every real figure the bench derives negatives with Pillow: blurred copies (Gaussian blur
of radius 2 and 4 pixels at the 512-pixel analysis scale the filter judges at, and a
thumbnail at 1/8 scaled back up), blank copies (plain white; white with faint sensor
noise saved as JPEG; an empty frame), and tiny copies (the figure shrunk to 48 px on its longer
side; one row of it, 1 px high). It reports the share of real figures kept, the share of each
negative kind filtered for the intended reason, and the measures' spread on real figures, so
the thresholds in `ImageFilterConfig` can be judged against them (they were not fitted to them).

Speed: images/s of `measure_image` + `decide` against a baseline that only decodes each image
with Pillow (`Image.open(...).load()`), on the real figures encoded as PNG and as JPEG
(quality 90), interleaved, medians of `--repeat`. Writes `OUT/image_filters.json`.
"""

from __future__ import annotations

import argparse
import glob
import io
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MIN_FIGURE_PT = 72.0
RENDER_DPI = 150
ANALYSIS_SIDE = 512             # ImageFilterConfig.analysis_side


def embedded_figures(paths: list[str]) -> tuple[list[tuple[str, bytes]], int]:
    """Image objects drawn at least MIN_FIGURE_PT on both sides -> [(name, PNG bytes)], and the
    number of smaller image objects left out."""
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    out, skipped = [], 0
    for path in paths:
        pdf = pdfium.PdfDocument(path)
        try:
            for index in range(len(pdf)):
                page = pdf[index]
                for k, obj in enumerate(page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE], max_depth=4)):
                    left, bottom, right, top = obj.get_bounds()
                    if right - left < MIN_FIGURE_PT or top - bottom < MIN_FIGURE_PT:
                        skipped += 1
                        continue
                    try:
                        image = obj.get_bitmap(render=False).to_pil()
                    except Exception:  # noqa: BLE001 - an undecodable stream is not a figure
                        skipped += 1
                        continue
                    out.append((f"{Path(path).stem}:p{index + 1}:img{k}", _png(image)))
                page.close()
        finally:
            pdf.close()
    return out, skipped


def rendered_figures(paths: list[str]) -> list[tuple[str, bytes]]:
    """MinerU's image_body blocks, cropped from pages rendered at RENDER_DPI -> [(name, PNG)]."""
    os.environ.setdefault("MINERU_MODEL_SOURCE", "local")
    os.environ.setdefault("MINERU_LOG_LEVEL", "WARNING")
    import pypdfium2 as pdfium
    from mineru.parser import MinerUParser

    parser = MinerUParser(tier="flash", parse_mode="txt", image_analysis=False)
    out = []
    for path in paths:
        bodies: dict[int, list] = {}
        for page in parser.parse(path).to_dict().get("pages") or ():
            for block in page.get("blocks") or ():
                if block.get("type") != "image":
                    continue
                for child in block.get("content") or ():
                    if isinstance(child, dict) and child.get("type") == "image_body" and child.get("bbox"):
                        bodies.setdefault(page["page_idx"], []).append(child["bbox"])
        pdf = pdfium.PdfDocument(path)
        try:
            for index, boxes in sorted(bodies.items()):
                page = pdf[index]
                image = page.render(scale=RENDER_DPI / 72).to_pil().convert("RGB")
                page.close()
                for k, (x0, y0, x1, y1) in enumerate(boxes):
                    w, h = image.size
                    crop = image.crop((int(x0 * w), int(y0 * h), int(round(x1 * w)), int(round(y1 * h))))
                    if crop.width and crop.height:
                        out.append((f"{Path(path).stem}:p{index + 1}:block{k}", _png(crop)))
        finally:
            pdf.close()
    return out


def _png(image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def _jpeg(image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def negatives(data: bytes) -> dict[str, tuple[bytes, str]]:
    """One real figure -> {kind: (encoded bytes, the reason it should be filtered for)}."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFilter

    image = Image.open(io.BytesIO(data)).convert("RGB")
    w, h = image.size
    longest = max(w, h)
    noise = np.random.default_rng(0).normal(250, 3, (h, w, 3)).clip(0, 255).astype(np.uint8)
    frame = Image.new("RGB", (w, h), "white")
    ImageDraw.Draw(frame).rectangle((0, 0, w - 1, h - 1), outline="black", width=max(1, longest // 512))
    thumb = image.resize((max(1, w // 8), max(1, h // 8)), Image.Resampling.BOX)
    # blur radii in pixels of the analysis copy (the scale the filter judges at)
    per_analysis_px = max(1.0, longest / ANALYSIS_SIDE)
    small = image.copy()
    small.thumbnail((48, 48), Image.Resampling.LANCZOS)
    return {
        "blur_2px": (_png(image.filter(ImageFilter.GaussianBlur(2 * per_analysis_px))), "blurry"),
        "blur_4px": (_png(image.filter(ImageFilter.GaussianBlur(4 * per_analysis_px))), "blurry"),
        "upscaled_thumb8": (_png(thumb.resize((w, h), Image.Resampling.BICUBIC)), "blurry"),
        "blank_white": (_png(Image.new("RGB", (w, h), "white")), "blank"),
        "blank_noise_jpeg": (_jpeg(Image.fromarray(noise)), "blank"),
        "blank_frame": (_png(frame), "blank"),
        "tiny_48": (_png(small), "tiny"),
        "tiny_row": (_png(image.crop((0, h // 2, w, h // 2 + 1))), "tiny"),
    }


def calibrate(figures: list[tuple[str, bytes]], config) -> dict:
    """Shares kept / filtered on the real figures and their negatives, and the measures' spread."""
    from scicurate.classifiers import image_filters as imf

    kept, reasons_real, rows = 0, {}, []
    kinds: dict[str, dict[str, int]] = {}
    for name, data in figures:
        measures, verdict = imf.check_image(data, config)
        if verdict is None:
            reasons_real[measures.reason] = reasons_real.get(measures.reason, 0) + 1
            continue
        rows.append((name, measures, verdict))
        kept += verdict.keep
        for r in verdict.reasons:
            reasons_real[r] = reasons_real.get(r, 0) + 1
        for kind, (neg, expected) in negatives(data).items():
            m, v = imf.check_image(neg, config)
            stats = kinds.setdefault(kind, {"images": 0, "filtered": 0, "for_expected_reason": 0, "expected": expected})
            stats["images"] += 1
            stats["filtered"] += int(v is None or not v.keep)
            stats["for_expected_reason"] += int(v is not None and expected in v.reasons)
    for stats in kinds.values():
        stats["filtered_share"] = round(stats["filtered"] / stats["images"], 4) if stats["images"] else None
        stats["expected_reason_share"] = round(stats["for_expected_reason"] / stats["images"], 4) if stats["images"] else None

    def spread(values: list[float]) -> dict:
        values = sorted(values)
        if not values:
            return {}
        pick = lambda q: round(values[min(len(values) - 1, int(q * (len(values) - 1) + 0.5))], 3)  # noqa: E731
        return {"min": pick(0.0), "p10": pick(0.1), "median": pick(0.5), "p90": pick(0.9), "max": pick(1.0)}

    return {
        "figures": len(figures),
        "measured": len(rows),
        "kept": kept,
        "kept_share": round(kept / len(rows), 4) if rows else None,
        "real_filtered_by_reason": dict(sorted(reasons_real.items())),
        "real_filtered": [{"name": n, "reasons": list(v.reasons), "width": m.width, "height": m.height,
                           "laplacian_var": m.laplacian_var, "dominant_share": m.dominant_share}
                          for n, m, v in rows if not v.keep],
        "negatives": kinds,
        "real_measures": {
            "laplacian_var": spread([m.laplacian_var for _, m, _ in rows]),
            "dominant_share": spread([m.dominant_share for _, m, _ in rows]),
            "gray_std": spread([m.gray_std for _, m, _ in rows]),
            "aspect": spread([m.aspect for _, m, _ in rows]),
            "shorter_side": spread([float(min(m.width, m.height)) for _, m, _ in rows]),
        },
    }


def blurred_spread(figures: list[tuple[str, bytes]], config) -> dict:
    """Laplacian variance of each blurred kind (median, max), to show the gap under the cut."""
    from scicurate.classifiers import image_filters as imf

    out: dict[str, list[float]] = {}
    for _name, data in figures:
        for kind, (neg, expected) in negatives(data).items():
            if expected != "blurry":
                continue
            m = imf.measure_image(neg, config)
            if isinstance(m, imf.ImageMeasures):
                out.setdefault(kind, []).append(m.laplacian_var)
    return {k: {"median": round(statistics.median(v), 2), "max": round(max(v), 2)} for k, v in out.items()}


def speed(encoded: list[bytes], config, repeat: int) -> dict:
    """Interleaved timing: Pillow decode alone vs measure_image + decide, same bytes."""
    from PIL import Image

    from scicurate.classifiers import image_filters as imf

    def baseline() -> int:
        for data in encoded:
            with Image.open(io.BytesIO(data)) as im:
                im.load()
        return len(encoded)

    def ours() -> int:
        for data in encoded:
            measures = imf.measure_image(data, config)
            if isinstance(measures, imf.ImageMeasures):
                imf.decide(measures, config)
        return len(encoded)

    runs: dict[str, list[float]] = {"baseline": [], "ours": []}
    for r in range(repeat):
        order = (("baseline", baseline), ("ours", ours)) if r % 2 == 0 else (("ours", ours), ("baseline", baseline))
        for label, fn in order:
            started = time.perf_counter()
            fn()
            runs[label].append(time.perf_counter() - started)
    base, mine = statistics.median(runs["baseline"]), statistics.median(runs["ours"])
    return {
        "images": len(encoded),
        "megapixels": round(sum(_pixels(d) for d in encoded) / 1e6, 2),
        "baseline": {"label": "Pillow Image.open(...).load() (full decode)", "median_seconds": round(base, 4),
                     "images_per_s": round(len(encoded) / base, 2), "runs": [round(s, 4) for s in runs["baseline"]]},
        "ours": {"label": "scicurate measure_image + decide", "median_seconds": round(mine, 4),
                 "images_per_s": round(len(encoded) / mine, 2), "runs": [round(s, 4) for s in runs["ours"]]},
        "time_ratio_ours_over_baseline": round(mine / base, 3),
    }


def _pixels(data: bytes) -> int:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        return im.size[0] * im.size[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default=str(ROOT.parent / "shared" / "corpus"))
    parser.add_argument("--no-mineru", action="store_true", help="embedded image objects only (no MinerU blocks)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = parser.parse_args(argv)
    from PIL import Image

    from scicurate.classifiers import image_filters as imf

    paths = sorted(glob.glob(os.path.join(args.corpus, "pdf", "sci", "*.pdf")))
    if not paths:
        print(f"no PDFs under {args.corpus}/pdf/sci: nothing to measure", file=sys.stderr)
        return 0
    config = imf.DEFAULT
    embedded, skipped = embedded_figures(paths)
    rendered = [] if args.no_mineru else rendered_figures(paths)
    result = {
        "name": "image_filters",
        "machine": f"{os.cpu_count()} CPUs, {platform.platform()}, Python {platform.python_version()}",
        "pdfs": [Path(p).name for p in paths],
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in
                   __import__("dataclasses").asdict(config).items()},
        "embedded": {**calibrate(embedded, config), "image_objects_under_72pt_left_out": skipped,
                     "blurred_laplacian_var": blurred_spread(embedded, config)},
    }
    if rendered:
        result["rendered"] = {**calibrate(rendered, config), "render_dpi": RENDER_DPI,
                              "blurred_laplacian_var": blurred_spread(rendered, config)}
    figures = embedded + rendered
    png = [d for _, d in figures]
    jpeg = [_jpeg(Image.open(io.BytesIO(d))) for d in png]
    result["speed_png"] = speed(png, config, args.repeat)
    result["speed_jpeg"] = speed(jpeg, config, args.repeat)
    os.makedirs(args.out, exist_ok=True)
    out = os.path.join(args.out, "image_filters.json")
    with open(out, "w", encoding="utf-8") as fh:
        json.dump(result, fh, indent=2, sort_keys=True)
        fh.write("\n")
    for source in ("embedded", "rendered"):
        if source not in result:
            continue
        r = result[source]
        negs = ", ".join(f"{k} {v['filtered_share']:.0%}" for k, v in r["negatives"].items())
        print(f"{source}: {r['measured']} real figures, {r['kept_share']:.1%} kept; negatives filtered: {negs}")
    for kind in ("speed_png", "speed_jpeg"):
        s = result[kind]
        print(f"{kind}: {s['images']} images ({s['megapixels']} MP): decode only {s['baseline']['images_per_s']:.1f}/s, "
              f"measure+decide {s['ours']['images_per_s']:.1f}/s, time ratio ours/baseline "
              f"{s['time_ratio_ours_over_baseline']:.2f}")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
