"""`scicurate run images`: filter image-text pairs (blank, blurry, tiny, extreme-aspect images,
captions pointing at missing images).

    scicurate run images --input 'PAIRS*.jsonl' --output DIR [--preset figures|web]
        [--min-side 64] [--max-aspect 5] [--blur-threshold 100] [--blank-share 0.999]
        [--require-caption] [--max-pixels 50000000] [--max-bytes 33554432] [--shards 1] [Beam flags]

PAIRS: JSONL(.gz) or Parquet rows with `caption` and either `image` (bytes; Parquet) or
`image_path` (relative to the folder of the file the row is in; never a URL: http(s) references
are `missing_image` / `remote_ref_not_fetched`, a path out of the folder is a dead letter).
Writes kept/ (caption, image bytes, measures), filtered/ (reasons, measures), dead_letter/ and
summary.json (counts per reason, `accounted`). The thresholds and why they are what they are:
`classifiers/image_filters.py` (`ImageFilterConfig`).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any


def add_arguments(p: argparse.ArgumentParser) -> None:
    from scicurate.classifiers.image_filters import PRESETS

    p.add_argument("--input", required=True, help="pairs file pattern: JSONL(.gz) or Parquet rows with caption and "
                                                  "image (bytes) or image_path — quote the glob")
    p.add_argument("--output", required=True, help="output directory (any Beam file system)")
    p.add_argument("--preset", choices=sorted(PRESETS), default="figures",
                   help="figures (default: paper figures) or web (150 px floor, 3:1 aspect, captions required)")
    p.add_argument("--min-side", type=int, help="shorter side under this many pixels is tiny (figures: 64)")
    p.add_argument("--max-aspect", type=float, help="longer/shorter side over this is extreme_aspect (figures: 5)")
    p.add_argument("--blur-threshold", type=float,
                   help="variance of the Laplacian at 512 px under this is blurry (figures: 100)")
    p.add_argument("--blank-share", type=float, help="dominant colour on this share of pixels is blank (0.999)")
    p.add_argument("--require-caption", action=argparse.BooleanOptionalAction, default=None,
                   help="filter images without a caption (figures: no, only flagged; web: yes)")
    p.add_argument("--max-pixels", type=int, help="larger images are dead-lettered as decompression bombs (50000000)")
    p.add_argument("--max-bytes", type=int, help="larger encoded images are dead-lettered as too_large (32 MiB)")
    p.add_argument("--shards", type=int, default=1, help="Parquet shards per dataset (default 1)")


def images_config(args: argparse.Namespace):
    """Flags -> ImagesRunConfig: the preset, with each given flag overriding it."""
    from scicurate.classifiers.image_filters import PRESETS
    from scicurate.pipelines.images_steps import ImagesRunConfig

    overrides: dict[str, Any] = {
        "min_side": args.min_side, "max_aspect": args.max_aspect, "blur_threshold": args.blur_threshold,
        "blank_share": args.blank_share, "require_caption": args.require_caption, "max_pixels": args.max_pixels,
        "max_bytes": args.max_bytes,
    }
    filters = PRESETS[args.preset].replace(**{k: v for k, v in overrides.items() if v is not None})
    return ImagesRunConfig(filters=filters, preset=args.preset, num_shards=args.shards)


def run(args: argparse.Namespace, beam_args: list[str]) -> int:
    import apache_beam as beam

    from scicurate import __version__
    from scicurate.cli import _print_summary, _write_run_info
    from scicurate.pipelines import images as images_pipeline
    from scicurate.runner import match_inputs, pipeline_options, runner_name

    config = images_config(args)
    matches = match_inputs(args.input)
    if not matches:
        print(f"scicurate: no files match --input {args.input!r}", file=sys.stderr)
        return 2
    options = pipeline_options(beam_args)
    f = config.filters
    print(f"scicurate: {len(matches)} pairs files; preset {config.preset} (min side {f.min_side}, max aspect "
          f"{f.max_aspect}, blur < {f.blur_threshold}, blank >= {f.blank_share}, captions "
          f"{'required' if f.require_caption else 'flagged'}); runner {runner_name(options)}", file=sys.stderr)
    from scicurate.resume import RunOutput

    started = time.perf_counter()
    with RunOutput(args.output, [m.path for m in matches], resume=False), beam.Pipeline(options=options) as pipeline:
        images_pipeline.build(pipeline, args.input, args.output, config)
    _write_run_info(args.output, {
        "wall_seconds": round(time.perf_counter() - started, 3), "runner": runner_name(options),
        "inputs_files": len(matches), "input": args.input, "scicurate_version": __version__,
    })
    return _print_summary(args.output, ("kept", "filtered", "dead_letter rows"))
