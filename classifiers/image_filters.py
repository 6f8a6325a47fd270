"""Image filters for image-text pairs: blank, blurry, tiny and extreme-aspect images, and
captions pointing at missing images. Pure Python (Pillow + numpy), no Beam.

Score, then filter (dolma's taggers vs mixer):

- `measure_image(data, config) -> ImageMeasures | ImageFailure` decodes one encoded image once
  and measures everything the rules look at: size, format, mode, sha256, the grey-level spread,
  the share of the dominant colour and of near-white pixels, and the variance of the Laplacian.
  Hostile or broken data is a result, never an exception: an empty, over-large, unsupported,
  truncated or corrupt image, or a decompression bomb, comes back as an `ImageFailure` with a
  stable reason code.
- `decide(measures, config) -> ImageVerdict` applies thresholds to those numbers only, so a run
  can change a threshold without decoding anything again (the measures are stored with every
  filtered row).
- `check_pair(caption, image_ref, available, config) -> PairCheck` is the pair-level rule: a
  caption whose image is missing (no reference, a remote URL we do not fetch, a file that is not
  there, empty bytes) is `missing_image`; an image without a caption is flagged `no_caption`,
  and filtered only when `require_caption` is set.

How the measures are taken (`measure_image`):

- The image is opened with an allow-list of Pillow formats (`formats`). Pillow reads the header
  only; the pixel count is checked against `max_pixels` *before* any pixel is decoded, so a
  100,000 x 100,000 PNG of a few dozen bytes never allocates its 10 GB. Pillow's own
  `MAX_IMAGE_PIXELS` guard (it raises above twice that) is the second fence. Only the first
  frame of an animated or multi-page file is read.
- Everything is measured on an *analysis copy*: the image scaled down (area average, never up)
  so its longer side is at most `analysis_side` pixels. JPEGs are decoded straight at a reduced
  scale (`Image.draft`, libjpeg's DCT scaling) when they are much larger than that. Transparent
  pixels are composited on white, as on a page.
- Blur is the variance of the Laplacian (Pech-Pacheco et al. 2000) of the grey copy, with the
  3x3 kernel [[0,1,0],[1,-4,1],[0,1,0]] applied by numpy slicing to the interior pixels (the
  same kernel as OpenCV's `cv2.Laplacian(gray, CV_64F)`, which also reflects the border; the
  one-pixel border is left out here). Why the fixed-size copy: the measure is a sum of squared
  second differences *per pixel*, so it depends on the scale the content is drawn at. The same
  sharp figure stored at 4x the resolution spreads each edge over 4x as many pixels and scores
  far lower than its thumbnail; a large, sharp scan would look blurry and a tiny blurry
  thumbnail sharp. Scaling every image to the same longer side first makes the score a property
  of the content, comparable across sizes, and bounds the cost. Images smaller than
  `analysis_side` are not scaled up (that would blur them); for them the score is taken as is.

Why the thresholds are what they are: see `ImageFilterConfig`. They are round numbers chosen
from what the measures mean; `bench/image_filters.py` reports how they do on real figures cut
from the development PDFs and on blurred, blank and tiny copies of them
(`bench/results/image_filters.json`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import posixpath
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from scicurate.config import ConfigError

# ---- reason codes (stable: they name summary keys, counters and Parquet values) ---------------

TINY = "tiny"
EXTREME_ASPECT = "extreme_aspect"
BLANK = "blank"
BLURRY = "blurry"
IMAGE_REASONS = (TINY, EXTREME_ASPECT, BLANK, BLURRY)          # the order `decide` lists them in

MISSING_IMAGE = "missing_image"
NO_CAPTION = "no_caption"
PAIR_REASONS = (MISSING_IMAGE, NO_CAPTION)

# why an image is missing (PairCheck.detail)
NO_IMAGE_REF = "no_image_ref"
REMOTE_REF_NOT_FETCHED = "remote_ref_not_fetched"
IMAGE_NOT_FOUND = "image_not_found"
EMPTY_BYTES = "empty_bytes"
UNSUPPORTED_REF = "unsupported_ref"
# a reference that points outside the input's folder: rejected, never opened (a dead letter)
UNSAFE_IMAGE_PATH = "unsafe_image_path"

# measure_image failures (ImageFailure.reason)
EMPTY_IMAGE = "empty_image"
TOO_LARGE = "too_large"
DECOMPRESSION_BOMB = "decompression_bomb"
UNSUPPORTED_FORMAT = "unsupported_format"
TRUNCATED_IMAGE = "truncated_image"
CORRUPT_IMAGE = "corrupt_image"
FAILURE_REASONS = (EMPTY_IMAGE, TOO_LARGE, DECOMPRESSION_BOMB, UNSUPPORTED_FORMAT, TRUNCATED_IMAGE, CORRUPT_IMAGE)

# Pillow formats opened by default. Left out on purpose: EPS/PS (Pillow hands them to
# Ghostscript, an interpreter), and the rarely seen formats whose decoders see little use
# (PSD, PCX, SGI, TGA, ICO, ...): a smaller attack surface for untrusted bytes.
DEFAULT_FORMATS = ("PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF", "JPEG2000")

_WHITE_LEVEL = 240          # grey level at or above which a pixel counts as near-white


@dataclass(frozen=True, slots=True)
class ImageFilterConfig:
    """Thresholds of the image filters, and the limits that keep hostile bytes cheap.

    Thresholds (`decide` reads only these; changing one needs no new decode):

    - `min_side` 64 px: below it an image is an icon, bullet, logo, rule or spacer, not a figure
      a model can learn from. Web image-text sets cut at 150 px (OBELICS); a paper's figures
      include small sub-panels and inline diagrams about 100 px a side at 150 dpi, so the
      `figures` preset goes lower. An image whose shorter side is under `min_side` is `tiny`.
    - `max_aspect` 5.0: the longer side over the shorter. A row of four or five panels stays;
      banners, separators, strips and ruler lines go (`extreme_aspect`).
    - `blank_share` 0.999: an image is `blank` when 99.9% of its inner pixels are within
      `blank_tolerance` of its dominant colour, i.e. under one pixel in a thousand carries
      anything (at 512 x 384, under half of a one-pixel line across the image): a white, black
      or flat-coloured box, a blank scan with a few specks, a fully transparent PNG. Line art
      is sparse, so the cut is that strict: a plot of two axes, a few ticks and one thin curve
      leaves 99% of its pixels white, and must not be called blank.
      `blank_std` 2.0 grey levels also calls an image blank when its whole grey spread is that
      small (faint noise over a flat background).
    - `blur_threshold` 100 (variance of the Laplacian on 0-255 grey levels, at `analysis_side`):
      a common default of blur detection on photographs at about this size. Line art, charts
      and text are the opposite of blurry: one-pixel black-on-white edges give Laplacian
      responses of hundreds of grey levels, so sharp figures score in the thousands even when
      mostly white. A Gaussian blur of two pixels (at 512 px) brings them under 100 (in the
      bench, the 102 real figures score 192 to 57,700, and 89 at most once so blurred).
      Photographs vary much more: smooth content (skies, shallow depth of field, micrographs)
      has few edges and can score under 100 in focus, and a photo whose fine detail is grain
      loses most of its score to a one-pixel blur. The cut is set for figures, to drop what is
      clearly blurred (upscaled thumbnails, out-of-focus scans); a photo-heavy source may want
      a lower one (`--blur-threshold`), judged on its own samples.
    - `require_caption` False: an image without a caption is kept and flagged `no_caption`
      (an interleaved export places images by position and may not need one); set it for
      image-caption pairs.

    Measurement settings (they change the measures: re-measure after changing one):

    - `analysis_side` 512 px: the scale every image is measured at (see the module docstring);
      large enough that a figure's strokes and lines survive, small enough to cost a few ms.
    - `blank_tolerance` 24 grey levels per channel: JPEG ringing and scanner noise around a
      flat colour stay inside it; ink falls outside, down to light grey gridlines (230 on
      white).
    - `blank_margin` 0.05: the dominant-colour share is taken on the image without 5% of its
      width and height on each side, so an empty frame, a scanner's dark border or a sliver
      of a neighbouring column in a crop does not make an empty image look drawn on.
    - `max_pixels` 50 MP: a full A4 page at 600 dpi is 35 MP; nothing larger is a figure, and a
      50 MP RGBA decode already takes 200 MB of a worker's memory. Bigger images are
      `decompression_bomb` failures whatever their byte size. `max_bytes` 32 MiB caps the
      encoded size the same way (`too_large`). `formats`: the Pillow decoders allowed.
    """

    min_side: int = 64
    max_aspect: float = 5.0
    blank_share: float = 0.999
    blank_tolerance: int = 24
    blank_std: float = 2.0
    blank_margin: float = 0.05
    blur_threshold: float = 100.0
    analysis_side: int = 512
    max_pixels: int = 50_000_000
    max_bytes: int = 32 * 1024 * 1024
    formats: tuple[str, ...] = DEFAULT_FORMATS
    require_caption: bool = False

    def __post_init__(self) -> None:
        if self.min_side < 1 or self.analysis_side < 8:
            raise ConfigError("min_side must be >= 1 and analysis_side >= 8")
        if self.max_aspect < 1.0:
            raise ConfigError(f"max_aspect must be >= 1; got {self.max_aspect}")
        if not 0.0 < self.blank_share <= 1.0:
            raise ConfigError(f"blank_share must be in (0, 1]; got {self.blank_share}")
        if not 0.0 <= self.blank_margin < 0.5:
            raise ConfigError(f"blank_margin must be in [0, 0.5); got {self.blank_margin}")
        if not 0 <= self.blank_tolerance <= 255 or self.blank_std < 0 or self.blur_threshold < 0:
            raise ConfigError("blank_tolerance must be in [0, 255]; blank_std and blur_threshold >= 0")
        if self.max_pixels < 1 or self.max_bytes < 1:
            raise ConfigError("max_pixels and max_bytes must be >= 1")
        if not self.formats or any(f != f.upper() for f in self.formats):
            raise ConfigError(f"formats must be Pillow format names in upper case; got {self.formats}")

    def replace(self, **changes) -> "ImageFilterConfig":
        return dataclasses.replace(self, **changes)


FIGURES = ImageFilterConfig()
# Web images (photos next to text): OBELICS-like size floor, banners already at 3:1, and a
# caption required: a pair without text teaches nothing.
WEB = ImageFilterConfig(min_side=150, max_aspect=3.0, require_caption=True)
PRESETS: dict[str, ImageFilterConfig] = {"figures": FIGURES, "web": WEB}
DEFAULT = FIGURES


@dataclass(frozen=True, slots=True)
class ImageMeasures:
    """What `measure_image` found in one decodable image. Grey levels are 0-255 (ITU-R 601
    luma); shares are fractions of the analysis copy's pixels."""

    sha256: str                 # of the encoded bytes
    n_bytes: int
    format: str                 # Pillow's name: PNG, JPEG, ...
    mode: str                   # Pillow's mode as stored: RGB, L, P, RGBA, I;16, ...
    width: int
    height: int
    analysis_width: int
    analysis_height: int
    gray_std: float
    dominant_share: float       # inner pixels within blank_tolerance of the dominant colour
    white_share: float          # pixels with grey level >= 240
    laplacian_var: float        # variance of the 3x3 Laplacian of the grey analysis copy

    def __post_init__(self) -> None:
        if self.width < 1 or self.height < 1 or self.analysis_width < 1 or self.analysis_height < 1:
            raise ValueError(f"image sizes must be >= 1; got {self.width}x{self.height}")
        if not (0.0 <= self.dominant_share <= 1.0 and 0.0 <= self.white_share <= 1.0):
            raise ValueError("shares must be in [0, 1]")

    @property
    def aspect(self) -> float:
        """Longer side over shorter side (>= 1)."""
        return max(self.width, self.height) / min(self.width, self.height)


@dataclass(frozen=True, slots=True)
class ImageFailure:
    """Bytes that are not a usable image: `reason` is one of FAILURE_REASONS."""

    sha256: str
    n_bytes: int
    reason: str
    message: str
    format: str = ""            # when the header was readable

    def __post_init__(self) -> None:
        if self.reason not in FAILURE_REASONS:
            raise ValueError(f"unknown failure reason {self.reason!r}")


@dataclass(frozen=True, slots=True)
class ImageVerdict:
    """`keep` is true exactly when no rule failed; `reasons` lists the failing rules in
    IMAGE_REASONS order."""

    keep: bool
    reasons: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.keep == bool(self.reasons):
            raise ValueError("an image is kept exactly when there is no reason against it")
        if any(r not in IMAGE_REASONS for r in self.reasons):
            raise ValueError(f"unknown reasons {self.reasons}")


@dataclass(frozen=True, slots=True)
class PairCheck:
    """The pair-level verdict. `reasons` filter the pair (missing_image; no_caption when
    captions are required); `flags` are kept for the reader (no_caption otherwise); `detail`
    says why the image is missing ("" when it is not)."""

    keep: bool
    reasons: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    detail: str = ""

    def __post_init__(self) -> None:
        if self.keep == bool(self.reasons):
            raise ValueError("a pair is kept exactly when there is no reason against it")
        if any(r not in PAIR_REASONS for r in self.reasons + self.flags):
            raise ValueError(f"unknown pair reasons {self.reasons + self.flags}")


# ---- measure ---------------------------------------------------------------------------------

def measure_image(data: bytes, config: ImageFilterConfig = DEFAULT) -> ImageMeasures | ImageFailure:
    """Encoded image bytes -> ImageMeasures, or an ImageFailure for anything that is not a
    usable image. Never raises for bad data (a bad config raises at construction)."""
    digest = hashlib.sha256(data).hexdigest()
    size = len(data)

    def fail(reason: str, message: str, fmt: str = "") -> ImageFailure:
        return ImageFailure(digest, size, reason, message[:500], fmt)

    if size == 0:
        return fail(EMPTY_IMAGE, "no bytes")
    if size > config.max_bytes:
        return fail(TOO_LARGE, f"{size} bytes is over the {config.max_bytes}-byte limit")
    from PIL import Image, UnidentifiedImageError

    fmt = ""
    try:
        with Image.open(io.BytesIO(data), formats=list(config.formats)) as im:
            fmt, mode, (width, height) = im.format or "", im.mode, im.size
            if width < 1 or height < 1:
                return fail(CORRUPT_IMAGE, f"header gives a {width}x{height} image", fmt)
            if width * height > config.max_pixels:
                return fail(DECOMPRESSION_BOMB, f"{width}x{height} = {width * height} pixels is over the "
                                                f"{config.max_pixels}-pixel limit", fmt)
            gray, rgb = _analysis_arrays(im, config.analysis_side)
    except Image.DecompressionBombError as exc:
        return fail(DECOMPRESSION_BOMB, str(exc), fmt)
    except UnidentifiedImageError:
        # Pillow's message names the BytesIO object's address: leave it out (reruns must match)
        return fail(UNSUPPORTED_FORMAT, f"not an image in any of {'/'.join(config.formats)}", fmt)
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        # Pillow says "image file is truncated" / "broken data stream" / "Truncated File Read"
        text = f"{type(exc).__name__}: {exc}"
        truncated = any(w in str(exc).lower() for w in ("truncated", "broken data stream", "unexpected end"))
        return fail(TRUNCATED_IMAGE if truncated else CORRUPT_IMAGE, text, fmt)
    except MemoryError:
        return fail(DECOMPRESSION_BOMB, "out of memory while decoding", fmt)
    except Exception as exc:  # noqa: BLE001 - a decoder may raise anything on hostile bytes
        return fail(CORRUPT_IMAGE, f"{type(exc).__name__}: {exc}", fmt)
    dominant_share = _dominant_share(_inner(rgb if rgb is not None else gray, config.blank_margin),
                                     config.blank_tolerance)
    return ImageMeasures(
        sha256=digest, n_bytes=size, format=fmt, mode=mode, width=width, height=height,
        analysis_width=gray.shape[1], analysis_height=gray.shape[0],
        gray_std=round(float(gray.std()), 4), dominant_share=round(dominant_share, 6),
        white_share=round(float((gray >= _WHITE_LEVEL).mean()), 6),
        laplacian_var=round(laplacian_variance(gray), 4),
    )


def analysis_size(width: int, height: int, side: int) -> tuple[int, int]:
    """The size of the analysis copy: longer side at most `side`, aspect kept, never scaled up."""
    longest = max(width, height)
    if longest <= side:
        return width, height
    scale = side / longest
    return max(1, round(width * scale)), max(1, round(height * scale))


def _analysis_arrays(im, side: int) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """Decode (first frame) -> (grey float32 HxW, RGB uint8 HxWx3 or None for grey images),
    both at the analysis size."""
    from PIL import Image

    target = analysis_size(*im.size, side)
    if im.format == "JPEG" and target != im.size:
        im.draft(None, target)                      # DCT-domain downscale: decode less
    im.load()
    mode = im.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        im = im.convert("F")                        # resized as floats, stretched to grey below
    elif mode in ("1", "L"):
        im = im.convert("L")
    elif mode == "P" and "transparency" not in im.info:
        im = im.convert("RGB")
    elif mode in ("RGBA", "LA", "PA", "RGBa", "La", "P"):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, rgba).convert("RGB")
    elif mode != "RGB":
        im = im.convert("RGB")                      # CMYK, YCbCr, LAB, HSV
    if im.size != target:
        im = im.resize(target, Image.Resampling.BOX, reducing_gap=3.0)
    if im.mode == "F":
        im = _scaled_to_gray(im)
    if im.mode == "L":
        return np.asarray(im, dtype=np.float32), None
    rgb = np.asarray(im, dtype=np.uint8)
    gray = rgb[..., 0] * np.float32(0.299) + rgb[..., 1] * np.float32(0.587) + rgb[..., 2] * np.float32(0.114)
    return gray, rgb


def _scaled_to_gray(im):
    """A float image (16-bit, 32-bit integer and float images become one): its value range
    stretched to 0-255 grey (non-finite values count as 0)."""
    from PIL import Image

    values = np.nan_to_num(np.asarray(im, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    low, high = float(values.min()), float(values.max())
    scaled = np.zeros_like(values) if high <= low else (values - low) * (255.0 / (high - low))
    return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8))


def _inner(pixels: np.ndarray, margin: float) -> np.ndarray:
    """The array without a `margin` share of its height and width on each side (at least one
    pixel is kept either way)."""
    h, w = pixels.shape[:2]
    dy, dx = int(h * margin), int(w * margin)
    return pixels[dy:max(dy + 1, h - dy), dx:max(dx + 1, w - dx)]


def _dominant_share(pixels: np.ndarray, tolerance: int) -> float:
    """Share of pixels within `tolerance` (every channel) of the dominant colour: the mean
    colour of the most common 16-level-per-channel bin. Works on contiguous uint8 planes with
    per-channel lookup tables (a few passes over the data)."""
    if pixels.dtype != np.uint8:
        pixels = np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
    if pixels.ndim == 2:
        planes = [np.ascontiguousarray(pixels).ravel()]
    else:
        planes = list(np.ascontiguousarray(np.moveaxis(pixels, -1, 0)).reshape(pixels.shape[-1], -1))
    key = (planes[0] >> 4).astype(np.uint16)
    for plane in planes[1:]:
        key = (key << 4) | (plane >> 4)
    mode_key = int(np.bincount(key).argmax())
    in_mode = key == mode_key
    levels = np.arange(256, dtype=np.float64)
    close = None
    for plane in planes:
        hit = np.take(np.abs(levels - plane[in_mode].mean()) <= tolerance, plane)
        close = hit if close is None else close & hit
    return float(np.count_nonzero(close)) / planes[0].size


def laplacian_variance(gray: np.ndarray) -> float:
    """Variance of the 3x3 Laplacian [[0,1,0],[1,-4,1],[0,1,0]] over the interior pixels of a
    2-D grey array (numpy slicing, no OpenCV). 0.0 for arrays under 3x3."""
    g = np.asarray(gray, dtype=np.float32)
    if g.ndim != 2 or g.shape[0] < 3 or g.shape[1] < 3:
        return 0.0
    lap = g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:] - 4.0 * g[1:-1, 1:-1]
    return float(lap.var(dtype=np.float64))


# ---- decide ----------------------------------------------------------------------------------

def decide(measures: ImageMeasures, config: ImageFilterConfig = DEFAULT) -> ImageVerdict:
    """Apply the thresholds to one image's measures (nothing is decoded here).

    tiny: shorter side < min_side. extreme_aspect: longer/shorter > max_aspect. blank: the
    dominant colour covers >= blank_share of the pixels, or the grey spread is under blank_std.
    blurry: Laplacian variance < blur_threshold, judged only for images that are neither
    blank nor tiny (a flat or minute image has no edges to be sharp or blurred)."""
    reasons = []
    tiny = min(measures.width, measures.height) < config.min_side
    if tiny:
        reasons.append(TINY)
    if measures.aspect > config.max_aspect:
        reasons.append(EXTREME_ASPECT)
    blank = measures.dominant_share >= config.blank_share or measures.gray_std < config.blank_std
    if blank:
        reasons.append(BLANK)
    if not blank and not tiny and measures.laplacian_var < config.blur_threshold:
        reasons.append(BLURRY)
    return ImageVerdict(not reasons, tuple(reasons))


def check_image(data: bytes, config: ImageFilterConfig = DEFAULT) -> tuple[ImageMeasures | ImageFailure,
                                                                           Optional[ImageVerdict]]:
    """measure_image then decide; the verdict is None when the bytes are not a usable image."""
    measures = measure_image(data, config)
    return measures, (decide(measures, config) if isinstance(measures, ImageMeasures) else None)


# ---- pairs -----------------------------------------------------------------------------------

def is_remote_ref(ref: str) -> bool:
    lower = ref.strip().lower()
    return lower.startswith(("http://", "https://", "//"))


def check_pair(caption: Optional[str], image_ref: Optional[str], available: bool,
               config: ImageFilterConfig = DEFAULT, *, why_missing: str = "") -> PairCheck:
    """One image-text pair before its image is measured.

    `available`: the image's bytes are in hand and non-empty. When they are not, the pair is
    `missing_image` whatever its caption, with `detail` = `why_missing` when the caller knows
    (image_not_found, empty_bytes, ...), else `no_image_ref` (no reference at all) or
    `remote_ref_not_fetched` (an http(s) URL: this stage never fetches). A blank or absent
    caption is `no_caption`: a filtering reason with `require_caption`, a flag otherwise."""
    reasons: list[str] = []
    flags: list[str] = []
    detail = ""
    ref = (image_ref or "").strip()
    if not available:
        reasons.append(MISSING_IMAGE)
        detail = why_missing or (NO_IMAGE_REF if not ref else REMOTE_REF_NOT_FETCHED if is_remote_ref(ref)
                                 else IMAGE_NOT_FOUND)
    if not (caption or "").strip():
        (reasons if config.require_caption else flags).append(NO_CAPTION)
    return PairCheck(not reasons, tuple(reasons), tuple(flags), detail)


def resolve_image_ref(ref: Optional[str], base_dir: str,
                      join: Callable[[str, str], str] = posixpath.join) -> tuple[str, str]:
    """A pair's `image_path` -> (path to read, "") or ("", why not).

    Only a relative path inside `base_dir` (the input file's folder) is resolved. Rejected
    without touching anything: http(s) URLs (`remote_ref_not_fetched`), other URI schemes and
    data: URIs (`unsupported_ref`), and absolute paths, `..` that climbs out of the folder,
    backslashes and NUL characters (`unsafe_image_path`). `join` is the file system's join
    (Beam's FileSystems.join for gs:// and the like)."""
    raw = ref or ""
    if not raw.strip():
        return "", NO_IMAGE_REF
    if is_remote_ref(raw):
        return "", REMOTE_REF_NOT_FETCHED
    if "\x00" in raw or "\\" in raw or raw.startswith("/") or (len(raw) > 1 and raw[1] == ":"):
        return "", UNSAFE_IMAGE_PATH
    scheme = raw.split(":", 1)[0] if ":" in raw.split("/", 1)[0] else ""
    if scheme:
        return "", UNSUPPORTED_REF if scheme.lower() == "data" else UNSAFE_IMAGE_PATH
    normal = posixpath.normpath(raw)
    if normal in (".", "..") or normal.startswith("../"):
        return "", UNSAFE_IMAGE_PATH
    return join(base_dir, normal), ""


def measures_dict(measures: ImageMeasures) -> dict:
    """The measures as a flat dict (aspect included), for rows and reports."""
    out = dataclasses.asdict(measures)
    out["aspect"] = round(measures.aspect, 4)
    return out


__all__ = [
    "BLANK", "BLURRY", "DEFAULT", "EXTREME_ASPECT", "FAILURE_REASONS", "FIGURES", "IMAGE_REASONS", "ImageFailure",
    "ImageFilterConfig", "ImageMeasures", "ImageVerdict", "MISSING_IMAGE", "NO_CAPTION", "PAIR_REASONS", "PRESETS",
    "PairCheck", "TINY", "WEB", "analysis_size", "check_image", "check_pair", "decide", "laplacian_variance",
    "measure_image", "measures_dict", "resolve_image_ref",
]
