"""Render PDF pages to PNG for the VLM, with PDFium. Runs inside the sandbox child process.

The scale is `dpi / 72`, capped so the long side stays within `max_side_px`: VLMs are trained
on renders of ~1000-1600 px, and a poster-sized page at 144 dpi would otherwise cost tens of
thousands of visual tokens (or a gigabyte of bitmap, for a hostile MediaBox).
"""

from __future__ import annotations

import io
import os

from .textlayer import text_layer_stats


def render_scale(width_pt: float, height_pt: float, dpi: int, max_side_px: int) -> float:
    longest = max(width_pt, height_pt, 1.0)
    return min(dpi / 72.0, max_side_px / longest)


def render_file(path: str, pages: list[int], *, dpi: int, max_side_px: int, out_dir: str) -> list[dict]:
    """Render 0-based `pages` of the PDF at `path` into PNG files under `out_dir`.

    Returns one dict per page: {page_index, png_path, width, height, text_layer}. The text
    layer travels with the image: the prompt quotes it, and post-processing uses it to spot
    running headers the VLM invented.
    """
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(path)
    out = []
    try:
        for index in pages:
            page = pdf[index]
            try:
                width, height = page.get_size()
                scale = render_scale(width, height, dpi, max_side_px)
                image = page.render(scale=scale, draw_annots=True).to_pil()
                stats = text_layer_stats(page)
            finally:
                page.close()
            buf = io.BytesIO()
            image.convert("RGB").save(buf, format="PNG", optimize=False)
            png_path = os.path.join(out_dir, f"page-{index:05d}.png")
            with open(png_path, "wb") as fh:
                fh.write(buf.getvalue())
            out.append({"page_index": index, "png_path": png_path, "width": image.width,
                        "height": image.height, "text_layer": stats.text})
    finally:
        pdf.close()
    return out
