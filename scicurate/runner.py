"""Beam options: offline by default, every Beam flag passed through unchanged."""

from __future__ import annotations

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


def runner_name(options: PipelineOptions) -> str:
    from apache_beam.options.pipeline_options import StandardOptions

    return str(options.view_as(StandardOptions).runner)
