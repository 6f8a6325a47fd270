"""Read a page's own text layer with PDFium: characters, math-font characters, image cover.

These numbers do not depend on any parser, so they tell how much text a parse *should* have
found, and whether the page typesets mathematics (TeX's CMMI/CMSY/CMEX, Latin Modern Math,
STIX, Cambria Math, AMS fonts, Symbol).
"""

from __future__ import annotations

import ctypes
import re

from scicurate.records import TextLayerStats

# Font base names (subset prefix "ABCDEF+" stripped, lower-cased) that typeset mathematics.
_MATH_FONT = re.compile(
    r"^(cmmi|cmsy|cmex|cmbsy|cmmib|msam|msbm|eufm|eusm|eurm|rsfs|stmary|wasy|"
    r"lmmathitalic|lmmathsymbols|lmmathextension|latinmodernmath|lmmath|"
    r"stixmath|stixtwomath|stixgeneral|stix|xits|cambriamath|asanamath|texgyre.*math|"
    r"mtmi|mtsy|mtex|txmi|txsy|txex|pxmi|pxsy|pxex|zxlr|symbol|mathematicalpi|mt-extra|"
    r"euclidsymbol|euclidmathone|euclidmathtwo|mathtime|ntxmi|ntxsy|newtxmath|newpxmath)",
    re.IGNORECASE,
)


def is_math_font(base_name: str) -> bool:
    name = base_name.split("+", 1)[-1].replace(" ", "").replace("-", "").lower()
    return bool(_MATH_FONT.match(name))


def _font_name(raw_module, font) -> str:
    if not font:
        return ""
    size = raw_module.FPDFFont_GetBaseFontName(font, None, 0)
    if size <= 0:
        return ""
    buf = ctypes.create_string_buffer(size)
    raw_module.FPDFFont_GetBaseFontName(font, buf, size)
    return buf.value.decode("latin-1", "replace")


def text_layer_stats(page) -> TextLayerStats:
    """Stats of one `pypdfium2.PdfPage`. Never raises for odd pages: worst case is all zeros."""
    import pypdfium2.raw as pdfium_c

    textpage = page.get_textpage()
    try:
        text = textpage.get_text_range() or ""
        chars = sum(1 for ch in text if not ch.isspace())
        math_chars = 0
        image_area = 0.0
        width, height = page.get_size()
        page_area = max(width * height, 1.0)
        for obj in page.get_objects(
            filter=[pdfium_c.FPDF_PAGEOBJ_TEXT, pdfium_c.FPDF_PAGEOBJ_IMAGE], max_depth=4
        ):
            if obj.type == pdfium_c.FPDF_PAGEOBJ_IMAGE:
                try:
                    left, bottom, right, top = obj.get_bounds() if hasattr(obj, "get_bounds") else obj.get_pos()
                except Exception:  # noqa: BLE001 - a broken object must not sink the page
                    continue
                image_area += max(0.0, right - left) * max(0.0, top - bottom)
                continue
            font_name = _font_name(pdfium_c, pdfium_c.FPDFTextObj_GetFont(obj.raw))
            if font_name and is_math_font(font_name):
                # The length is in UTF-16 code units including the terminating NUL.
                n = pdfium_c.FPDFTextObj_GetText(obj.raw, textpage.raw, None, 0)
                math_chars += max(0, n // 2 - 1)
        return TextLayerStats(
            chars=chars,
            math_font_chars=min(math_chars, chars),
            image_area_ratio=min(1.0, image_area / page_area),
            text=text,
        )
    finally:
        textpage.close()
