"""Beam options: offline by default, every Beam flag passed through unchanged."""

from __future__ import annotations

import os

from apache_beam.options.pipeline_options import PipelineOptions

# Beam 2.77's DirectRunner first tries to download the Prism binary. The FnApiRunner runs the
# same portable pipeline in-process with no download, so it is our default for local runs.
DEFAULT_LOCAL_RUNNER = "FnApiRunner"


def has_flag(args: list[str], name: str) -> bool:
    return any(a == name or a.startswith(name + "=") for a in args)


def pipeline_options(beam_args: list[str]) -> PipelineOptions:
    args = list(beam_args)
    if not has_flag(args, "--runner"):
        args.append(f"--runner={DEFAULT_LOCAL_RUNNER}")
    return PipelineOptions(args)


LOCAL_RUNNERS = ("FnApiRunner", "DirectRunner", "BundleBasedDirectRunner", "SwitchingDirectRunner", "PrismRunner")


def workers_are_local(options: PipelineOptions) -> bool:
    """Do the workers run on this machine (so they can reach a loopback model server)?"""
    from apache_beam.options.pipeline_options import PortableOptions

    runner = runner_name(options).rsplit(".", 1)[-1]
    if runner in LOCAL_RUNNERS:
        return True
    portable = options.view_as(PortableOptions)
    return runner == "PortableRunner" and (portable.environment_type or "").upper() == "LOOPBACK" \
        and (portable.job_endpoint or "") in ("embed", "")


def local_cpu_share(options: PipelineOptions, most: int = 8) -> int:
    """CPUs per Beam worker of a local run: this machine's CPUs over `--direct_num_workers`
    (0 means one worker per CPU), at least 1 and at most `most`. Child-process pools (the web
    extractor) size themselves by it, so a local run uses the machine without oversubscribing."""
    import os

    from apache_beam.options.pipeline_options import DirectOptions

    cpus = os.cpu_count() or 1
    workers = options.view_as(DirectOptions).direct_num_workers
    workers = cpus if workers is not None and workers <= 0 else (workers or 1)
    return max(1, min(most, cpus // workers))


def runner_name(options: PipelineOptions) -> str:
    from apache_beam.options.pipeline_options import StandardOptions

    return str(options.view_as(StandardOptions).runner)


def match_inputs(pattern: str) -> list:
    """Beam's matches of an input pattern (FileMetadata list). For a local pattern, files the
    shell's glob finds but Beam's does not are named on stderr: Beam's glob reads a backslash as
    an escape, so a file with one in its name would otherwise vanish from the run unseen."""
    import glob
    import sys

    from apache_beam.io.filesystems import FileSystems

    matches = FileSystems.match([pattern])[0].metadata_list
    if FileSystems.get_scheme(pattern) is None:
        seen = {m.path for m in matches}
        missed = sorted(p for p in glob.glob(pattern, recursive=True) if os.path.isfile(p) and p not in seen)
        if missed:
            print(f"scicurate: warning: {len(missed)} files match {pattern!r} for the shell but not for Beam "
                  f"(a backslash in the name?) and are not read: {', '.join(repr(p) for p in missed[:3])}"
                  f"{' …' if len(missed) > 3 else ''}; rename them", file=sys.stderr)
    return matches
